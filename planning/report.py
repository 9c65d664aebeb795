"""What a plan achieves and how it is told: the optimised trajectory's measures and the
reasons to reject it, the costs a Plan carries, the failure message when nothing is
reachable, and `describe` for the terminal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot.plans import Plan
from planning.config import PlanConfig
from planning.grasps import Grasp
from planning.region import CarriedPoints, alignment_errors, rigid_fit, weighted_mean
from planning.search import Candidate, SearchStats
from planning.trajopt import TrajSolution


@dataclass(frozen=True)
class TrajectoryResult:
    """An optimised trajectory of a candidate and what it achieves.

    Attributes:
        solution: the optimiser's result.
        joints: (S, dof) its joints at the S optimisation steps, clipped to the limits.
        ee: (S, 4, 4) TCP poses, world frame.
        errors: (T, N) flow alignment error of the N carried points per frame, metres.
        mean_error, max_error: their weighted mean and maximum, metres.
        pose_error: largest RMS error of the approach and retreat pose targets, metres.
        clearance: smallest height of the robot's body above the table, metres.
        worst_step: the step where it is smallest.
        approach_clearance: smallest distance of the robot's spheres to the scene on the way
            to the pre-grasp, metres.
        motion_clearance: smallest distance of the arm's spheres to the rest of the scene
            (not the manipulated object, not the table's surface) while manipulating and
            retreating, metres; ``motion_step`` is where.
        hand_clearance: the same of the hand's own boxes (negative: the rest of the scene
            inside it, by the depth), metres; ``hand_step`` is where.
        lift: how far the carried object's path was raised above its flow to clear the rest
            of the scene (`FlowPlanner._lift_over`), metres at most.
    """

    solution: TrajSolution
    joints: np.ndarray
    ee: np.ndarray
    errors: np.ndarray
    mean_error: float
    max_error: float
    pose_error: float
    clearance: float
    worst_step: int
    approach_clearance: float
    motion_clearance: float = float("inf")
    motion_step: int = -1
    hand_clearance: float = float("inf")
    hand_step: int = -1
    lift: float = 0.0

    def problem(self, cfg: PlanConfig, name: str) -> str | None:
        """Why this trajectory is not accepted, or None."""
        if self.mean_error > cfg.max_alignment_error:
            return (
                f"the {cfg.robot.name} cannot follow the flow of {name!r}: mean alignment error "
                f"{self.mean_error * 1000:.0f} mm (limit {cfg.max_alignment_error * 1000:.0f} "
                f"mm), worst at frame {int(self.errors.mean(1).argmax())}; the motion leaves the "
                "workspace or the joint limits"
            )
        if self.pose_error > cfg.max_pose_error:
            return (
                f"approach or retreat pose of {name!r} unreachable (error "
                f"{self.pose_error * 1000:.0f} mm); move the robot base"
            )
        if self.clearance < -cfg.max_table_penetration:
            return (
                f"the {cfg.robot.name} would go {-self.clearance * 1000:.0f} mm into the table at "
                f"step {self.worst_step} to follow the flow of {name!r}; move the robot base"
            )
        if self.approach_clearance < -cfg.approach_overlap:
            return (
                f"the {cfg.robot.name}'s way to the {name!r} sweeps through the scene "
                f"({-self.approach_clearance * 1000:.0f} mm overlap)"
            )
        if self.motion_clearance < -cfg.approach_overlap:
            return (
                f"the {cfg.robot.name} would hit the rest of the scene while moving {name!r} "
                f"({-self.motion_clearance * 1000:.0f} mm overlap at step {self.motion_step}); "
                "clear the way or move the robot base"
            )
        if self.hand_clearance < -cfg.hand_overlap:
            return (
                f"the {cfg.robot.name}'s hand would hit the rest of the scene while moving {name!r} "
                f"({-self.hand_clearance * 1000:.0f} mm into it at step {self.hand_step}); "
                "clear the way or move the robot base"
            )
        return None


def unreachable(
    robot: str, mode: str, name: str, stats: SearchStats, bases: int
) -> tuple[str, str]:
    """The failure message when no candidate is reachable, and its stage ("grasp" when
    nothing was even proposed, else "reach")."""
    modes = ["grasp", "push"] if mode == "auto" else [mode]
    blocked = ""
    if stats.into_table or stats.through_scene:
        blocked = (
            f"; {stats.into_table} reachable only through the table, "
            f"{stats.through_scene} only through the scene"
        )
    if stats.into_object:
        blocked += f"; {stats.into_object} grips left out: the hand would meet the object's still part"
    if stats.off_moving:
        blocked += f"; {stats.off_moving} left out: no finger on the moving part"
    best = f"best IK error {stats.best_error * 1000:.0f} mm" if np.isfinite(stats.best_error) else "none tested by IK"
    advice = f"the motion leaves the {robot}'s workspace; move the robot base or check the flow"
    if stats.into_object and not np.isfinite(stats.best_error):
        advice = "every grip would bring the hand into what stays still; push (--mode push) or check the flow"
    elif not stats.proposals and stats.off_moving:
        advice = "no grip the gripper can make lands on the moving part; push (--mode push) or check the flow"
    message = (
        f"no reachable {' or '.join(modes)} for {name!r} along its motion "
        f"({', '.join(stats.tried)}, {bases} base poses; {best}{blocked}): {advice}"
    )
    return message, "reach" if stats.proposals else "grasp"


def plan_costs(
    plan: Plan, chosen: Candidate, traj: TrajectoryResult, stats: SearchStats, seconds: float
) -> dict[str, float]:
    """``plan.costs`` with the optimiser's cost terms (``cost_*``), the alignment, clearance
    and grasp measures, and the time spent (``seconds`` in all)."""
    costs = dict(plan.costs)
    costs.update({f"cost_{k}": v for k, v in traj.solution.costs.items()})
    costs.update(
        alignment_mean_m=traj.mean_error,
        alignment_max_m=traj.max_error,
        pose_error_m=traj.pose_error,
        flow_nonrigid_max_m=chosen.flow_residual,
        flow_nonrigid_mean_m=rigid_mean(chosen.grasp, chosen.carried),
        hinge_residual_m=chosen.carried.off_flow,
        table_clearance_m=traj.clearance,
        approach_clearance_m=traj.approach_clearance,
        lift_m=traj.lift,
        grasp_score=chosen.grasp.score,
        grasp_time_s=stats.grasp_time,
        ik_time_s=stats.ik_time,
        solve_time_s=traj.solution.solve_time,
        total_time_s=seconds,
        grips_into_object=float(stats.into_object),
    )
    # nothing else near the moving robot: no figure (a plan's costs stay plain JSON numbers)
    near = {"motion_clearance_m": traj.motion_clearance, "hand_clearance_m": traj.hand_clearance}
    costs.update({k: v for k, v in near.items() if np.isfinite(v)})
    return costs


def rigid_mean(grasp: Grasp, carried: CarriedPoints) -> float:
    """Mean alignment error (as `weighted_mean`, metres) of the carried points' own best rigid
    fit: what a hand that follows the flow exactly under the rigid attachment achieves, the
    floor of ``alignment_mean_m`` (zero for an exactly rigid flow)."""
    ee = rigid_fit(carried) @ grasp.pose
    return weighted_mean(alignment_errors(ee, grasp.pose, carried), carried.weights)


def describe(plan: Plan) -> str:
    """Multi-line summary of a plan for the terminal: grasp, alignment error, clearances, solve
    time."""
    c = {k: plan.costs.get(k, float("nan")) for k in _REPORTED}
    pose = np.round(plan.grasp_pose[4:], 3).tolist()
    grasp = (
        f"{plan.mode} {plan.object!r} at {pose} "
        f"(width {plan.grasp_width * 1000:.0f} mm, score {c['grasp_score']:.2f})"
    )
    error = (
        f"alignment error: mean {c['alignment_mean_m'] * 1000:.2f} mm, "
        f"max {c['alignment_max_m'] * 1000:.2f} mm"
    )
    clear = (
        f"clearance: table {_mm(c['table_clearance_m'])}; rest of the scene while moving it: arm "
        f"{_mm(c['motion_clearance_m'])}, hand {_mm(c['hand_clearance_m'])}"
    )
    timing = (
        f"solve {c['solve_time_s']:.2f} s (IK {c['ik_time_s']:.2f} s, total {c['total_time_s']:.2f} s); "
        f"duration {plan.times[-1]:.2f} s, {plan.num_steps} steps"
    )
    return f"{grasp}\n{error}\n{clear}\n{timing}"


def _mm(metres: float) -> str:
    """A clearance for the terminal: millimetres, or "-" when nothing was near (or unknown)."""
    return f"{metres * 1000:.0f} mm" if np.isfinite(metres) else "-"


_REPORTED = (
    "grasp_score",
    "alignment_mean_m",
    "alignment_max_m",
    "table_clearance_m",
    "motion_clearance_m",
    "hand_clearance_m",
    "solve_time_s",
    "ik_time_s",
    "total_time_s",
)
