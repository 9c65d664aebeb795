"""Shared doubles of the hardware tests: an `Arm` that only records, and recording fake SDK
modules (franky, ur-rtde, xArm) injected through sys.modules, none of them installed."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from chord_robot.trajectory import JointTrajectory
from hardware.arm import ArmInfo, ArmState, GripperCommand, Progress
from hardware.robots import PANDA


class RecordingArm:
    """An `Arm` that moves nothing: it records calls and reports ``joints`` as its state."""

    def __init__(self, joints: np.ndarray, info: ArmInfo | None = None) -> None:
        self.info = info or ArmInfo("fake", "panda", PANDA.joint_names, 0.08, True, "fake://arm")
        self.joints = np.asarray(joints, dtype=np.float64)
        self.calls: list[str] = []

    def connect(self) -> None:
        self.calls.append("connect")

    def state(self) -> ArmState:
        self.calls.append("state")
        return ArmState(self.joints.copy(), np.full(7, np.nan), float("nan"))

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        self.calls.append("follow")
        progress.advance(trajectory, trajectory.duration)
        self.joints = trajectory.positions[-1].copy()

    def gripper(self, command: GripperCommand) -> None:
        self.calls.append("gripper")

    def stop(self) -> None:
        self.calls.append("stop")

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    @property
    def moved(self) -> bool:
        return "follow" in self.calls or "gripper" in self.calls


# --------------------------------------------------------------------------- fake SDKs


class Log(list):
    """Recorded calls: (name, args, kwargs) tuples."""

    def named(self, name: str) -> list[tuple]:
        return [c for c in self if c[0] == name]


def _recorder(log: Log, name: str, result=None):
    def call(*args, **kwargs):
        log.append((name, args, kwargs))
        return result(*args, **kwargs) if callable(result) else result

    return call


def fake_franky(
    log: Log,
    joints: np.ndarray,
    polls: int = 2,
    grasp_ok: bool = True,
    join_error: Exception | None = None,
    limit_scale: float = 1.0,
) -> types.ModuleType:
    """A recording double of franky's Python API (Robot, Gripper, JointWaypointMotion...); its
    robot holds the Panda's published joint limits times ``limit_scale`` (franky's
    ``joint_velocity_limit`` ... with ``get()``)."""
    m = types.ModuleType("franky")

    class JointState:
        def __init__(self, position, velocity=None):
            self.position, self.velocity = list(position), list(velocity or [0.0] * 7)

    class JointWaypoint:
        def __init__(
            self,
            target,
            reference_type=None,
            relative_dynamics_factor=1.0,
            minimum_time=None,
            hold_target_duration=None,
        ):
            self.target, self.relative_dynamics_factor, self.minimum_time = (
                target,
                relative_dynamics_factor,
                minimum_time,
            )

    class JointWaypointMotion:
        def __init__(self, waypoints, relative_dynamics_factor=1.0, return_when_finished=True):
            self.waypoints, self.relative_dynamics_factor = (
                list(waypoints),
                relative_dynamics_factor,
            )

    class Robot:
        def __init__(self, host):
            log.append(("Robot", (host,), {}))
            self.relative_dynamics_factor = 0.5  # set to 1 by the backend
            for name in ("velocity", "acceleration", "jerk"):
                value = limit_scale * np.asarray(getattr(PANDA.limits, name), float)
                setattr(self, f"joint_{name}_limit", SimpleNamespace(get=lambda v=value: v.copy()))
            self._polls = 0
            self.current_joint_state = SimpleNamespace(position=np.array(joints))
            ee = SimpleNamespace(
                translation=np.array([0.3, 0.0, 0.5]), quaternion=np.array([1.0, 0, 0, 0])
            )
            self.current_cartesian_state = SimpleNamespace(
                pose=SimpleNamespace(end_effector_pose=ee)
            )

        def move(self, motion, asynchronous=False):
            log.append(("move", (motion,), {"asynchronous": asynchronous}))
            self._polls = 0
            self._motion = motion

        def join_motion(self, timeout=None):
            log.append(("join_motion", (), {"timeout": timeout}))
            if join_error is not None:
                raise join_error
            self._polls += 1
            done = self._polls > polls
            if done:
                self.current_joint_state = SimpleNamespace(
                    position=np.array(self._motion.waypoints[-1].target.position)
                )
            return done

        stop = property(lambda self: _recorder(log, "stop"))

    class Gripper:
        def __init__(self, host):
            log.append(("Gripper", (host,), {}))
            self.width = 0.08

        def move(self, width, speed):
            log.append(("gripper.move", (width, speed), {}))
            return True

        def grasp(self, width, speed, force, epsilon_inner=0.005, epsilon_outer=0.005):
            log.append(
                (
                    "gripper.grasp",
                    (width, speed, force),
                    {"epsilon_inner": epsilon_inner, "epsilon_outer": epsilon_outer},
                )
            )
            return grasp_ok

        stop = property(lambda self: _recorder(log, "gripper.stop"))

    m.JointState, m.JointWaypoint, m.JointWaypointMotion = (
        JointState,
        JointWaypoint,
        JointWaypointMotion,
    )
    m.Robot, m.Gripper = Robot, Gripper
    return m


def fake_ur(
    log: Log, joints: np.ndarray, fail_at: int | None = None
) -> dict[str, types.ModuleType]:
    """Recording doubles of rtde_control, rtde_receive and rtde_io."""
    control, receive, io = (
        types.ModuleType(n) for n in ("rtde_control", "rtde_receive", "rtde_io")
    )
    state = {"q": np.array(joints, float), "servo": 0, "dout": {}}

    class RTDEControlInterface:
        def __init__(self, host):
            log.append(("RTDEControlInterface", (host,), {}))

        def servoJ(self, q, speed, acceleration, time, lookahead_time, gain):
            log.append(("servoJ", (list(q), speed, acceleration, time, lookahead_time, gain), {}))
            state["servo"] += 1
            if fail_at is not None and state["servo"] == fail_at:
                raise RuntimeError("RTDE connection lost")
            state["q"] = np.array(q)
            return True

        initPeriod = property(lambda self: _recorder(log, "initPeriod", 0))
        waitPeriod = property(lambda self: _recorder(log, "waitPeriod"))
        servoStop = property(lambda self: _recorder(log, "servoStop", True))
        stopJ = property(lambda self: _recorder(log, "stopJ", True))
        stopScript = property(lambda self: _recorder(log, "stopScript"))
        disconnect = property(lambda self: _recorder(log, "control.disconnect"))

    class RTDEReceiveInterface:
        def __init__(self, host):
            log.append(("RTDEReceiveInterface", (host,), {}))

        def getActualQ(self):
            return list(state["q"])

        def getActualTCPPose(self):
            return [0.4, 0.1, 0.3, 0.0, 3.14159, 0.0]

        def getDigitalOutState(self, pin):
            return state["dout"].get(pin, False)

        disconnect = property(lambda self: _recorder(log, "receive.disconnect"))

    class RTDEIOInterface:
        def __init__(self, host):
            log.append(("RTDEIOInterface", (host,), {}))

        def setStandardDigitalOut(self, pin, level):
            log.append(("setStandardDigitalOut", (pin, level), {}))
            state["dout"][pin] = level
            return True

        disconnect = property(lambda self: _recorder(log, "io.disconnect"))

    control.RTDEControlInterface = RTDEControlInterface
    receive.RTDEReceiveInterface = RTDEReceiveInterface
    io.RTDEIOInterface = RTDEIOInterface
    return {"rtde_control": control, "rtde_receive": receive, "rtde_io": io}


def fake_xarm(
    log: Log, joints: np.ndarray, object_width: float | None = 0.04, fail_at: int | None = None
) -> dict[str, types.ModuleType]:
    """A recording double of xarm.wrapper.XArmAPI (codes 0 = success)."""
    pkg, wrapper = types.ModuleType("xarm"), types.ModuleType("xarm.wrapper")
    pkg.wrapper = wrapper
    state = {"q": np.array(joints, float), "pulse": 850.0, "servo": 0}

    class XArmAPI:
        def __init__(self, port=None, is_radian=False, **kwargs):
            log.append(("XArmAPI", (port,), {"is_radian": is_radian}))

        def get_servo_angle(self, servo_id=None, is_radian=None):
            return 0, list(state["q"]) + [0.0] * (7 - len(state["q"]))

        def get_position(self, is_radian=None):
            return 0, [400.0, 0.0, 300.0, np.pi, 0.0, 0.0]

        def get_gripper_position(self):
            return 0, state["pulse"]

        def set_servo_angle_j(
            self, angles, speed=None, mvacc=None, mvtime=None, is_radian=None, **kw
        ):
            log.append(("set_servo_angle_j", (list(angles),), {"is_radian": is_radian}))
            state["servo"] += 1
            if fail_at is not None and state["servo"] == fail_at:
                return 1
            state["q"] = np.array(angles)
            return 0

        def set_gripper_position(
            self, pos, wait=False, speed=None, auto_enable=False, timeout=None, **kw
        ):
            log.append(("set_gripper_position", (pos,), {"wait": wait, "speed": speed}))
            floor = 0.0 if object_width is None else object_width / 0.085 * 850
            state["pulse"] = max(pos, floor) if pos < state["pulse"] else pos
            return 0

        motion_enable = property(lambda self: _recorder(log, "motion_enable", 0))
        set_mode = property(lambda self: _recorder(log, "set_mode", 0))
        set_state = property(lambda self: _recorder(log, "set_state", 0))
        set_gripper_mode = property(lambda self: _recorder(log, "set_gripper_mode", 0))
        set_gripper_enable = property(lambda self: _recorder(log, "set_gripper_enable", 0))
        emergency_stop = property(lambda self: _recorder(log, "emergency_stop", 0))
        disconnect = property(lambda self: _recorder(log, "disconnect"))

    wrapper.XArmAPI = XArmAPI
    return {"xarm": pkg, "xarm.wrapper": wrapper}


@pytest.fixture
def sdk(monkeypatch):
    """Install fake SDK modules: ``sdk({"franky": module, ...})``."""

    def install(modules: dict[str, types.ModuleType]) -> None:
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)

    return install
