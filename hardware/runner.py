"""Turning a Plan into arm commands, checking them, and running them on an `Arm`.

`prepare` is pure: it maps the plan into the arm's joint order, splits it into motions and
gripper actions (the arm rests while the gripper acts), speed-scales the motions and runs
every plan check of `hardware.safety`, returning a `Prepared` program and its report without
touching any arm. `run` then refuses a failed report, connects through `session`, checks the
start state, and - unless it is a dry run - executes the program. Whatever goes wrong while
the arm moves (a backend exception, Ctrl-C), the session stops the arm and `run` raises an
`ExecutionFault` saying why and how far it got.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chord_robot.errors import ExecutionFault, InputError
from chord_robot.plans import Plan
from chord_robot.trajectory import JointTrajectory, is_motion, pieces, timed_segment
from hardware.arm import Arm, ArmInfo, ArmState, GripperCommand, Progress, session
from hardware.kinematics import kinematics_for
from hardware.robots import RobotSpec, robot_spec
from hardware.safety import (
    Check,
    Refusal,
    SafetyReport,
    check_base,
    check_duration,
    check_dynamics,
    check_gripper,
    check_speed,
    check_start,
    check_tcp,
    registration_or_plan_base,
)
from hardware.safety_config import SafetyConfig
from hardware.safety_paths import check_cartesian, check_executed


@dataclass(frozen=True)
class ExecuteConfig:
    """How plans are turned into arm commands."""

    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """The safety layer's limits and tolerances."""
    grasp_force: float = 20.0
    """Force of a grasp (the plan closes the gripper in grasp mode), N."""
    grasp_tolerance: float = 0.02
    """A grasp succeeds if the fingers stop within the plan's grasp width +- this, metres."""
    gripper_speed: float = 0.05
    """Finger speed, m/s."""
    close_below: float = 0.5
    """A plan gripper command below this is "closed" (commands: 1 open, 0 closed)."""


@dataclass(frozen=True)
class Motion:
    """Follow a trajectory."""

    trajectory: JointTrajectory


@dataclass(frozen=True)
class Grip:
    """Act with the gripper (the arm at rest)."""

    command: GripperCommand


@dataclass(frozen=True)
class Prepared:
    """A plan made into a checked program for one arm.

    Attributes:
        plan: the plan.
        spec: its robot.
        arm: the arm it is for.
        speed: the speed scale applied.
        robot_from_scan: (4, 4) registration used (the plan's own base when none was given).
        registered: whether a registration was given.
        columns: (dof,) columns of ``plan.joints`` in the arm's joint order.
        program: motions and gripper actions, in order.
        report: the plan checks (the start check is added by `run`).
    """

    plan: Plan
    spec: RobotSpec
    arm: ArmInfo
    speed: float
    robot_from_scan: np.ndarray
    registered: bool
    columns: np.ndarray
    program: tuple[Motion | Grip, ...]
    report: SafetyReport

    @property
    def trajectories(self) -> list[JointTrajectory]:
        return [item.trajectory for item in self.program if isinstance(item, Motion)]

    @property
    def start(self) -> np.ndarray:
        """(dof,) the plan's first configuration in the arm's joint order."""
        return self.plan.joints[0, self.columns]

    @property
    def end(self) -> np.ndarray:
        return self.plan.joints[-1, self.columns]

    @property
    def duration(self) -> float:
        """Seconds of the speed-scaled plan (gripper pauses included)."""
        return float(self.plan.times[-1] / self.speed)


@dataclass(frozen=True)
class ExecutionResult:
    """What `run` did.

    Attributes:
        moved: False for a dry run.
        report: every check, the start check included.
        progress: how far it got.
        start_state: the arm's state before anything moved.
        final_state: after the program (None in a dry run).
        final_error: max abs joint difference to the plan's last configuration, rad (NaN in a
            dry run).
        stopped: whether the closing stop command was sent without error.
    """

    moved: bool
    report: SafetyReport
    progress: Progress
    start_state: ArmState
    final_state: ArmState | None
    final_error: float
    stopped: bool


