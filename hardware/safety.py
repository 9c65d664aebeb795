"""The safety layer: every check a plan must pass before any arm moves.

Each check is a small function returning a `Check` (name, pass/fail, the worst value found,
the limit, and a sentence saying where). They run on the trajectories the arm will actually
follow (`chord_robot.trajectory`: speed-scaled cubic curves through the plan's waypoints), in the
robot base frame (`hardware.frames`), against the published limits of `chord_robot.robots`:

    speed          the speed scale lies in (0, max_speed]
    duration       the scaled trajectory is not absurdly long
    joint_limits   positions inside [lower + margin, upper - margin] (value: the smallest margin)
    velocity       |qd| <= limit_fraction * limit, per joint, after speed scaling (x s)
    acceleration   |qdd| likewise (x s^2)
    jerk           |qddd| likewise (x s^3)
    workspace      the robot's named points (TCP, fingertips, tool) and the collision geometry
                   of every moving link, fingers open and closed, stay in a box
    table          the same stay above the table plane (plus a clearance)
    gripper        the gripper only acts while the arm is at rest, and only on arms with one
    base           the registration puts the plan's robot base on the real one
    tcp            the plan's end-effector poses agree with its joints (same robot, same TCP)
    start          (after connecting) the plan starts where the arm is
    executed ...   (after connecting, for controllers that re-plan what they are sent) the path
                   they will run: near the checked curve, within the limits, the workspace
                   and above the table

The workspace, table and executed-path checks are in `hardware.safety_paths` (where the arm's
body goes); the rest are here.
A failed check refuses the plan with `Refusal` (a `SafetyError`: exit code 2, nothing moved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from chord_robot.errors import SafetyError
from chord_robot.geometry import invert, pose_to_matrix, rotation_angle
from chord_robot.trajectory import JointTrajectory, derivatives, evaluation_times
from hardware.kinematics import Kinematics
from hardware.robots import RobotSpec
from hardware.safety_config import SafetyConfig


@dataclass(frozen=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: which check ("velocity", "table", ...).
        ok: passed.
        value: the worst value found (in ``unit``).
        limit: what it is compared with (in ``unit``).
        unit: "%", "m", "rad", "s" or "".
        detail: one sentence: where the worst value occurs, or why it failed.
    """

    name: str
    ok: bool
    value: float
    limit: float
    unit: str
    detail: str


class Refusal(SafetyError):
    """A plan the safety layer refuses; ``checks`` are the failed checks."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = list(checks)
        reasons = "; ".join(f"{c.name}: {c.detail}" for c in self.checks)
        super().__init__(f"refused, nothing moved: {reasons}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.checks]


@dataclass(frozen=True)
class SafetyReport:
    """All checks of one plan, in order."""

    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def get(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def with_check(self, check: Check) -> SafetyReport:
        """A report with ``check`` added (replacing one of the same name)."""
        return replace(
            self, checks=tuple(c for c in self.checks if c.name != check.name) + (check,)
        )

    def raise_if_failed(self) -> None:
        if self.failed:
            raise Refusal(self.failed)


# --------------------------------------------------------------------------- checks


def check_speed(speed: float, config: SafetyConfig) -> Check:
    ok = 0 < speed <= config.max_speed
    detail = (
        f"speed scale {speed:g}"
        if ok
        else f"speed scale {speed:g} is outside (0, {config.max_speed:g}] (the site's maximum)"
    )
    return Check("speed", ok, speed, config.max_speed, "", detail)


def check_duration(duration: float, config: SafetyConfig) -> Check:
    ok = duration <= config.max_duration
    detail = (
        f"{duration:.2f} s"
        if ok
        else (
            f"the trajectory lasts {duration:.1f} s, more than the {config.max_duration:.0f} s allowed"
        )
    )
    return Check("duration", ok, duration, config.max_duration, "s", detail)


def moment(traj: JointTrajectory, t: float) -> str:
    """A trajectory's local time ``t`` as refusals say it: plan time and step."""
    return f"t = {traj.start_time + t:.2f} s (step {traj.step_at(t)})"


