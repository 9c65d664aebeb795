"""The execute config file (TOML): robot address, speed, registration, safety limits, backend
settings. Command-line options override it.

    robot = "franka://172.16.0.2"       # or sim, ur://HOST, xarm://HOST?model=xarm7
    speed = 0.3
    scan_to_robot = "calibration.json"  # or "x,y,z,qw,qx,qy,qz"; relative to this file

    [safety]                            # any SafetyConfig field (each can only tighten)
    max_speed = 0.5
    limit_fraction = 0.6
    table_z = 0.0
    workspace_lower = [-0.2, -0.6, -0.05]
    workspace_upper = [0.9, 0.6, 1.0]

    [gripper]                           # ExecuteConfig's gripper fields
    grasp_force = 20.0

    [ur]                                # the backend's config dataclass fields
    rate_hz = 125.0
    gripper_digital_out = 0

    [franka]
    dynamics_factor = 0.6               # franky's profiles reach limits x this: = limit_fraction
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from chord_robot.errors import ConfigError, InputError
from hardware.runner import ExecuteConfig
from hardware.safety_config import SafetyConfig

BACKEND_TABLES = ("franka", "ur", "xarm")


@dataclass(frozen=True)
class FileConfig:
    """What an execute config file says (None: not given)."""

    robot: str | None = None
    speed: float | None = None
    scan_to_robot: str | None = None
    execute: ExecuteConfig = field(default_factory=ExecuteConfig)
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _coerce(cls, values: dict[str, Any], where: str):
    unknown = set(values) - _fields(cls)
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_fields(cls))}"
        )
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            out[f.name] = tuple(float(x) for x in v) if isinstance(v, list) else v
    return out


def load_config(path: str | Path) -> FileConfig:
    """Read and validate an execute config file; InputError names what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    allowed = {"robot", "speed", "scan_to_robot", "safety", "gripper", *BACKEND_TABLES}
    unknown = set(data) - allowed
    if unknown:
        raise InputError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    try:
        safety = SafetyConfig(**_coerce(SafetyConfig, data.get("safety", {}), f"{path} [safety]"))
    except ConfigError as e:
        raise InputError(f"{path} [safety]: {e}") from None
    gripper_fields = _fields(ExecuteConfig) - {"safety"}
    gripper = data.get("gripper", {})
    if set(gripper) - gripper_fields:
        raise InputError(
            f"{path} [gripper]: unknown key(s) {sorted(set(gripper) - gripper_fields)}; "
            f"allowed: {sorted(gripper_fields)}"
        )
    execute = ExecuteConfig(safety=safety, **gripper)
    scan = data.get("scan_to_robot")
    if isinstance(scan, str) and not any(c == "," for c in scan):
        candidate = path.parent / scan
        scan = str(candidate) if candidate.exists() else scan
    return FileConfig(
        robot=data.get("robot"),
        speed=float(data["speed"]) if "speed" in data else None,
        scan_to_robot=scan,
        execute=execute,
        backends={k: dict(data[k]) for k in BACKEND_TABLES if k in data},
    )
