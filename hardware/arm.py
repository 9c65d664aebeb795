"""The one protocol every arm backend implements, and the session that always stops it.

An `Arm` connects, reports its state, follows a timed joint trajectory, moves its gripper,
stops and disconnects. Backends do only that: whether a trajectory is safe is decided before
any of them is called (`hardware.safety`), and what to do on a fault is decided by the runner
(`hardware.runner`). `session` is the context manager every caller goes through: whatever
happens inside (an exception, Ctrl-C), the arm is sent a stop command and disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from chord_robot.trajectory import JointTrajectory


@dataclass(frozen=True)
class ArmInfo:
    """What an arm is.

    Attributes:
        kind: the backend ("sim", "franka", "ur", "xarm").
        robot: the robot model it is, as `Plan.robot` names it ("panda", "ur5e", "xarm6").
        joint_names: its arm joints, in the controller's order.
        gripper_max_width: full opening of its gripper, metres; 0 when it has none.
        real: True for a physical arm (front ends dry-run those unless the user confirms).
        address: where it is ("sim", "franka://172.16.0.2", ...).
    """

    kind: str
    robot: str
    joint_names: tuple[str, ...]
    gripper_max_width: float
    real: bool
    address: str

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @property
    def has_gripper(self) -> bool:
        return self.gripper_max_width > 0


@dataclass(frozen=True)
class ExecutedPath:
    """The path an arm's controller will run for a trajectory: its commanded state at every
    control step, the first being the start (at rest). Backends whose controller re-plans
    what they send (franky's waypoints) offer ``executed_path(trajectory)``; the runner
    checks it before anything moves (`hardware.safety_paths.check_executed`).

    Attributes:
        times: (N,) seconds from the motion's start.
        positions, velocities, accelerations: (N, dof).
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray


@dataclass(frozen=True)
class ArmState:
    """A reading of the arm.

    Attributes:
        joints: (dof,) joint positions, rad.
        ee_pose: (7,) wxyz_xyz end-effector pose in the base frame as the controller reports
            it (its own TCP definition), or NaNs when it reports none.
        gripper_width: opening, metres; NaN when unknown.
    """

    joints: np.ndarray
    ee_pose: np.ndarray
    gripper_width: float


@dataclass(frozen=True)
class GripperCommand:
    """One gripper action.

    Attributes:
        width: target opening, metres; for a grasp, the expected width of the object.
        speed: finger speed, m/s.
        force: 0 moves the fingers to ``width``; > 0 grasps: closes until this force (N).
        tolerance: a grasp succeeds if the final opening is within ``width`` +- this, metres.
        step: the plan step at which the plan commands it.
    """

    width: float
    speed: float
    force: float = 0.0
    tolerance: float = 0.01
    step: int = 0

    @property
    def is_grasp(self) -> bool:
        return self.force > 0


@dataclass
class Progress:
    """How far an execution got: running state, updated by backends while they move.

    Attributes:
        total_steps: number of plan steps.
        duration: seconds of the (speed-scaled) trajectory.
        segments: the plan's segments, to name where the arm is.
        step: last plan step reached.
        time: speed-scaled trajectory time reached, seconds.
        gripper_commands: gripper commands completed.
    """

    total_steps: int
    duration: float
    segments: dict[str, list[int]] = field(default_factory=dict)
    step: int = 0
    time: float = 0.0
    gripper_commands: int = 0

    def advance(self, trajectory: JointTrajectory, t: float) -> None:
        """Record that ``trajectory`` has been followed up to its local time ``t``."""
        self.time = max(self.time, trajectory.start_time + min(max(t, 0.0), trajectory.duration))
        self.step = max(self.step, trajectory.step_at(t))

    def segment(self) -> str:
        """The plan segment the last reached step lies in."""
        for name, (a, b) in self.segments.items():
            if a <= self.step <= b:
                return name
        return "between segments"

    def describe(self) -> str:
        return (
            f"step {self.step} of {self.total_steps - 1} ({self.segment()}), "
            f"t = {self.time:.2f} s of {self.duration:.2f} s"
        )


@runtime_checkable
class Arm(Protocol):
    """A robot arm. Joint values are radians in the order of ``info.joint_names``; poses are in
    the robot base frame; lengths in metres. Every call blocks until done or raises."""

    info: ArmInfo

    def connect(self) -> None:
        """Open the connection (and load the SDK). Does not move the arm."""

    def state(self) -> ArmState:
        """Read joints, end-effector pose and gripper opening."""

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        """Follow ``trajectory`` (already speed-scaled and checked), updating ``progress``."""

    def gripper(self, command: GripperCommand) -> None:
        """Move or grasp with the gripper; raise if a grasp finds nothing."""

    def stop(self) -> None:
        """Bring the arm to rest now. Must be safe to call at any time, also twice."""

    def disconnect(self) -> None:
        """Close the connection. Must be safe to call after a failed connect."""


class session:
    """``with session(arm):`` connects, and on leaving - normally, on an exception or on
    Ctrl-C - sends a stop command and disconnects, whatever either of those raises.

    Attributes:
        stopped: whether the stop command was sent without error.
        stop_error: what the stop command raised, if anything.
    """

    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.stopped = False
        self.stop_error: BaseException | None = None

    def __enter__(self) -> Arm:
        try:
            self.arm.connect()
        except BaseException:
            self._close()
            raise
        return self.arm

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close()
        return False

    def _close(self) -> None:
        try:
            self.arm.stop()
            self.stopped = True
        except BaseException as e:  # noqa: BLE001 - report it, then still disconnect
            self.stop_error = e
        finally:
            try:
                self.arm.disconnect()
            except Exception:  # noqa: BLE001, S110 - nothing more can be done about a failed disconnect
                pass
