"""ObjectFlow + scene -> Plan: object, grasp, trajectory optimisation, timing (DESIGN.md §5).

`FlowPlanner` holds the loaded robot, the IK and the jitted trajectory optimiser, so repeated
plans (an evaluation suite, a benchmark) compile once. `plan_from_flow` is the one-call entry
point the CLI uses; `describe` prints what it chose. The step layout of a plan is in `layout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from chord_robot.errors import InputError, PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion
from chord_robot.plans import Plan
from planning.candidates import diverse, motion_reach_score, twin
from planning.grasps import (
    AntipodalGraspPlanner,
    Grasp,
    GraspConfig,
    GraspPlanner,
    GraspRequest,
    estimate_normals,
)
from planning.kinematics import IKConfig, PathIK
from planning.layout import StepLayout, assemble_plan, pose_error, step_targets
from planning.pinch import PinchConfig, PinchPlanner
from planning.placement import PlacementConfig, base_candidates
from planning.push import PushConfig, PushPlanner, motion_directions
from planning.region import (
    CarriedPoints,
    RegionConfig,
    alignment_errors,
    carried_points,
    max_displacement,
    moving_mask,
    pinched_point,
    rigid_fit,
    rigid_residual,
    select_object,
    weighted_mean,
)
from planning.robot import RobotModel, RobotSpec, load_robot, panda
from planning.timing import TimingConfig
from planning.trajopt import TrajectoryOptimizer, TrajOptConfig, TrajProblem, TrajSolution

MODES = ("grasp", "push", "auto")


@dataclass(frozen=True)
class PlanConfig:
    """Everything `plan_from_flow` needs besides the flow and the scene."""

    robot: RobotSpec = field(default_factory=panda)
    """Robot to plan for."""
    mode: str = "auto"
    """"grasp", "push", or "auto" (grasp if a reachable grasp exists, else push)."""
    region: RegionConfig = field(default_factory=RegionConfig)
    """Object, moving part and carried points."""
    grasp: GraspConfig = field(default_factory=GraspConfig)
    """Antipodal grasp sampling."""
    push: PushConfig = field(default_factory=PushConfig)
    """Push contact sampling."""
    pinch: PinchConfig = field(default_factory=PinchConfig)
    """Pinches of sheets (proposed with the grasps)."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """Automatic base placement."""
    ik: IKConfig = field(default_factory=IKConfig)
    """IK that initialises the optimiser and tests reachability."""
    trajopt: TrajOptConfig = field(default_factory=TrajOptConfig)
    """Trajectory optimisation weights."""
    timing: TimingConfig = field(default_factory=TimingConfig)
    """Time parametrisation."""
    start_joints: tuple[float, ...] | None = None
    """Start configuration of the arm; None for the robot's home."""
    approach_free: int = 4
    """Free steps between the start and the pre-grasp."""
    insert_steps: int = 4
    """Steps from the pre-grasp to the grasp."""
    retreat_steps: int = 6
    """Steps of the retreat after the motion."""
    retreat_distance: float = 0.1
    """How far the TCP backs off along its z after the motion, metres."""
    candidates: int = 8
    """Best grasp proposals tested for reachability along the whole motion."""
    reach_weight: float = 2.0
    """Score weight of how naturally the hand points away from the shoulder over the motion."""
    bases: int = 4
    """Automatic base candidates tried."""
    seeds: int = 8
    """IK seeds for the first target (the start configuration and random ones)."""
    ik_tolerance: float = 0.004
    """A candidate is reachable if IK meets every step's targets within this RMS, metres,
    beyond the flow's own non-rigidity: at a flow frame, the RMS distance of the carried
    points to their best rigid fit (`rigid_residual`, a few mm on a generated flow) is the
    least any TCP pose can reach, so only the IK error in excess of it counts."""
    ik_table_tolerance: float = 0.02
    """...and its IK path keeps the robot's body no deeper than this in the table, metres (the
    optimiser lifts shallower dips using the arm's redundancy)..."""
    approach_overlap: float = 0.01
    """...and its free approach, from the start to the pre-grasp, overlaps the scene's points
    by no more than this with the robot's covering spheres (which are 1-2 cm larger than the
    links), metres; the optimised approach is held to the same."""
    approach_hold: float = 100.0
    """How much harder than other steps a free approach step is pulled to its IK solution
    when the optimised approach strayed into the scene."""
    max_alignment_error: float = 0.01
    """Largest mean flow alignment error of an accepted plan, metres."""
    max_pose_error: float = 0.01
    """Largest RMS error of approach/retreat pose targets of an accepted plan, metres."""
    max_table_penetration: float = 0.003
    """Largest depth the robot's body (collision hulls, hand boxes) may reach into the table,
    metres."""
    solves: int = 3
    """Reachable candidates whose trajectory is optimised before giving up, best first."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")


def default_config(**overrides: object) -> PlanConfig:
    """The default preset (Panda, auto mode, 256 carried points)."""
    return replace(PlanConfig(), **overrides)


def fast_config(**overrides: object) -> PlanConfig:
    """Fewer samples and candidates: for tests and quick previews."""
    base = PlanConfig(
        grasp=GraspConfig(samples=80, approaches=8),
        push=PushConfig(samples=80),
        candidates=4,
        bases=2,
    )
    return replace(base, **overrides)


PRESETS: dict[str, Callable[..., PlanConfig]] = {"default": default_config, "fast": fast_config}
"""Presets by name."""


@dataclass(frozen=True)
class _Candidate:
    """A grasp tested along the motion."""

    grasp: Grasp
    base: np.ndarray
    carried: CarriedPoints
    problem: TrajProblem
    ik_error: float
    """Largest IK error of a step beyond the flow's non-rigidity there (`rigid_residual`):
    sqrt(rms^2 - residual^2), metres."""
    flow_residual: float
    """Largest RMS distance of the carried points' flow to its best rigid fit, metres."""
    clearance: float
    """Smallest height of the robot's body above the table along the IK path, metres."""
    approach_clearance: float
    """Smallest distance of the robot's spheres to the scene along the free approach of the
    IK path (negative: overlapping), metres."""


