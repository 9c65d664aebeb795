"""The search for a reachable grasp: proposals, ranking, and IK along the whole motion.

`CandidateSearch` runs one plan's search: it proposes grasps (pinches of sheets with them) or
pushes, re-ranks them by a cheap reachability proxy, and yields, best first per base pose,
those that IK can follow along every step without going into the table or sweeping through
the scene on the way to the pre-grasp. What it finds (`Candidate`) is the trajectory
optimiser's problem and initial guess; `SearchStats` keeps what it tried, for the failure
message when nothing is reachable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from chord_robot.errors import ConfigError, InputError, PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion
from planning.candidates import diverse, motion_reach_score, twin
from planning.clearance import approach_clearance
from planning.config import PlanConfig
from planning.grasps import (
    Grasp,
    GraspPlanner,
    GraspRequest,
    estimate_normals,
    gripper_boxes,
    inside_gripper,
)
from planning.hinge import hinged
from planning.kinematics import PathIK
from planning.layout import StepLayout, step_targets
from planning.pinch import PinchPlanner
from planning.placement import base_candidates
from planning.push import PushPlanner, motion_directions
from planning.region import (
    CarriedPoints,
    carried_points,
    local_bending,
    max_displacement,
    pinched_point,
    rigid_fit,
    rigid_residual,
)
from planning.robot import RobotModel
from planning.trajopt import TrajectoryOptimizer, TrajProblem


@dataclass(frozen=True)
class Candidate:
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
class SearchStats:
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
    into_object: int = 0
    """Grips whose hand would meet the object's still part along the motion
    (`CandidateSearch.meets_still_part`)."""
    off_moving: int = 0
    """Proposals left out because no finger lands on the moving part (`CandidateSearch.touches_moving`)."""


@dataclass
class CandidateSearch:
    """One plan's search for reachable grasps (or pushes) of the moving object.

    Attributes:
        config: the planning configuration.
        model, ik, optimizer, grasp_planner: the planner's loaded robot and solvers.
        motion: the manipulated object's flow; mask: (N,) its moving points.
        scene: the scene at the start (world frame), which the free approach must not sweep
            through.
        rng: randomness of the carried points and IK seeds.
        stats: what the search tried so far.
        still: (T, M, 3) the flow of the object's points that stay still (moving less than
            `RegionConfig.min_displacement`).
    """

    config: PlanConfig
    model: RobotModel
    ik: PathIK
    optimizer: TrajectoryOptimizer
    grasp_planner: GraspPlanner
    motion: ObjectMotion
    mask: np.ndarray
    scene: cKDTree
    rng: np.random.Generator
    stats: SearchStats = field(default_factory=SearchStats)
    still: np.ndarray = field(init=False, repr=False)
    points: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        still = max_displacement(self.motion) < self.config.region.min_displacement  # moving: >= that
        self.still = self.motion.trajectories[:, still].astype(np.float64)
        self.points = cKDTree(self.motion.points)

    @property
    def layout(self) -> StepLayout:
        return self.config.layout(self.motion.num_frames)

    def reachable(
        self,
        mode: str,
        request: GraspRequest,
        bases: list[np.ndarray],
        say: Callable[[str], None],
    ) -> Iterator[Candidate]:
        """Grasps (then, in auto mode, pushes) that IK can follow along the motion, best first
        per base pose; ``stats`` accumulates the time spent and the best IK error seen."""
        stats = self.stats
        modes = ["grasp", "push"] if mode == "auto" else [mode]
        for m in modes:
            t0 = time.perf_counter()
            proposals = self._propose(m, request)
            stats.grasp_time += time.perf_counter() - t0
            say(f"{m}: {len(proposals)} collision-free proposals on the moving part")
            stats.tried.append(f"{len(proposals)} {m} proposals")
            stats.proposals += len(proposals)
            for b in bases:
                t0 = time.perf_counter()
                for cand in self._reachable_from(proposals, b):
                    stats.ik_time += time.perf_counter() - t0
                    yield cand
                    t0 = time.perf_counter()
                stats.ik_time += time.perf_counter() - t0

    def _propose(self, mode: str, request: GraspRequest) -> list[Grasp]:
        """The planners' proposals whose fingers touch the moving part."""
        trajectories = self.motion.trajectories
        if mode == "grasp":
            displacement = trajectories[-1] - trajectories[0]
            pinches = PinchPlanner(displacement, self.config.pinch).propose(request, self.rng)
            proposals = self.grasp_planner.propose(request, self.rng) + pinches
        else:
            proposals = PushPlanner(motion_directions(trajectories), self.config.push).propose(request, self.rng)
        kept = [g for g in proposals if self.touches_moving(g)]
        self.stats.off_moving += len(proposals) - len(kept)
        return kept

    def touches_moving(self, grasp: Grasp) -> bool:
        """Whether a finger (or the pushing hand) of ``grasp`` lands on the moving part (`mask`).
        A grip on a still part carries nothing the flow moves: following the moving points
        nearest it instead (`carried_points`) drags the object after them (a lamp gripped low on
        its still arm, following its nodding head 14 cm away, slid its base 160-173 mm)."""
        _, nearest = self.points.query(np.atleast_2d(grasp.contacts))
        return bool(self.mask[nearest].any())

    def carried(self, grasp: Grasp) -> CarriedPoints:
        """The points ``grasp`` carries: a rigid region, or a pinch's single point. A push holds
        nothing rigidly, so its region keeps the widest tolerance (`RegionConfig.rigid_tolerance`):
        the tight one is for a grip that would force its link along a neighbouring link's motion.
        With `PlanConfig.hinge` on, a grip on a link hinged to its object's still part follows
        the hinge the flow's motion of it fits (`planning.hinge`): the link cannot move otherwise."""
        center = grasp.contacts.mean(0)
        region = self.config.region
        if grasp.pinch:
            return pinched_point(self.motion, center, self.mask, region)
        if grasp.mode == "push":
            region = replace(region, min_rigid_tolerance=region.rigid_tolerance)
            return carried_points(self.motion, grasp.contacts, self.mask, self.rng, region)
        carried = carried_points(self.motion, grasp.contacts, self.mask, self.rng, region)
        hinge = hinged(self.motion, self.mask, carried, self.config.hinge)
        return carried if hinge is None else hinge.carry(carried)

    def meets_still_part(self, grasp: Grasp, fit: np.ndarray) -> bool:
        """Whether a rigid grip's hand would meet its object's still part along the motion.

        Args:
            grasp: a proposal; pushes (which hold nothing) and pinches (a sheet bends around
                the fingers) are never refused.
            fit: (T, 4, 4) the grasped part's rigid motion (`rigid_fit` of what it carries).
        Returns:
            True if the hand (palm and finger boxes), carried along ``fit``, comes within
            `PlanConfig.still_clearance` of a still point that it was not that near at the
            grasp and that does not move with the grasped part (its flow parts from where
            ``fit`` would carry it by more than the clearance). Still points near the hand at
            the grasp (a grip beside a hinge) are the grasp's own collision test's; a link's
            points next to its joint move too little to count as moving but turn with the hand.
        """
        clearance = self.config.still_clearance
        if grasp.mode != "grasp" or grasp.pinch or self.still.shape[1] == 0:
            return False
        rest = self.still[0]
        boxes = gripper_boxes(self.model.spec.gripper, grasp.width, 0.0)
        inside = inside_gripper(fit @ grasp.pose, rest, boxes, clearance)
        carried = geometry.transform_points(fit, np.broadcast_to(rest, self.still.shape))
        apart = np.linalg.norm(carried - self.still, axis=-1) > clearance
        return bool((inside[1:] & ~inside[0] & apart[1:]).any())

    def _reachable_from(self, proposals: list[Grasp], base: np.ndarray) -> Iterator[Candidate]:
        """The proposals (or their 180-degree twins) that IK can follow from ``base``, without
        going into the table or sweeping through the ``scene`` on the way to the pre-grasp.

        Proposals are re-ranked by their score plus a cheap reachability proxy over the motion
        (`motion_reach_score`); IK then tests ``config.candidates`` of them, chosen best first
        but spread over contact places and approach directions (`diverse`), so one
        unreachable family of near-identical grasps cannot use up the budget. Grips whose hand
        would meet the object's still part (`meets_still_part`) are left out first, and those
        whose approach overlaps the scene's points at all (within `PlanConfig.approach_overlap`)
        are given only after every clean one.
        """
        cfg, stats = self.config, self.stats
        shoulder = base[:3, 3] + base[:3, 2] * cfg.robot.shoulder_height

        # the approaches of one contact pair carry the same points: (their rigid fit, the bending)
        fits: dict[bytes, tuple[np.ndarray, float]] = {}

        def fit_and_bending(g: Grasp) -> tuple[np.ndarray, float]:
            key = g.contacts.tobytes()
            if key not in fits:
                rigid_grip = g.mode == "grasp" and not g.pinch
                bend = local_bending(self.motion, g.contacts.mean(0), self.mask, cfg.bend_radius) if rigid_grip else 0.0
                fits[key] = (rigid_fit(self.carried(g)), bend)
            return fits[key]

        def rank(g: Grasp) -> float:
            fit, bend = fit_and_bending(g)
            return (g.score + cfg.reach_weight * motion_reach_score(fit @ g.pose, shoulder, cfg.robot.reach)
                    - cfg.bend_weight * 1000.0 * bend)

        clear = [g for g in proposals if not self.meets_still_part(g, fit_and_bending(g)[0])]
        # the same proposals for every base pose: count them once
        stats.into_object = max(stats.into_object, len(proposals) - len(clear))
        ranked = diverse(sorted(clear, key=lambda g: -rank(g)), cfg.candidates)
        overlapping: list[Candidate] = []  # approaches into the scene within the tolerance: last
        for grasp in ranked:
            deferred = None
            for g in (grasp, twin(grasp)):
                cand = self._candidate(g, base)
                stats.best_error = min(stats.best_error, cand.ik_error)
                if cand.ik_error > cfg.ik_tolerance:
                    continue
                if cand.clearance < -cfg.ik_table_tolerance:
                    stats.into_table += 1
                elif cand.approach_clearance < -cfg.approach_overlap:
                    stats.through_scene += 1
                elif cand.approach_clearance < 0.0:
                    deferred = deferred or cand
                else:
                    yield cand
                    deferred = None
                    break  # the twin of a reachable grasp is not a new option
            if deferred is not None:
                overlapping.append(deferred)
        yield from overlapping

    def _candidate(self, grasp: Grasp, base: np.ndarray) -> Candidate:
        """IK along every step for ``grasp``: the reachability test and the initial guess."""
        cfg, layout, model = self.config, self.layout, self.model
        carried = self.carried(grasp)
        ee = rigid_fit(carried) @ grasp.pose  # (T, 4, 4) world TCP poses under rigid attachment
        approach = (
            cfg.grasp.approach_distance if grasp.mode == "grasp" else cfg.push.approach_distance
        )
        local, target, weights = step_targets(
            layout, grasp.pose, ee, carried, approach, cfg.retreat_distance
        )
        target = geometry.transform_points(geometry.invert(base), target)
        q_start = start_configuration(cfg, model)
        random = self.rng.uniform(model.lower, model.upper, (cfg.seeds - 1, model.dof))
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
        free = approach_clearance(self.optimizer, layout, q_init, base, self.scene)
        return Candidate(
            grasp,
            base,
            carried,
            problem,
            float(excess.max()),
            float(residual.max()),
            clearance,
            free,
        )


