"""Which object to manipulate, which part of it moves, and which points the gripper carries.

The grasped region is what the rigid attachment model applies to: points of the moving part
near the grasp *that move rigidly with it* (on an articulated object, the grasped link and not
the next one, which turns relative to it), weighted by their distance to the grasp,
subsampled and padded to a fixed count so the optimiser's shapes do not change between flows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot import geometry
from chord_robot.errors import InputError, PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion


@dataclass(frozen=True)
class RegionConfig:
    """How the relevant object, its moving part and the grasped region are chosen."""

    min_displacement: float = 0.01
    """An object whose points move less than this (metres) is not moving."""
    moving_fraction: float = 0.3
    """Points moving at least this fraction of the object's largest displacement are the moving part."""
    attach_radius: float = 0.12
    """Points of the moving part within this distance of the grasp are carried (metres)."""
    points: int = 256
    """Fixed number of carried points given to the optimiser (padded with zero weight)."""
    core_points: int = 12
    """The grasp's nearest moving points whose rigid motion defines the grasped part."""
    rigid_tolerance: float = 0.01
    """Points near the grasp that deviate more than the tolerance from the grasped part's
    rigid motion at any frame belong to another part and are not carried. The tolerance is
    ``noise_factor`` times the flow's own noise (the grasp's core points' median deviation
    from their rigid fit), between ``min_rigid_tolerance`` and this, metres."""
    min_rigid_tolerance: float = 0.0025
    """Smallest tolerance, metres. On an exact flow the next link's points within a
    centimetre of the grasped link's motion reach a few centimetres from the joint; carrying
    them turns the hand a few degrees more than the grasped link turns."""
    noise_factor: float = 3.0
    """Multiple of the flow's noise that the tolerance allows."""


def max_displacement(motion: ObjectMotion) -> np.ndarray:
    """(N,) largest distance each point travels from its frame-0 position."""
    return motion.displacement.max(0)


def select_object(
    flow: ObjectFlow, name: str | None = None, config: RegionConfig | None = None
) -> str:
    """The object to manipulate: ``name`` if given, else the one moving the most.

    Raises:
        InputError: ``name`` is not an object of the flow.
        PlanningFailure: nothing in the flow moves.
    """
    config = config or RegionConfig()
    if name is not None:
        if name not in flow.objects:
            raise InputError(
                f"object {name!r} is not in the flow; objects: {', '.join(sorted(flow.objects))}"
            )
        if float(max_displacement(flow.objects[name]).max()) < config.min_displacement:
            raise PlanningFailure(
                f"object {name!r} does not move in the flow (< {config.min_displacement} m)"
            )
        return name
    # The 95th percentile ignores a few stray points of a noisy generated flow.
    moves = {k: float(np.percentile(max_displacement(m), 95)) for k, m in flow.moving().items()}
    if not moves or max(moves.values()) < config.min_displacement:
        raise PlanningFailure(
            f"nothing moves in the flow for {flow.task!r} (every object < {config.min_displacement} m)"
        )
    return max(moves, key=moves.get)


def moving_mask(motion: ObjectMotion, config: RegionConfig | None = None) -> np.ndarray:
    """(N,) True for the points of the part that moves (a lamp's head, a laptop's lid)."""
    config = config or RegionConfig()
    d = max_displacement(motion)
    return d >= max(config.moving_fraction * float(np.percentile(d, 99)), config.min_displacement)


@dataclass(frozen=True)
class CarriedPoints:
    """The grasped region as the optimiser sees it.

    Attributes:
        index: (N,) indices into the object's points (padding repeats index 0).
        weights: (N,) weights in [0, 1]; 0 for padding.
        trajectories: (T, N, 3) their flow, world frame (or where a hinge moves them:
            `planning.hinge`).
        off_flow: how far those targets were moved off the flow (a hinge's residual: RMS over
            the points, worst frame), metres; 0 for the flow itself.
    """

    index: np.ndarray
    weights: np.ndarray
    trajectories: np.ndarray
    off_flow: float = 0.0

    @property
    def points(self) -> np.ndarray:
        """(N, 3) frame-0 positions."""
        return self.trajectories[0]