@dataclass
class _Search:
    """Running totals of one plan's search for a reachable grasp."""

    grasp_time: float = 0.0
    ik_time: float = 0.0
    best_error: float = np.inf
    """Smallest IK error (beyond the flow's non-rigidity) of a tested candidate, metres."""
    tried: list[str] = field(default_factory=list)
    proposals: int = 0
    into_table: int = 0
    """Candidates IK can follow, but only with the arm in the table."""
    through_scene: int = 0
    """Candidates IK can follow, but whose way to the pre-grasp sweeps through the scene."""


@dataclass(frozen=True)
class _Trajectory:
    """An optimised trajectory of a candidate and what it achieves.

    Attributes:
        solution: the optimiser's result.
        joints: (N, dof) its joints clipped to the limits.
        ee: (N, 4, 4) TCP poses, world frame.
        errors: (T, P) flow alignment error of the carried points per frame, metres.
        mean_error, max_error: their weighted mean and maximum, metres.
        pose_error: largest RMS error of the approach and retreat pose targets, metres.
        clearance: smallest height of the robot's body above the table, metres.
        worst_step: the step where it is smallest.
        approach_clearance: smallest distance of the robot's spheres to the scene on the way
            to the pre-grasp, metres.
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
        return None


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
        cfg = self.config
        return StepLayout(frames, cfg.approach_free, cfg.insert_steps, cfg.retreat_steps)

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
            mode: overrides ``config.mode``.
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
        if mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
        rng = rng or np.random.default_rng(0)
        say = log or (lambda _msg: None)
        t_start = time.perf_counter()
        if base is not None:
            base = np.asarray(base, dtype=np.float64)
            assert base.shape == (4, 4), base.shape

        name = select_object(flow, object_name, cfg.region)
        motion = flow.objects[name]
        mask = moving_mask(motion, cfg.region)
        obstacles = _obstacles(flow, scene_points, name)
        say(
            f"object {name!r}: {len(motion.points)} points, {int(mask.sum())} moving, "
            f"up to {max_displacement(motion).max():.3f} m"
        )

        bases = [base] if base is not None else self._bases(motion, mask, obstacles)
        request = _request(motion, mask, obstacles, self.model)
        layout = self.layout(motion.num_frames)
        search = _Search()
        rejected: list[str] = []
        # the scene at the start, which the free approach must not sweep through
        scene = cKDTree(np.concatenate([obstacles, motion.points]))
        for chosen in self._reachable(mode, request, bases, motion, mask, rng, scene, search, say):
            grasp = chosen.grasp
            say(
                f"{grasp.mode} at {np.round(grasp.pose[:3, 3], 3).tolist()} width "
                f"{grasp.width * 1000:.0f} mm, score {grasp.score:.2f}, IK error "
                f"{chosen.ik_error * 1000:.1f} mm beyond the flow's non-rigidity (up to "
                f"{chosen.flow_residual * 1000:.1f} mm)"
            )
            traj = self._optimise(chosen, layout, scene)
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
            modes = ["grasp", "push"] if mode == "auto" else [mode]
            blocked = ""
            if search.into_table or search.through_scene:
                blocked = (
                    f"; {search.into_table} reachable only through the table, "
                    f"{search.through_scene} only through the scene"
                )
            raise PlanningFailure(
                f"no reachable {' or '.join(modes)} for {name!r} along its motion "
                f"({', '.join(search.tried)}, {len(bases)} base poses; best IK error "
                f"{search.best_error * 1000:.0f} mm{blocked}): the motion leaves the "
                f"{self.config.robot.name}'s workspace; move the robot (--robot-base) or check "
                "the flow",
                stage="reach" if search.proposals else "grasp",
            )

        plan = assemble_plan(
            layout, self.model, cfg.timing, name, grasp, chosen.base, traj.joints, traj.ee
        )
        costs = dict(plan.costs)
        costs.update({f"cost_{k}": v for k, v in traj.solution.costs.items()})
        costs.update(
            alignment_mean_m=traj.mean_error,
            alignment_max_m=traj.max_error,
            pose_error_m=traj.pose_error,
            flow_nonrigid_max_m=chosen.flow_residual,
            flow_nonrigid_mean_m=_rigid_mean(grasp, chosen.carried),
            table_clearance_m=traj.clearance,
            approach_clearance_m=traj.approach_clearance,
            grasp_score=grasp.score,
            grasp_time_s=search.grasp_time,
            ik_time_s=search.ik_time,
            solve_time_s=traj.solution.solve_time,
            total_time_s=time.perf_counter() - t_start,
        )
        return replace(plan, costs=costs)

    # -- proposals and reachability -------------------------------------------------------

    def _bases(
        self, motion: ObjectMotion, mask: np.ndarray, obstacles: np.ndarray
    ) -> list[np.ndarray]:
        """Automatic base poses around the object, best first."""
        cfg = self.config
        visited = motion.trajectories[:, mask].reshape(-1, 3)
        visited = visited[:: max(1, len(visited) // 2000)]
        bases = base_candidates(
            visited, float(motion.points[:, 2].min()), obstacles, cfg.robot, cfg.placement
        )[: cfg.bases]
        if not bases:
            raise PlanningFailure(
                "no free spot for the robot base around the object; pass --robot-base"
            )
        return bases

    def _reachable(
        self,
        mode: str,
        request: GraspRequest,
        bases: list[np.ndarray],
        motion: ObjectMotion,
        mask: np.ndarray,
        rng: np.random.Generator,
        scene: cKDTree,
        search: _Search,
        say: Callable[[str], None],
    ) -> Iterator[_Candidate]:
        """Grasps (then, in auto mode, pushes) that IK can follow along the motion, best first
        per base pose; ``search`` accumulates the time spent and the best IK error seen."""
        modes = ["grasp", "push"] if mode == "auto" else [mode]
        for m in modes:
            t0 = time.perf_counter()
            proposals = self._propose(m, request, motion, rng)
            search.grasp_time += time.perf_counter() - t0
            say(f"{m}: {len(proposals)} collision-free proposals")
            search.tried.append(f"{len(proposals)} {m} proposals")
            search.proposals += len(proposals)
            for b in bases:
                t0 = time.perf_counter()
                for cand in self._reachable_from(proposals, b, motion, mask, rng, scene, search):
                    search.ik_time += time.perf_counter() - t0
                    yield cand
                    t0 = time.perf_counter()
                search.ik_time += time.perf_counter() - t0

    def _propose(
        self, mode: str, request: GraspRequest, motion: ObjectMotion, rng: np.random.Generator
    ) -> list[Grasp]:
        if mode == "grasp":
            displacement = motion.trajectories[-1] - motion.trajectories[0]
            pinches = PinchPlanner(displacement, self.config.pinch).propose(request, rng)
            return self.grasp_planner.propose(request, rng) + pinches
        return PushPlanner(motion_directions(motion.trajectories), self.config.push).propose(
            request, rng
        )

    def _carried(
        self, grasp: Grasp, motion: ObjectMotion, mask: np.ndarray, rng: np.random.Generator
    ) -> CarriedPoints:
        """The points ``grasp`` carries: a rigid region, or a pinch's single point."""
        center = grasp.contacts.mean(0)
        if grasp.pinch:
            return pinched_point(motion, center, mask, self.config.region)
        return carried_points(motion, center, mask, rng, self.config.region)

    def _reachable_from(
        self,
        proposals: list[Grasp],
        base: np.ndarray,
        motion: ObjectMotion,
        mask: np.ndarray,
        rng: np.random.Generator,
        scene: cKDTree,
        search: _Search,
    ) -> Iterator[_Candidate]:
        """The proposals (or their 180-degree twins) that IK can follow from ``base``, without
        going into the table or sweeping through the ``scene`` on the way to the pre-grasp.

        Proposals are re-ranked by their score plus a cheap reachability proxy over the motion
        (`motion_reach_score`); IK then tests ``config.candidates`` of them, chosen best first
        but spread over contact places and approach directions (`diverse`), so one
        unreachable family of near-identical grasps cannot use up the budget.
        """
        cfg = self.config
        shoulder = base[:3, 3] + base[:3, 2] * cfg.robot.shoulder_height

        def rank(g: Grasp) -> float:
            ee = rigid_fit(self._carried(g, motion, mask, rng)) @ g.pose
            return g.score + cfg.reach_weight * motion_reach_score(ee, shoulder, cfg.robot.reach)

        ranked = diverse(sorted(proposals, key=lambda g: -rank(g)), cfg.candidates)
        for grasp in ranked:
            for g in (grasp, twin(grasp)):
                cand = self._candidate(g, base, motion, mask, rng, scene)
                search.best_error = min(search.best_error, cand.ik_error)
                if cand.ik_error > cfg.ik_tolerance:
                    continue
                if cand.clearance < -cfg.ik_table_tolerance:
                    search.into_table += 1
                elif cand.approach_clearance < -cfg.approach_overlap:
                    search.through_scene += 1
                else:
                    yield cand
                    break  # the twin of a reachable grasp is not a new option

    def _candidate(
        self,
        grasp: Grasp,
        base: np.ndarray,
        motion: ObjectMotion,
        mask: np.ndarray,
        rng: np.random.Generator,
        scene: cKDTree,
    ) -> _Candidate:
        """IK along every step for ``grasp``: the reachability test and the initial guess."""
        cfg, layout = self.config, self.layout(motion.num_frames)
        carried = self._carried(grasp, motion, mask, rng)
        ee = rigid_fit(carried) @ grasp.pose  # (T, 4, 4) world TCP poses under rigid attachment
        approach = (
            cfg.grasp.approach_distance if grasp.mode == "grasp" else cfg.push.approach_distance
        )
        local, target, weights = step_targets(
            layout, grasp.pose, ee, carried, approach, cfg.retreat_distance
        )
        target = geometry.transform_points(geometry.invert(base), target)
        q_start = self._start()
        random = rng.uniform(self.model.lower, self.model.upper, (cfg.seeds - 1, self.model.dof))
        f = layout.first_target
        q_path, err = self.ik.solve(
            np.concatenate([q_start[None], random]), q_start, local[f:], target[f:], weights[f:]
        )
        # IK cannot beat the rigid fit of a flow that is not quite rigid (a generated one):
        # measure its error beyond that floor, so a flow's noise does not read as unreachable.
        residual = np.zeros(layout.size)
        residual[layout.manipulate] = rigid_residual(carried)
        excess = np.sqrt(np.maximum(err**2 - residual[f:] ** 2, 0.0))
        q_init = np.concatenate([np.linspace(q_start, q_path[0], f + 1)[:-1], q_path])
        problem = TrajProblem(local, target, weights, q_start, q_init, layout.smoothness_mask())
        clearance = float(self.optimizer.clearance(q_path).min())
        free = self.approach_clearance(q_init, base, scene)
        return _Candidate(
            grasp,
            base,
            carried,
            problem,
            float(excess.max()),
            float(residual.max()),
            clearance,
            free,
        )

    def _optimise(self, chosen: _Candidate, layout: StepLayout, scene: cKDTree) -> _Trajectory:
        """Optimise ``chosen``'s trajectory and measure it. The optimiser does not see the
        scene: if its approach strays into it where the (checked) IK approach did not, it
        solves again with the free approach held to the IK one."""
        solution = self.optimizer.solve(chosen.problem)
        q = np.clip(solution.joints, self.model.lower, self.model.upper)
        if self.approach_clearance(q, chosen.base, scene) < -self.config.approach_overlap:
            hold = np.ones(len(chosen.problem.q_init))
            hold[1 : layout.first_target + 1] = self.config.approach_hold
            solution = self.optimizer.solve(replace(chosen.problem, hold=hold))
            q = np.clip(solution.joints, self.model.lower, self.model.upper)
        ee_base = self.model.tcp_pose(q)
        ee = chosen.base @ ee_base
        errors = alignment_errors(ee[layout.manipulate], chosen.grasp.pose, chosen.carried)
        pr = chosen.problem
        return _Trajectory(
            solution=solution,
            joints=q,
            ee=ee,
            errors=errors,
            mean_error=weighted_mean(errors, chosen.carried.weights),
            max_error=float(errors[:, chosen.carried.weights > 0].max()),
            pose_error=pose_error(layout, ee_base, pr.local, pr.target, pr.weights),
            clearance=float(solution.clearance.min()),
            worst_step=int(solution.clearance.argmin()),
            approach_clearance=self.approach_clearance(q, chosen.base, scene),
        )

    def approach_clearance(self, q: np.ndarray, base: np.ndarray, scene: cKDTree) -> float:
        """Smallest distance (metres, negative: overlapping) from the robot's spheres to the
        ``scene`` points (world frame) along the free approach of the steps ``q`` (N, dof):
        from the start to the pre-grasp, sampled between steps. The insertion from the
        pre-grasp on was checked with the grasp."""
        f = self.layout(0).first_target
        path = np.concatenate(
            [np.linspace(a, b, 4, endpoint=False) for a, b in pairwise(q[: f + 1])] + [q[f : f + 1]]
        )
        centres = geometry.transform_points(base, self.optimizer.sphere_centers(path).reshape(-1, 3))
        distance, _ = scene.query(centres)
        radius = np.tile(self.optimizer.spheres.radius, len(path))
        return float((distance - radius).min())

    def _start(self) -> np.ndarray:
        cfg = self.config
        q = np.asarray(
            cfg.start_joints if cfg.start_joints is not None else self.model.home, dtype=np.float64
        )
        if q.shape != (self.model.dof,) or not self.model.within_limits(q):
            raise InputError(
                f"start joints must be {self.model.dof} values within the joint limits, got {q.tolist()}"
            )
        return q


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


