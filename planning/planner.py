"""ObjectFlow + scene -> Plan: object, grasp, trajectory optimisation, timing (DESIGN.md §5).

`FlowPlanner` holds the loaded robot, the IK and the jitted trajectory optimiser, so repeated
plans (an evaluation suite, a benchmark) compile once. `plan_from_flow` is the one-call entry
point the CLI uses. The search for a reachable grasp is in `search`, the step layout of a plan
in `layout`, its measures and messages in `report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from scipy.spatial import cKDTree

from chord_robot.errors import PlanningFailure
from chord_robot.flow import ObjectFlow
from chord_robot.plans import Plan
from planning.clearance import (
    approach_clearance,
    hand_clearance,
    hand_gaps,
    motion_clearance,
    others_above_table,
)
from planning.config import PlanConfig, check_mode
from planning.grasps import AntipodalGraspPlanner, GraspPlanner
from planning.kinematics import PathIK
from planning.layout import StepLayout, assemble_plan, pose_error
from planning.region import (
    alignment_errors,
    max_displacement,
    moving_mask,
    select_object,
    weighted_mean,
)
from planning.report import TrajectoryResult, plan_costs, unreachable
from planning.robot import RobotModel, load_robot
from planning.search import Candidate, CandidateSearch, base_poses, grasp_request, scene_obstacles
from planning.trajopt import TrajectoryOptimizer


class FlowPlanner:
    """The robot, its IK and the jitted trajectory optimiser, reused across plans.

    Args:
        config: planning configuration.
        model: an already loaded robot (default: load ``config.robot``).
        grasp_planner: replaces the antipodal sampler (e.g. a learned grasp network); it gets
            the same `GraspRequest` and its grasps go through the same reachability tests.
    """

    def __init__(
        self,
        config: PlanConfig | None = None,
        model: RobotModel | None = None,
        grasp_planner: GraspPlanner | None = None,
    ) -> None:
        self.config = config or PlanConfig()
        self.model = model or load_robot(self.config.robot)
        self.grasp_planner = grasp_planner or AntipodalGraspPlanner(self.config.grasp)
        self.optimizer = TrajectoryOptimizer(self.model, self.config.trajopt)
        self.ik = PathIK(self.optimizer.chain, self.model.lower, self.model.upper, self.config.ik)

    def layout(self, frames: int) -> StepLayout:
        """The optimisation steps for a flow of ``frames`` frames."""
        return self.config.layout(frames)

    def plan(
        self,
        flow: ObjectFlow,
        scene_points: dict[str, np.ndarray] | None = None,
        *,
        object_name: str | None = None,
        base: np.ndarray | None = None,
        mode: str | None = None,
        rng: np.random.Generator | None = None,
        log: Callable[[str], None] | None = None,
    ) -> Plan:
        """Plan a grasp (or push) and a timed trajectory that reproduces ``flow``.

        Args:
            flow: the object flow; its most-moving object is manipulated unless ``object_name``.
            scene_points: name -> (M, 3) scene points (obstacles); None uses the flow's objects.
            object_name: the object to manipulate.
            base: (4, 4) robot base pose in the world; None places it automatically.
            mode: overrides ``config.mode`` (ConfigError, field ``mode``, if not a mode).
            rng: randomness of grasp sampling and IK seeds (default seed 0).
            log: called with progress lines (the CLI prints them).
        Returns:
            The plan; ``plan.costs`` holds alignment errors, solve times and cost terms.
        Raises:
            PlanningFailure: no grasp/push is proposed ("grasp" stage) or reachable along the
                motion, or the optimised trajectories of the first ``config.solves`` reachable
                ones do not follow the flow within ``config.max_alignment_error``, miss the
                approach/retreat poses or go into the table ("reach" stage).
        """
        cfg = self.config
        mode = mode or cfg.mode
        check_mode(mode)
        rng = rng or np.random.default_rng(0)
        say = log or (lambda _msg: None)
        t_start = time.perf_counter()
        if base is not None:
            base = np.asarray(base, dtype=np.float64)
            assert base.shape == (4, 4), base.shape

        name = select_object(flow, object_name, cfg.region)
        motion = flow.objects[name]
        mask = moving_mask(motion, cfg.region)
        obstacles = scene_obstacles(flow, scene_points, name)
        say(
            f"object {name!r}: {len(motion.points)} points, {int(mask.sum())} moving, "
            f"up to {max_displacement(motion).max():.3f} m"
        )

        bases = [base] if base is not None else base_poses(cfg, motion, mask, obstacles)
        request = grasp_request(motion, mask, obstacles, self.model)
        layout = self.layout(motion.num_frames)
        rejected: list[str] = []
        # the scene at the start, which the free approach must not sweep through; the rest of
        # it, which the manipulation and retreat must not hit
        scene = cKDTree(np.concatenate([obstacles, motion.points]))
        others = others_above_table(obstacles, self.optimizer.config.table_z)
        search = CandidateSearch(
            cfg, self.model, self.ik, self.optimizer, self.grasp_planner, motion, mask, scene, rng
        )
        for chosen in search.reachable(mode, request, bases, say):
            grasp = chosen.grasp
            say(
                f"{grasp.mode} at {np.round(grasp.pose[:3, 3], 3).tolist()} width "
                f"{grasp.width * 1000:.0f} mm, score {grasp.score:.2f}, IK error "
                f"{chosen.ik_error * 1000:.1f} mm beyond the flow's non-rigidity (up to "
                f"{chosen.flow_residual * 1000:.1f} mm)"
            )
            traj = self._optimise(chosen, layout, scene, others)
            if traj.hand_clearance < -cfg.hand_overlap and grasp.mode == "grasp" and not grasp.pinch and mask.all():
                traj = self._lift_over(chosen, layout, scene, others, traj, name)
                if traj.lift > 0.0:
                    say(f"lifted the carried {name!r} up to {traj.lift * 1000:.0f} mm above its flow to clear the rest of the scene")
            say(
                f"trajectory: alignment error mean {traj.mean_error * 1000:.2f} mm, max "
                f"{traj.max_error * 1000:.2f} mm; table clearance {traj.clearance * 1000:.0f} mm; "
                f"solve {traj.solution.solve_time:.2f} s"
            )
            problem = traj.problem(cfg, name)
            if problem is None:
                break
            say(f"rejected: {problem}")
            rejected.append(problem)
            if len(rejected) >= cfg.solves:
                raise PlanningFailure(rejected[0])
        else:
            if rejected:
                raise PlanningFailure(rejected[0])
            message, stage = unreachable(cfg.robot.name, mode, name, search.stats, len(bases))
            raise PlanningFailure(message, stage=stage)

        plan = assemble_plan(
            layout, self.model, cfg.timing, name, grasp, chosen.base, traj.joints, traj.ee
        )
        costs = plan_costs(plan, chosen, traj, search.stats, time.perf_counter() - t_start)
        return replace(plan, costs=costs)

    def _lift_over(
        self,
        chosen: Candidate,
        layout: StepLayout,
        scene: cKDTree,
        others: cKDTree | None,
        traj: TrajectoryResult,
        name: str,
    ) -> TrajectoryResult:
        """``traj`` with its hand lifted over the rest of the scene, when the whole object is
        carried (a free body, not a part) and the hand would meet something on the way.

        The steps where the hand (`hand_gaps`) comes within `PlanConfig.lift_clearance` of the
        scene get their targets raised by the shortfall, spread over three steps either side
        (the grasp and what comes before it stay put; the retreat keeps the last step's
        lift), and the trajectory is solved again, up to three times while it still falls
        short, never lifting more than `PlanConfig.max_lift`. The flow is followed where the
        way is clear and left upwards where it is not (a flow generated from a prior may carry
        an object a centimetre lower over a plate's rim than a hand holding it can pass); the
        alignment error is still measured against the flow. A lift late in the carry raises
        where the object is let go: it is dropped from up to ``max_lift`` above where the flow
        puts it down. Returns the first accepted trajectory, else ``traj``."""
        cfg = self.config
        a, last = layout.grasp, layout.grasp + layout.frames - 1
        steps = np.arange(layout.size)
        falloff = np.clip(1.0 - np.abs(steps[None] - steps[:, None]) / 4.0, 0.0, None)
        lift, q = np.zeros(layout.size), traj.joints
        up = chosen.base[:3, :3].T @ np.array([0.0, 0.0, 1.0])  # the world's up in the base frame
        for _ in range(3):
            gaps = hand_gaps(self.model, layout, q, chosen.base, others, chosen.grasp)
            need = np.maximum(cfg.lift_clearance - gaps, 0.0)
            if not need.any():
                break
            lift = lift + (need[:, None] * falloff).max(0)
            lift[: a + 1] = 0.0
            lift[last + 1 :] = np.maximum(lift[last + 1 :], lift[last])
            if lift.max() > cfg.max_lift:
                break
            target = chosen.problem.target + lift[:, None, None] * up
            lifted = replace(chosen, problem=replace(chosen.problem, target=target))
            attempt = replace(self._optimise(lifted, layout, scene, others), lift=float(lift.max()))
            if attempt.problem(cfg, name) is None:
                return attempt
            q = attempt.joints
        return traj

    def _optimise(
        self, chosen: Candidate, layout: StepLayout, scene: cKDTree, others: cKDTree | None = None
    ) -> TrajectoryResult:
        """Optimise ``chosen``'s trajectory and measure it. The optimiser does not see the
        scene: if its approach strays into it where the (checked) IK approach did not, it
        solves again with the free approach held to the IK one."""
        optimizer, lower, upper = self.optimizer, self.model.lower, self.model.upper
        solution = optimizer.solve(chosen.problem)
        q = np.clip(solution.joints, lower, upper)
        free = approach_clearance(optimizer, layout, q, chosen.base, scene)
        if free < -self.config.approach_overlap:
            hold = np.ones(len(chosen.problem.q_init))
            hold[1 : layout.first_target + 1] = self.config.approach_hold
            solution = optimizer.solve(replace(chosen.problem, hold=hold))
            q = np.clip(solution.joints, lower, upper)
            free = approach_clearance(optimizer, layout, q, chosen.base, scene)
        ee_base = self.model.tcp_pose(q)
        ee = chosen.base @ ee_base
        errors = alignment_errors(ee[layout.manipulate], chosen.grasp.pose, chosen.carried)
        pr = chosen.problem
        hit, hit_step = motion_clearance(optimizer, layout, q, chosen.base, others)
        hand, hand_step = hand_clearance(self.model, layout, q, chosen.base, others, chosen.grasp)
        return TrajectoryResult(
            solution=solution,
            joints=q,
            ee=ee,
            errors=errors,
            mean_error=weighted_mean(errors, chosen.carried.weights),
            max_error=float(errors[:, chosen.carried.weights > 0].max()),
            pose_error=pose_error(layout, ee_base, pr.local, pr.target, pr.weights),
            clearance=float(solution.clearance.min()),
            worst_step=int(solution.clearance.argmin()),
            approach_clearance=free,
            motion_clearance=hit,
            motion_step=hit_step,
            hand_clearance=hand,
            hand_step=hand_step,
        )


def plan_from_flow(
    flow: ObjectFlow,
    scene_points: dict[str, np.ndarray] | None = None,
    config: PlanConfig | None = None,
    *,
    object_name: str | None = None,
    base: np.ndarray | None = None,
    mode: str | None = None,
    planner: FlowPlanner | None = None,
    rng: np.random.Generator | None = None,
    log: Callable[[str], None] | None = None,
) -> Plan:
    """One call from a flow to a Plan (what `chord-robot plan` runs); see `FlowPlanner.plan`.

    Pass ``planner`` to reuse a loaded robot and compiled solver across calls.
    """
    planner = planner or FlowPlanner(config)
    return planner.plan(
        flow, scene_points, object_name=object_name, base=base, mode=mode, rng=rng, log=log
    )
