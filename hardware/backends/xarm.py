"""UFACTORY xArm 6/7 through xarm-python-sdk (``xarm.wrapper.XArmAPI``; chord-robot[xarm]).

Conventions (xArm-Python-SDK doc/api/xarm_api.md): the API is created with
``is_radian=True``, so joint angles are rad; Cartesian positions are millimetres with
roll/pitch/yaw about the fixed x, y, z axes; every call returns a code, 0 meaning success.
The xArm Gripper (the SDK's ``set_gripper_position``/``get_gripper_position``) works in
pulses: 0 is closed and 850 fully open, an opening of about 85 mm, so one pulse is about
0.1 mm and width (m) = pulse / 850 x 0.085. It has no force setting: a grasp closes to
``width - 2 x tolerance`` (the fingers stop on the object) and then checks that they stopped
within ``width +- tolerance``.

A trajectory is streamed in servo motion mode (``set_mode(1)``, ``set_state(0)``) with
``set_servo_angle_j(angles, is_radian=True)`` every ``1 / rate_hz`` seconds, sampling the
checked curve; the speed scale is in the samples' timing. Motors are enabled and the mode set
on the first motion, so a dry run only reads. `stop` puts the arm in the stop state
(``set_state(4)``), which clears the command cache and leaves the arm stopped until it is
deliberately re-enabled (the SDK's ``emergency_stop`` would re-enable it at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy.spatial.transform import Rotation

from chord_robot.errors import ConfigError, quote
from chord_robot.trajectory import JointTrajectory
from hardware.arm import ArmInfo, ArmState, GripperCommand, Progress
from hardware.backends import import_sdk
from hardware.robots import ROBOTS

XArmModel = Literal["xarm6", "xarm7"]
"""The xArms the limits table knows."""

XARM_MODELS: tuple[str, ...] = get_args(XArmModel)
GRIPPER_OPEN_PULSE = 850.0
"""xArm Gripper position of a fully open gripper (0 is closed)."""
GRIPPER_OPEN_WIDTH = 0.085
"""Finger opening at that position, metres."""


def width_to_pulse(width: float) -> float:
    """Gripper opening (m) -> xArm Gripper pulse in [0, 850]."""
    return float(np.clip(width / GRIPPER_OPEN_WIDTH * GRIPPER_OPEN_PULSE, 0.0, GRIPPER_OPEN_PULSE))


def pulse_to_width(pulse: float) -> float:
    """xArm Gripper pulse -> opening, metres."""
    return float(pulse) / GRIPPER_OPEN_PULSE * GRIPPER_OPEN_WIDTH


@dataclass(frozen=True)
class XArmConfig:
    """Settings of the xArm backend."""

    model: XArmModel = "xarm6"
    """Robot model: xarm6 or xarm7."""
    rate_hz: float = 100.0
    """set_servo_angle_j streaming rate."""
    gripper: bool = True
    """An xArm Gripper is mounted."""
    gripper_speed: float = 2000.0
    """set_gripper_position speed, in the SDK's unit (r/min of the gripper motor)."""
    gripper_timeout: float = 10.0
    """Seconds to wait for the gripper."""


class XArm:
    """An xArm driven through xarm-python-sdk (see the module docstring)."""

    def __init__(
        self,
        host: str,
        config: XArmConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = cfg = config or XArmConfig()
        if cfg.model not in XARM_MODELS:
            raise ConfigError(
                "model", f"xarm {{field}} {quote(cfg.model)}: known models are {', '.join(XARM_MODELS)}"
            )
        spec = ROBOTS[cfg.model]
        self.host = host
        self.info = ArmInfo(
            "xarm",
            spec.name,
            spec.joint_names,
            GRIPPER_OPEN_WIDTH if cfg.gripper else 0.0,
            True,
            f"xarm://{host}",
        )
        self._sleep, self._clock = sleep, clock
        self._api = None
        self._servo_ready = False
        self._gripper_ready = False

    def connect(self) -> None:
        wrapper = import_sdk("xarm.wrapper", "xarm")
        self._api = wrapper.XArmAPI(self.host, is_radian=True)

    def _ok(self, code, what: str) -> None:
        code = code[0] if isinstance(code, tuple) else code
        if code != 0:
            raise RuntimeError(f"xArm {what} returned code {code} (see the xArm API code table)")

    def state(self) -> ArmState:
        api, dof = self._api, self.info.dof
        code, angles = api.get_servo_angle(is_radian=True)
        self._ok(code, "get_servo_angle")
        code, pos = api.get_position(is_radian=True)
        self._ok(code, "get_position")
        xyzw = Rotation.from_euler("xyz", pos[3:6]).as_quat()
        pose = np.array([xyzw[3], *xyzw[:3], *(np.asarray(pos[:3], float) / 1000.0)])
        width = float("nan")
        if self.config.gripper:
            code, pulse = api.get_gripper_position()
            self._ok(code, "get_gripper_position")
            width = pulse_to_width(pulse)
        return ArmState(np.asarray(angles[:dof], dtype=np.float64), pose, width)

    def _servo_mode(self) -> None:
        if not self._servo_ready:
            self._ok(self._api.motion_enable(enable=True), "motion_enable")
            self._ok(self._api.set_mode(1), "set_mode(1)")
            self._ok(self._api.set_state(0), "set_state(0)")
            self._servo_ready = True

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        self._servo_mode()
        dt = 1.0 / self.config.rate_hz
        t, q, _ = trajectory.sample(dt)
        t0 = self._clock()
        for k in range(1, len(t)):
            self._ok(
                self._api.set_servo_angle_j(angles=q[k].tolist(), is_radian=True),
                "set_servo_angle_j",
            )
            progress.advance(trajectory, float(t[k]))
            self._sleep(max(0.0, t0 + t[k] - self._clock()))

    def gripper(self, command: GripperCommand) -> None:
        api = self._api
        if not self.config.gripper:
            raise RuntimeError("this xArm has no gripper configured")
        if not self._gripper_ready:
            self._ok(api.set_gripper_mode(0), "set_gripper_mode(0)")
            self._ok(api.set_gripper_enable(True), "set_gripper_enable")
            self._gripper_ready = True
        target = command.width - 2 * command.tolerance if command.is_grasp else command.width
        self._ok(
            api.set_gripper_position(
                width_to_pulse(target),
                wait=True,
                speed=self.config.gripper_speed,
                timeout=self.config.gripper_timeout,
            ),
            "set_gripper_position",
        )
        if command.is_grasp:
            code, pulse = api.get_gripper_position()
            self._ok(code, "get_gripper_position")
            reached = pulse_to_width(pulse)
            if abs(reached - command.width) > command.tolerance:
                raise RuntimeError(
                    f"xArm gripper: grasp failed, the fingers stopped at {reached * 1000:.1f} mm, "
                    f"expected an object of {command.width * 1000:.1f} +- {command.tolerance * 1000:.1f} mm"
                )

    def stop(self) -> None:
        if self._api is not None:
            self._api.set_state(4)
            self._servo_ready = False

    def disconnect(self) -> None:
        if self._api is not None:
            self._api.disconnect()
        self._api = None