def enable_compilation_cache(directory: str | None = None) -> str:
    """Keep JAX's compiled solvers on disk so a new process skips compilation (about 8 s ->
    2 s for the first plan here). Global JAX state: for applications (the CLI), not libraries.

    Returns the directory used (default ``$XDG_CACHE_HOME/chord-robot/jax``).
    """
    import os

    import jax

    if directory is None:
        root = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
        directory = os.path.join(root, "chord-robot", "jax")
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return directory


def describe(plan: Plan) -> str:
    """Multi-line summary of a plan for the terminal: grasp, alignment error, solve time."""
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
    timing = (
        f"solve {c['solve_time_s']:.2f} s (IK {c['ik_time_s']:.2f} s, total {c['total_time_s']:.2f} s); "
        f"duration {plan.times[-1]:.2f} s, {plan.num_steps} steps"
    )
    return f"{grasp}\n{error}\n{timing}"


_REPORTED = (
    "grasp_score",
    "alignment_mean_m",
    "alignment_max_m",
    "solve_time_s",
    "ik_time_s",
    "total_time_s",
)


# -- helpers ------------------------------------------------------------------------------------


def _rigid_mean(grasp: Grasp, carried: CarriedPoints) -> float:
    """Mean alignment error (as `weighted_mean`, metres) of the carried points' own best rigid
    fit: what a hand that follows the flow exactly under the rigid attachment achieves, the
    floor of ``alignment_mean_m`` (zero for an exactly rigid flow)."""
    ee = rigid_fit(carried) @ grasp.pose
    return weighted_mean(alignment_errors(ee, grasp.pose, carried), carried.weights)