def plan_columns(plan: Plan, spec: RobotSpec) -> np.ndarray:
    """(dof,) columns of ``plan.joints`` holding ``spec``'s joints, in ``spec``'s order."""
    if plan.joint_names:
        missing = [n for n in spec.joint_names if n not in plan.joint_names]
        if missing:
            raise Refusal(
                [
                    Check(
                        "robot",
                        False,
                        0.0,
                        0.0,
                        "",
                        f"the plan's joints miss {', '.join(missing)}: it was not made for a {spec.name}",
                    )
                ]
            )
        return np.array([plan.joint_names.index(n) for n in spec.joint_names])
    if plan.dof != spec.dof:
        raise Refusal(
            [
                Check(
                    "robot",
                    False,
                    float(plan.dof),
                    float(spec.dof),
                    "",
                    f"the plan has {plan.dof} joints, a {spec.name} has {spec.dof}",
                )
            ]
        )
    return np.arange(spec.dof)


def check_robot(plan: Plan, arm: ArmInfo) -> Check:
    """The plan was made for the arm's robot model."""
    ok = plan.robot == arm.robot
    detail = f"plan and arm are a {arm.robot}"
    if not ok:
        detail = (
            f"the plan is for a {plan.robot!r} ({plan.dof} joints) but {arm.address} is a "
            f"{arm.robot!r} ({arm.dof} joints): plan for {arm.robot!r}"
        )
    return Check("robot", ok, float(plan.dof), float(arm.dof), "", detail)


def gripper_command(
    new: float, old: float | None, plan: Plan, arm: ArmInfo, step: int, config: ExecuteConfig
) -> GripperCommand:
    """The gripper action for a plan gripper value ``new`` (1 open, 0 closed) after ``old``.

    Closing below ``close_below`` in a grasp plan grasps the object (expected width: the plan's
    grasp width) with ``grasp_force``; anything else moves the fingers to ``new`` x full opening.
    """
    closing = old is not None and new < old and new < config.close_below
    if closing and plan.mode == "grasp":
        return GripperCommand(
            min(plan.grasp_width, arm.gripper_max_width),
            config.gripper_speed,
            config.grasp_force,
            config.grasp_tolerance,
            step,
        )
    return GripperCommand(
        float(new) * arm.gripper_max_width, config.gripper_speed, 0.0, config.grasp_tolerance, step
    )


def build_program(
    plan: Plan, columns: np.ndarray, arm: ArmInfo, speed: float, config: ExecuteConfig
) -> tuple[Motion | Grip, ...]:
    """The plan's motions (`chord_robot.trajectory.pieces`: cut at rests and gripper changes)
    and the gripper actions at the gripper changes.

    The first action sets the gripper to the plan's first value (on an arm with a gripper);
    a span of steps that does not move the joints becomes no motion.
    """
    joints, gripper, times = plan.joints[:, columns], plan.gripper, plan.times
    program: list[Motion | Grip] = []
    if arm.has_gripper:
        program.append(Grip(gripper_command(float(gripper[0]), None, plan, arm, 0, config)))
    for a, b in pieces(joints, gripper):
        if a > 0 and arm.has_gripper and abs(gripper[a] - gripper[a - 1]) > 1e-9:
            program.append(
                Grip(
                    gripper_command(float(gripper[a]), float(gripper[a - 1]), plan, arm, a, config)
                )
            )
        if is_motion(joints, a, b):
            program.append(Motion(timed_segment(times[a:b], joints[a:b], speed, a)))
    return tuple(program)


def prepare(
    plan: Plan,
    arm: ArmInfo,
    speed: float,
    config: ExecuteConfig | None = None,
    robot_from_scan: np.ndarray | None = None,
) -> Prepared:
    """Check ``plan`` for ``arm`` at ``speed`` without touching the arm.

    Args:
        robot_from_scan: (4, 4) registration, p_robot = robot_from_scan @ p_scan; None to take
            the plan's robot base as the real one.
    Returns:
        the program and its report (which may hold failed checks: `run` refuses those).
    Raises:
        Refusal: when nothing can be checked (unknown robot, wrong arm, invalid speed).
    """
    cfg = config or ExecuteConfig()
    speed_check = check_speed(speed, cfg.safety)
    if not speed_check.ok:
        raise Refusal([speed_check])
    spec = robot_spec(plan.robot)
    robot_check = check_robot(plan, arm)
    if not robot_check.ok or arm.joint_names != spec.joint_names:
        raise Refusal(
            [robot_check]
            if not robot_check.ok
            else [
                Check(
                    "robot",
                    False,
                    0.0,
                    0.0,
                    "",
                    f"{arm.address} reports joints {arm.joint_names}, "
                    f"a {spec.name} has {spec.joint_names}",
                )
            ]
        )
    columns = plan_columns(plan, spec)
    kin = kinematics_for(spec, plan.robot_urdf)
    program = build_program(plan, columns, arm, speed, cfg)
    trajectories = [item.trajectory for item in program if isinstance(item, Motion)]
    registration = registration_or_plan_base(robot_from_scan, plan.robot_base)
    checks = [
        speed_check,
        robot_check,
        check_duration(float(plan.times[-1] / speed), cfg.safety),
        *check_dynamics(trajectories, spec, cfg.safety),
        *check_cartesian(trajectories, spec, kin, cfg.safety),
        check_gripper(plan.joints[:, columns], plan.gripper, arm.has_gripper, cfg.safety),
        check_base(robot_from_scan, plan.robot_base, cfg.safety),
        check_tcp(kin, spec, plan.joints[:, columns], plan.ee_poses, registration, cfg.safety),
    ]
    return Prepared(
        plan,
        spec,
        arm,
        speed,
        registration,
        robot_from_scan is not None,
        columns,
        program,
        SafetyReport(tuple(checks)),
    )