def check_dynamics(
    trajectories: list[JointTrajectory], spec: RobotSpec, config: SafetyConfig
) -> list[Check]:
    """Joint limits, velocity, acceleration and jerk of the speed-scaled trajectories."""
    lim = spec.limits.arrays()
    lower, upper = lim["lower"] + config.position_margin, lim["upper"] - config.position_margin
    names = spec.joint_names
    worst = {k: (-np.inf, "") for k in ("joint_limits", "velocity", "acceleration", "jerk")}
    peak_detail: dict[str, str] = {}
    for traj in trajectories:
        t = evaluation_times(traj, config.check_dt)
        q, qd, qdd, qddd = derivatives(traj, t)
        # positions: signed excess over the nearest limit (> 0 is a violation), rad
        over = np.maximum(q - upper, lower - q)
        s, j = np.unravel_index(np.argmax(over), over.shape)
        if over[s, j] > worst["joint_limits"][0]:
            side, bound = (
                ("above its upper", upper[j])
                if q[s, j] > upper[j]
                else ("below its lower", lower[j])
            )
            worst["joint_limits"] = (
                float(over[s, j]),
                f"{names[j]} reaches {q[s, j]:.4f} rad at {moment(traj, t[s])}, {side} limit {bound:.4f} rad",
            )
            peak_detail["joint_limits"] = (
                f"closest: {names[j]} {-over[s, j]:.3f} rad inside its limit"
            )
        for key, values, unit, limit in (
            ("velocity", qd, "rad/s", lim["velocity"]),
            ("acceleration", qdd, "rad/s^2", lim["acceleration"]),
            ("jerk", qddd, "rad/s^3", lim["jerk"]),
        ):
            ratio = np.abs(values) / limit
            s, j = np.unravel_index(np.argmax(ratio), ratio.shape)
            if ratio[s, j] > worst[key][0]:
                where = (
                    f"{names[j]} at {abs(values[s, j]):.3g} {unit} ({100 * ratio[s, j]:.0f}% of its "
                    f"{limit[j]:g} {unit} limit) at {moment(traj, t[s])}, speed scale {traj.speed:g}"
                )
                worst[key] = (float(ratio[s, j]), where)
    excess, detail = worst["joint_limits"]
    ok = bool(excess <= 0)
    value = -float(excess) if np.isfinite(excess) else 0.0  # margin: > 0 inside the limits
    checks = [
        Check(
            "joint_limits",
            ok,
            value,
            0.0,
            "rad",
            peak_detail.get("joint_limits", "no motion") if ok else detail,
        )
    ]
    for key in ("velocity", "acceleration", "jerk"):
        ratio, detail = worst[key]
        ratio = max(float(ratio), 0.0)
        ok = ratio <= config.limit_fraction
        if not detail:
            detail = "no motion"
        elif ok:
            detail = f"peak: {detail}"
        else:
            detail += "; lower the speed scale or re-time the plan"
        checks.append(Check(key, ok, 100 * ratio, 100 * config.limit_fraction, "%", detail))
    return checks


def check_gripper(
    joints: np.ndarray, gripper: np.ndarray, has_gripper: bool, config: SafetyConfig
) -> Check:
    """The gripper acts only between steps at rest, and only if the arm has one.

    Args:
        joints: (T, dof) plan joints; gripper: (T,) plan gripper commands.
    """
    events = np.flatnonzero(np.abs(np.diff(gripper)) > 1e-9)
    moving = [
        int(i) for i in events if np.abs(joints[i + 1] - joints[i]).max() > config.rest_tolerance
    ]
    if moving:
        i = moving[0]
        d = float(np.abs(joints[i + 1] - joints[i]).max())
        return Check(
            "gripper",
            False,
            d,
            config.rest_tolerance,
            "rad",
            f"the gripper changes between steps {i} and {i + 1} while the joints move {d:.4f} rad; "
            "the arm must rest while the gripper acts (re-plan)",
        )
    if len(events) and not has_gripper:
        return Check(
            "gripper",
            False,
            float(len(events)),
            0.0,
            "",
            f"the plan opens/closes the gripper {len(events)} times but this arm has no gripper "
            "configured",
        )
    return Check(
        "gripper",
        True,
        float(len(events)),
        0.0,
        "",
        f"{len(events)} gripper actions, all at rest" if has_gripper else "gripper not used",
    )


