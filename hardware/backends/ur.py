"""Universal Robots arms through ur-rtde (``rtde_control``/``rtde_receive``/``rtde_io``;
chord-robot[ur]).

Conventions (ur_rtde documentation): joint positions rad in the controller's order (base,
shoulder, elbow, wrist 1-3), TCP pose [x, y, z, rx, ry, rz] in metres and an axis-angle
vector. A trajectory is streamed with ``servoJ(q, speed, acceleration, time, lookahead_time,
gain)`` once per control period (``initPeriod``/``waitPeriod`` keep the pace), sampling the
checked curve every ``1 / rate_hz`` seconds; the speed scale is in those samples' timing
(servoJ's speed and acceleration arguments are unused by the controller). ``servoStop`` ends a
stream; `stop` sends ``servoStop`` while streaming and ``stopJ`` otherwise.

ur-rtde has no gripper API. A binary gripper wired to a standard digital output can be
named with ``gripper_digital_out`` (True = closed, via ``RTDEIOInterface.setStandardDigitalOut``);
without it the arm has no gripper and plans that use one are refused.

The control interface (which uploads and starts the RTDE control script on the robot) is
opened on the first command that moves, so a dry run only reads through the receive
interface. Nothing listens on a port on this side (no ExternalControl URCap flag is used).
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

URModel = Literal["ur5e"]
"""The UR arms the limits table knows."""

UR_MODELS: tuple[str, ...] = get_args(URModel)


@dataclass(frozen=True)
class URConfig:
    """Settings of the UR backend."""

    model: URModel = "ur5e"
    """Robot model (a `hardware.robots.ROBOTS` name)."""
    rate_hz: float = 500.0
    """servoJ streaming rate: 500 for e-series, 125 for CB3 controllers."""
    lookahead_time: float = 0.1
    """servoJ lookahead time in [0.03, 0.2] s (smooths the stream)."""
    gain: float = 300.0
    """servoJ proportional gain in [100, 2000]."""
    servo_speed: float = 0.5
    """servoJ speed argument (rad/s; unused by the controller, sent as ur_rtde's examples do)."""
    servo_acceleration: float = 0.5
    """servoJ acceleration argument (rad/s^2; unused likewise)."""
    stop_acceleration: float = 2.0
    """Deceleration of servoStop/stopJ, rad/s^2."""
    gripper_digital_out: int | None = None
    """Standard digital output driving a binary gripper (True = closed); None: no gripper."""
    gripper_width: float = 0.085
    """Opening of that gripper when open, metres."""
    gripper_time: float = 0.5
    """Seconds to wait for it to open or close."""


class URArm:
    """A UR arm driven through ur-rtde (see the module docstring)."""

    def __init__(
        self, host: str, config: URConfig | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.config = cfg = config or URConfig()
        if cfg.model not in UR_MODELS:
            raise ConfigError(
                "model",
                f"ur {{field}} {quote(cfg.model)}: known UR models are {', '.join(UR_MODELS)}",
            )
        spec = ROBOTS[cfg.model]
        width = cfg.gripper_width if cfg.gripper_digital_out is not None else 0.0
        self.host = host
        self.info = ArmInfo("ur", spec.name, spec.joint_names, width, True, f"ur://{host}")
        self._sleep = sleep
        self._control = self._receive = self._io = None
        self._rtde_control = None
        self._servoing = False

    def connect(self) -> None:
        self._rtde_control = import_sdk("rtde_control", "ur")
        rtde_receive = import_sdk("rtde_receive", "ur")
        self._receive = rtde_receive.RTDEReceiveInterface(self.host)

    def _ctrl(self):
        if self._control is None:
            self._control = self._rtde_control.RTDEControlInterface(self.host)
        return self._control

    def state(self) -> ArmState:
        q = np.asarray(self._receive.getActualQ(), dtype=np.float64)
        x = np.asarray(self._receive.getActualTCPPose(), dtype=np.float64)
        xyzw = Rotation.from_rotvec(x[3:]).as_quat()
        pose = np.array([xyzw[3], *xyzw[:3], *x[:3]])
        width = float("nan")
        if self.config.gripper_digital_out is not None:
            closed = bool(self._receive.getDigitalOutState(self.config.gripper_digital_out))
            width = 0.0 if closed else self.config.gripper_width
        return ArmState(q, pose, width)

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        cfg, ctrl = self.config, self._ctrl()
        dt = 1.0 / cfg.rate_hz
        t, q, _ = trajectory.sample(dt)
        self._servoing = True
        for k in range(1, len(t)):
            period = ctrl.initPeriod()
            ok = ctrl.servoJ(
                q[k].tolist(),
                cfg.servo_speed,
                cfg.servo_acceleration,
                dt,
                cfg.lookahead_time,
                cfg.gain,
            )
            if ok is False:
                raise RuntimeError(
                    "servoJ was rejected: is the robot in remote control with the RTDE control "
                    "script running?"
                )
            ctrl.waitPeriod(period)
            progress.advance(trajectory, float(t[k]))
        ctrl.servoStop(cfg.stop_acceleration)
        self._servoing = False

    def gripper(self, command: GripperCommand) -> None:
        cfg = self.config
        if cfg.gripper_digital_out is None:
            raise RuntimeError("this UR arm has no gripper configured (gripper_digital_out)")
        if self._io is None:
            self._io = import_sdk("rtde_io", "ur").RTDEIOInterface(self.host)
        closed = command.is_grasp or command.width < 0.5 * cfg.gripper_width
        if self._io.setStandardDigitalOut(cfg.gripper_digital_out, closed) is False:
            raise RuntimeError(f"setStandardDigitalOut({cfg.gripper_digital_out}) failed")
        self._sleep(cfg.gripper_time)

    def stop(self) -> None:
        if self._control is None:
            return
        if self._servoing:
            self._control.servoStop(self.config.stop_acceleration)
            self._servoing = False
        else:
            self._control.stopJ(self.config.stop_acceleration)

    def disconnect(self) -> None:
        if self._control is not None:
            self._control.stopScript()
            self._control.disconnect()
        for iface in (self._receive, self._io):
            if iface is not None:
                iface.disconnect()
        self._control = self._receive = self._io = None