def carried_points(
    motion: ObjectMotion,
    contacts: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    config: RegionConfig | None = None,
) -> CarriedPoints:
    """Points of the moving part near the grasp that move rigidly with what the fingers touch,
    Gaussian-weighted by distance to the grasp, padded to ``config.points``.

    Args:
        contacts: (K, 3) where the fingers touch (a grasp's two contacts), or (3,) one point;
            the grasp is their mean.

    The rigid motion is fitted to the ``core_points`` moving points nearest the contacts, then
    refitted to every nearby point within the tolerance (`RegionConfig.rigid_tolerance`) of
    it (`rigid_part`). The core is taken at the contacts, not at their mean: fingers closing
    on a lamp's arm just below its head have the head's points nearer their midpoint (inside
    the arm) than the arm's own surface, and carrying the head there plans a motion the arm
    cannot make (the grip drags the lamp).
    """
    config = config or RegionConfig()
    contacts = np.atleast_2d(np.asarray(contacts, dtype=np.float64))
    d = np.linalg.norm(motion.points - contacts.mean(0), axis=1)
    touch = np.linalg.norm(motion.points[:, None] - contacts[None], axis=-1).min(1)
    candidates = np.flatnonzero(mask & (d <= config.attach_radius))
    if len(candidates) < 3:  # a grasp at the edge of the moving part: take its nearest points
        candidates = np.flatnonzero(mask)[np.argsort(touch[mask])[:16]]
    candidates = rigid_part(motion.trajectories, candidates, touch, config)
    if len(candidates) > config.points:
        candidates = np.sort(rng.choice(candidates, config.points, replace=False))
    sigma = config.attach_radius / 2
    w = np.exp(-0.5 * (d[candidates] / sigma) ** 2)
    index = np.zeros(config.points, dtype=np.int64)
    weights = np.zeros(config.points)
    index[: len(candidates)] = candidates
    weights[: len(candidates)] = w / w.max()
    return CarriedPoints(index, weights, motion.trajectories[:, index].astype(np.float64))


def pinched_point(
    motion: ObjectMotion, center: np.ndarray, mask: np.ndarray, config: RegionConfig | None = None
) -> CarriedPoints:
    """What a pinch of a sheet carries: the moving point nearest ``center`` (3,) and three
    points 5 cm from it along the world axes, all translated along that point's flow.

    A pinched sheet bends around the fingers, so no region of it moves rigidly with the hand;
    the hand follows the pinched point without turning (`rigid_fit` of these is a pure
    translation). ``index`` repeats the pinched point; padded to ``config.points``.
    """
    config = config or RegionConfig()
    moving = np.flatnonzero(mask)
    nearest = moving[np.argmin(np.linalg.norm(motion.points[moving] - center, axis=1))]
    path = motion.trajectories[:, nearest].astype(np.float64)  # (T, 3)
    offsets = np.concatenate([np.zeros((1, 3)), 0.05 * np.eye(3)])  # (4, 3)
    trajectories = np.zeros((len(path), config.points, 3))
    trajectories[:] = path[:, None]
    trajectories[:, :4] += offsets
    weights = np.zeros(config.points)
    weights[:4] = 1.0
    return CarriedPoints(np.full(config.points, nearest, dtype=np.int64), weights, trajectories)