def check_base(
    robot_from_scan: np.ndarray | None, robot_base: np.ndarray, config: SafetyConfig
) -> Check:
    """The registration maps the plan's robot base onto the real base (identity)."""
    if robot_from_scan is None:
        return Check(
            "base",
            True,
            0.0,
            config.base_tolerance,
            "m",
            "no scan-to-robot registration: the plan's robot base is taken as the real one",
        )
    m = robot_from_scan @ pose_to_matrix(robot_base)
    offset, angle = float(np.linalg.norm(m[:3, 3])), float(rotation_angle(m))
    ok = offset <= config.base_tolerance and angle <= config.base_angle_tolerance
    detail = f"the plan's robot base is {offset:.3f} m and {np.degrees(angle):.1f} deg from the registered one"
    if not ok:
        detail += ": the plan was made for a robot elsewhere; re-plan with the registered base"
    return Check("base", ok, offset, config.base_tolerance, "m", detail)


def check_tcp(
    kin: Kinematics,
    spec: RobotSpec,
    joints: np.ndarray,
    ee_poses: np.ndarray,
    robot_from_scan: np.ndarray,
    config: SafetyConfig,
) -> Check:
    """The plan's end-effector positions (mapped to the base frame) agree with forward
    kinematics of its joints: the plan was made for this robot model and TCP."""
    fk = kin.link_poses(joints, [spec.tcp_link])[spec.tcp_link][:, :3, 3]
    ee = (robot_from_scan @ pose_to_matrix(ee_poses))[:, :3, 3]
    err = np.linalg.norm(fk - ee, axis=1)
    return _largest(
        "tcp",
        err,
        config.tcp_tolerance,
        "m",
        lambda i: f"largest distance {err[i]:.4f} m at step {i}",
        lambda i: (
            f"the plan's end-effector pose at step {i} is {err[i]:.3f} m from where its joints put "
            f"the {spec.tcp_link} frame: the plan was made for another robot model, TCP or base"
        ),
    )


def check_start(
    plan_start: np.ndarray, current: np.ndarray, joint_names: tuple[str, ...], config: SafetyConfig
) -> Check:
    """The plan's first configuration is the arm's current one (max abs joint difference)."""
    diff = np.abs(np.asarray(plan_start, float) - np.asarray(current, float))
    return _largest(
        "start",
        diff,
        config.start_tolerance,
        "rad",
        lambda j: f"{joint_names[j]} differs by {diff[j]:.4f} rad",
        lambda j: (
            f"the plan starts {diff[j]:.3f} rad away from the arm's current configuration "
            f"({joint_names[j]}: plan {plan_start[j]:+.3f}, arm {current[j]:+.3f} rad; tolerance "
            f"{config.start_tolerance:g} rad): move the arm to the plan's start or re-plan from here"
        ),
    )


def _largest(
    name: str,
    values: np.ndarray,
    tolerance: float,
    unit: str,
    passed: Callable[[int], str],
    failed: Callable[[int], str],
) -> Check:
    """The check that the largest of ``values`` is within ``tolerance``, worded by ``passed`` or
    ``failed`` called with its index."""
    i = int(np.argmax(values))
    ok = bool(values[i] <= tolerance)
    return Check(name, ok, float(values[i]), tolerance, unit, passed(i) if ok else failed(i))


def registration_or_plan_base(
    robot_from_scan: np.ndarray | None, robot_base: np.ndarray
) -> np.ndarray:
    """The registration to use: the given one, or the plan's own base taken as the truth."""
    return robot_from_scan if robot_from_scan is not None else invert(pose_to_matrix(robot_base))