def start_configuration(config: PlanConfig, model: RobotModel) -> np.ndarray:
    """(dof,) the arm's start: ``config.start_joints`` or the robot's home; ConfigError (field
    ``start_joints``) unless it is ``dof`` values within the joint limits."""
    q = np.asarray(
        config.start_joints if config.start_joints is not None else model.home, dtype=np.float64
    )
    if q.shape != (model.dof,) or not model.within_limits(q):
        raise ConfigError(
            "start_joints",
            f"{{field}} must be {model.dof} values within the joint limits, got {q.tolist()}",
        )
    return q


def base_poses(
    config: PlanConfig, motion: ObjectMotion, mask: np.ndarray, obstacles: np.ndarray
) -> list[np.ndarray]:
    """Automatic (4, 4) base poses around the object, best first."""
    visited = motion.trajectories[:, mask].reshape(-1, 3)
    visited = visited[:: max(1, len(visited) // 2000)]
    bases = base_candidates(
        visited, float(motion.points[:, 2].min()), obstacles, config.robot, config.placement
    )[: config.bases]
    if not bases:
        raise PlanningFailure(
            "no free spot for the robot base around the object; give the base pose"
        )
    return bases


def scene_obstacles(
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


def _voxel_down(points: np.ndarray, size: float) -> np.ndarray:
    """One point per occupied voxel of ``size`` metres."""
    if len(points) == 0:
        return points
    keys = np.floor(points / size).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


def grasp_request(
    motion: ObjectMotion, mask: np.ndarray, obstacles: np.ndarray, model: RobotModel
) -> GraspRequest:
    """What the grasp and push planners are asked: the object's points weighted by how far
    they move, the obstacles, the gripper, and a top-down preferred approach."""
    points = motion.points.astype(np.float64)
    disp = max_displacement(motion)
    weights = np.where(mask, disp / max(float(disp.max()), 1e-9), 0.0)
    down = np.array([0.0, 0.0, -1.0])
    return GraspRequest(
        points, estimate_normals(points), weights, obstacles, model.spec.gripper, down
    )