def _voxel_down(points: np.ndarray, size: float) -> np.ndarray:
    """One point per occupied voxel of ``size`` metres."""
    if len(points) == 0:
        return points
    keys = np.floor(points / size).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


def _obstacles(
    flow: ObjectFlow, scene_points: dict[str, np.ndarray] | None, name: str
) -> np.ndarray:
    """(M, 3) points of everything but the manipulated object, voxel-downsampled to 5 mm."""
    parts = [m.points for k, m in flow.objects.items() if k != name]
    if scene_points is not None:
        for k, pts in scene_points.items():
            pts = np.asarray(pts, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 3:
                raise InputError(f"scene object {k!r}: points must be (M, 3), got {pts.shape}")
            if k != name:
                parts.append(pts)
    if not parts:
        return np.zeros((0, 3))
    return _voxel_down(np.concatenate(parts).astype(np.float64), 0.005)


def _request(
    motion: ObjectMotion, mask: np.ndarray, obstacles: np.ndarray, model: RobotModel
) -> GraspRequest:
    points = motion.points.astype(np.float64)
    disp = max_displacement(motion)
    weights = np.where(mask, disp / max(float(disp.max()), 1e-9), 0.0)
    down = np.array([0.0, 0.0, -1.0])
    return GraspRequest(
        points, estimate_normals(points), weights, obstacles, model.spec.gripper, down
    )