def rigid_part(
    trajectories: np.ndarray, candidates: np.ndarray, distance: np.ndarray, config: RegionConfig
) -> np.ndarray:
    """The ``candidates`` (indices) that move rigidly with the ones nearest the grasp.

    Args:
        trajectories: (T, N, 3) the object's flow.
        candidates: (C,) indices of the points that may be carried.
        distance: (N,) distance of every point to what the fingers touch.
    Returns:
        The sorted subset of ``candidates`` within the tolerance (at every frame; see
        `RegionConfig.rigid_tolerance`) of the rigid motion fitted to the nearest ones (refitted
        twice on what agrees); at least three points (the last set that had three).
    """
    traj = np.asarray(trajectories[:, candidates], np.float32)  # (T, C, 3); float32 halves the work
    rest = traj[0]
    core = np.argsort(distance[candidates], kind="stable")[: max(config.core_points, 3)]
    keep, tolerance = core, None
    for _ in range(3):  # fit on the core, then refit (twice) on everything that agrees with it
        fit = geometry.kabsch(rest[keep], traj[:, keep])
        fit = fit.astype(np.float32)
        predicted = rest @ np.swapaxes(fit[:, :3, :3], -1, -2) + fit[:, None, :3, 3]
        deviation = np.sqrt(((predicted - traj) ** 2).sum(-1).max(0))
        if tolerance is None:  # the flow's own noise on the core sets how near "rigid" is
            noise = float(np.median(deviation[core]))
            tolerance = float(np.clip(config.noise_factor * noise, config.min_rigid_tolerance,
                                      config.rigid_tolerance))
        agree = np.flatnonzero(deviation <= tolerance)
        if len(agree) < 3:
            break
        keep = agree
    return np.sort(candidates[keep])


def local_bending(motion: ObjectMotion, center: np.ndarray, mask: np.ndarray, radius: float) -> float:
    """How far the moving points within ``radius`` of ``center`` (3,) are from moving rigidly:
    the largest per-frame RMS distance of their flow to its best rigid fit, metres (0 with
    fewer than three). Absolute: a generated flow's own noise counts too, alike for every grasp
    of it.

    A grip held rigidly where the flow bends - next to a joint, or on a generated flow's part
    that bends into the next one - is asked for a turn its link does not make.
    """
    near = np.flatnonzero(mask & (np.linalg.norm(motion.points - center, axis=1) <= radius))
    if len(near) < 3:
        return 0.0
    region = CarriedPoints(near, np.ones(len(near)), motion.trajectories[:, near].astype(np.float64))
    return float(rigid_residual(region).max())


def rigid_fit(carried: CarriedPoints) -> np.ndarray:
    """(T, 4, 4) weighted Kabsch fit M(t) of the carried points' flow: p(t) ~ M(t) p(0)."""
    keep = carried.weights > 0
    return geometry.kabsch(carried.points[keep], carried.trajectories[:, keep], carried.weights[keep])


def rigid_residual(carried: CarriedPoints) -> np.ndarray:
    """(T,) weighted RMS distance of the carried points' flow to its own best rigid fit
    (`rigid_fit`), metres: how far the flow is from moving rigidly at each frame.

    No TCP pose under the rigid attachment gets closer to the flow than this; on a generated
    flow it is the flow's non-rigid noise (a few mm), on an exact one it is zero.
    """
    keep = carried.weights > 0
    points, w = carried.points[keep], carried.weights[keep]
    traj = carried.trajectories[:, keep]
    predicted = geometry.transform_points(rigid_fit(carried), np.broadcast_to(points, traj.shape))
    d2 = ((predicted - traj) ** 2).sum(-1)
    return np.sqrt(d2 @ w / w.sum())


def alignment_errors(ee: np.ndarray, grasp: np.ndarray, carried: CarriedPoints) -> np.ndarray:
    """(T, N) distance between the flow and the rigid-attachment prediction E(t) E(0)^-1 p(0).

    Args:
        ee: (T, 4, 4) planned TCP poses over the manipulate segment, world frame.
        grasp: (4, 4) TCP pose at the grasp (E(0) of the attachment), world frame.
    """
    local = geometry.transform_points(geometry.invert(grasp), carried.points)
    predicted = geometry.transform_points(ee, np.broadcast_to(local, (len(ee),) + local.shape))
    return np.linalg.norm(predicted - carried.trajectories, axis=-1)


def weighted_mean(errors: np.ndarray, weights: np.ndarray) -> float:
    """Mean of (T, N) errors over frames and points, weighted by (N,) weights."""
    return float((errors * weights).sum() / (weights.sum() * len(errors)))