def run(
    arm: Arm, prepared: Prepared, config: ExecuteConfig | None = None, dry_run: bool = False
) -> ExecutionResult:
    """Execute a prepared program on ``arm`` (or, for a dry run, only read its state).

    Raises:
        Refusal: a check failed (the plan checks, or the start state after connecting); the
            arm was not moved.
        ExecutionFault: an exception or Ctrl-C while executing; the arm was sent a stop command
            and the message says how far it got.
    """
    cfg = config or ExecuteConfig()
    prepared.report.raise_if_failed()
    plan = prepared.plan
    progress = Progress(plan.num_steps, prepared.duration, dict(plan.segments))
    sess = session(arm)
    started = False
    try:
        with sess:
            start_state = arm.state()
            report = prepared.report.with_check(
                check_start(
                    prepared.start, start_state.joints, prepared.spec.joint_names, cfg.safety
                )
            )
            executed_path = getattr(arm, "executed_path", None)
            if executed_path is not None:  # the controller re-plans what it is sent: check that
                paths = [(t, executed_path(t)) for t in prepared.trajectories]
                kin = kinematics_for(prepared.spec, plan.robot_urdf)
                for check in check_executed(paths, prepared.spec, kin, cfg.safety):
                    report = report.with_check(check)
            report.raise_if_failed()
            final_state = None
            if not dry_run:
                started = True
                for item in prepared.program:
                    if isinstance(item, Grip):
                        arm.gripper(item.command)
                        progress.gripper_commands += 1
                        progress.step = max(progress.step, item.command.step)
                    else:
                        arm.follow(item.trajectory, progress)
                        progress.advance(item.trajectory, item.trajectory.duration)
                progress.time = prepared.duration
                final_state = arm.state()
    except InputError:
        raise
    except (Exception, KeyboardInterrupt) as e:
        cause = (
            "interrupted by Ctrl-C"
            if isinstance(e, KeyboardInterrupt)
            else f"{type(e).__name__}: {e}"
        )
        if sess.stopped:
            stop = "the arm was sent a stop command"
        else:
            stop = f"THE STOP COMMAND FAILED ({sess.stop_error!r}): check the arm"
        where = f"stopped at {progress.describe()}" if started else "before anything moved"
        what = "fault during motion" if started else "could not start"
        raise ExecutionFault(f"{what} ({cause}); {stop}; {where}") from e
    final_error = float("nan")
    if final_state is not None:
        final_error = float(np.abs(final_state.joints - prepared.end).max())
    return ExecutionResult(
        not dry_run, report, progress, start_state, final_state, final_error, sess.stopped
    )


def timeline(prepared: Prepared, dt: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The program's joint positions over (speed-scaled) plan time, for plots.

    Returns:
        times (S,), positions (S, dof); rests between motions hold the last position.
    """
    ts, qs = [], []
    last = prepared.start
    t_prev = 0.0
    for traj in prepared.trajectories:
        if traj.start_time > t_prev:
            ts.append(np.array([t_prev, traj.start_time]))
            qs.append(np.stack([last, last]))
        t, q, _ = traj.sample(dt)
        ts.append(traj.start_time + t)
        qs.append(q)
        last, t_prev = q[-1], traj.start_time + traj.duration
    if t_prev < prepared.duration or not ts:
        ts.append(np.array([t_prev, prepared.duration]))
        qs.append(np.stack([last, last]))
    return np.concatenate(ts), np.concatenate(qs)
