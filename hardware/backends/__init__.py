"""Real-arm backends: one module per SDK, each importing its SDK only inside its `connect`.

    franka://HOST   Franka Emika Panda through franky-control   (pip install chord-robot[franka])
    ur://HOST       Universal Robots through ur-rtde            (pip install chord-robot[ur])
    xarm://HOST     UFACTORY xArm through xarm-python-sdk       (pip install chord-robot[xarm])

``?model=NAME`` picks the robot model where a backend drives several (``ur://10.0.0.2?model=ur5e``,
``xarm://192.168.1.185?model=xarm7``). Robot addresses come only from the command line or a
config file. Every backend is a client of its robot's controller; none opens a listening port.

How far each backend has been tested: docs/hardware-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chord_robot.errors import ConfigError, InputError, quote

SCHEMES = ("franka", "ur", "xarm")


@dataclass(frozen=True)
class RobotAddress:
    """A parsed robot address (the execute config's ``robot``).

    Attributes:
        kind: "sim", "franka", "ur" or "xarm".
        host: host name or IP address ("" for sim).
        options: query parameters (``model``...).
    """

    kind: str
    host: str
    options: dict[str, str]

    def __str__(self) -> str:
        return "sim" if self.kind == "sim" else f"{self.kind}://{self.host}"


def parse_robot_address(text: str) -> RobotAddress:
    """``sim`` or ``SCHEME://HOST[?model=NAME]`` -> `RobotAddress`; InputError otherwise."""
    text = text.strip()
    if text == "sim":
        return RobotAddress("sim", "", {})
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            "robot", f"{{field}} {quote(text)}: use sim, franka://HOST, ur://HOST or xarm://HOST"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"model"}
    if unknown:
        raise ConfigError(
            "robot",
            f"{{field}} {quote(text)}: unknown option(s) {quote(sorted(unknown))} (allowed: model)",
        )
    return RobotAddress(parts.scheme, parts.hostname, options)


def open_arm(address: RobotAddress, options: dict[str, Any] | None = None):
    """The backend `Arm` for a real robot address (not connected yet).

    Args:
        options: backend settings from a config file's ``[franka]``/``[ur]``/``[xarm]`` table,
            keyword arguments of that backend's config dataclass.
    """
    options = dict(options or {})
    if "model" in address.options:
        options["model"] = address.options["model"]
    try:
        if address.kind == "franka":
            from hardware.backends.franka import FrankaArm, FrankaConfig

            return FrankaArm(address.host, FrankaConfig(**options))
        if address.kind == "ur":
            from hardware.backends.ur import URArm, URConfig

            return URArm(address.host, URConfig(**options))
        if address.kind == "xarm":
            from hardware.backends.xarm import XArm, XArmConfig

            return XArm(address.host, XArmConfig(**options))
    except TypeError as e:
        raise InputError(f"[{address.kind}] settings: {e}") from None
    raise InputError(f"no real-arm backend for {address.kind!r}")


def import_sdk(module: str, extra: str):
    """Import an SDK module, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InputError(
            f"the {extra} backend needs the {module!r} module ({e}): pip install 'chord-robot[{extra}]'"
        ) from None
