"""A grip on a hinged link follows a hinge: the grasped link turns about a fixed axis.

A rigid grip holds its link, and a link hinged to its object's still part (a laptop's lid, a
lamp's arm on its base) can only turn about its joint. A generated flow rarely says so exactly:
it may turn such a link about a tilted axis while its joint wanders, and a hand that follows
that drags the object (the chord lamp's flows: docs/planning-notes.md, session 25). Where the
flow shows such a link, the grip can follow the turn the flow asks of it about a fixed axis:

- the axis is the normal of the plane the object's moving points travel nearest (the smallest
  singular direction of their displacements): parallel joints (a lid, a lamp's arm and head)
  move every point in planes across it, and the whole moving part gives it far nearer the
  joint's axis than the grasped link's own rotation does;
- the angle at each frame is the twist about that axis of the grasped link's rigid motion
  (swing-twist: a tilt about another axis is dropped);
- the pivot is the flow's own where the link turns about a fixed point to within
  `HingeConfig.own_pivot` (an exact or lifted flow keeps its hinge), else where the link meets
  the still part: the centroid of the link's points within `HingeConfig.touch` of it.

Off by default (`HingeConfig.enabled`; `PlanConfig.hinge`). Nothing changes for an object with
no still part (a banana carried to a plate), a link that does not touch it (a lamp's head,
hinged to the moving arm), a link that barely turns (`HingeConfig.min_turn_deg`), or a hinge that
leaves more than `HingeConfig.explains` of what the flow moves (a drawer slides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from chord_robot.flow import ObjectMotion
from planning.region import CarriedPoints, rigid_fit


@dataclass(frozen=True)
class HingeConfig:
    """When and how a grip's motion is put on a hinge (`hinged`)."""

    enabled: bool = False
    """Off by default: it keeps a hinged object in place but passes no more simulated trials
    (docs/planning-notes.md, session 25)."""
    still_motion: float = 0.005
    """Points of the object that move less than this (metres) are its still part."""
    link_tolerance: float = 0.01
    """Points within this (metres, every frame) of the grasped part's rigid motion are its link."""
    touch: float = 0.015
    """The link's points within this of the still part (metres, at frame 0) are where it is hinged."""
    own_pivot: float = 0.005
    """A flow whose link turns about a fixed pivot to within this (RMS over the link's carried
    points, worst frame, metres) keeps that pivot."""
    min_turn_deg: float = 5.0
    """A link turning less than this (degrees, at its largest) has no hinge to follow: the
    pivot of a turn near zero is not determined."""
    explains: float = 0.6
    """Largest ratio of the hinge's residual to the link's displacement (RMS over its carried
    points, worst frame of each): a hinge that leaves more of the motion is not one."""


@dataclass(frozen=True)
class Hinge:
    """A fitted hinge: the grasped link's motion about a fixed axis.

    Attributes:
        axis: (3,) unit axis, world frame.
        pivot: (3,) a point on it, world frame.
        angles: (T,) turn about it from frame 0, radians (right-handed about ``axis``).
        poses: (T, 4, 4) the link's motion: rotation by ``angles`` about the axis line.
        own_pivot: whether the pivot is the flow's (else where the link meets the still part).
        residual: RMS distance of the carried points' flow from the hinge's motion, worst frame, metres.
    """

    axis: np.ndarray
    pivot: np.ndarray
    angles: np.ndarray
    poses: np.ndarray
    own_pivot: bool
    residual: float

    def carry(self, carried: CarriedPoints) -> CarriedPoints:
        """``carried`` with its trajectories moved onto the hinge's motion (``off_flow``: the residual)."""
        rest = np.broadcast_to(carried.points, carried.trajectories.shape)
        return CarriedPoints(carried.index, carried.weights, geometry.transform_points(self.poses, rest),
                             off_flow=self.residual)


def hinged(
    motion: ObjectMotion, mask: np.ndarray, carried: CarriedPoints, config: HingeConfig | None = None
) -> Hinge | None:
    """The hinge the grasped link ``carried`` turns on, or None where there is none (module doc).

    Args:
        motion: the object's flow.
        mask: (N,) its moving part (`planning.region.moving_mask`).
        carried: what the grip carries (`planning.region.carried_points`).
        config: when and how (default `HingeConfig()`: off).
    Returns:
        The hinge, or None (off, or no hinge the flow shows).
    """
    config = config or HingeConfig()
    traj = np.asarray(motion.trajectories, np.float64)
    assert mask.shape == (traj.shape[1],), (mask.shape, traj.shape)
    if not config.enabled or mask.sum() < 3:
        return None
    moved = np.linalg.norm(traj - traj[0], axis=-1).max(0)
    still = moved < config.still_motion
    axis = _plane_normal(traj[:, mask] - traj[0, mask])
    if axis is None or still.sum() < 3:
        return None
    fit = rigid_fit(carried)
    deviation = np.linalg.norm(geometry.transform_points(fit, np.broadcast_to(traj[0], traj.shape)) - traj,
                               axis=-1).max(0)
    link = np.flatnonzero((deviation <= config.link_tolerance) & ~still)
    if len(link) < 3:
        return None
    gap, _ = cKDTree(traj[0, still]).query(traj[0, link], distance_upper_bound=config.touch)
    touching = link[np.isfinite(gap)]
    if len(touching) < 3:
        return None
    angles = geometry.twist(fit[:, :3, :3], axis)
    if np.abs(angles).max() < np.deg2rad(config.min_turn_deg):
        return None
    if angles[-1] < 0:  # turn positively about the axis
        axis, angles = -axis, -angles
    rotations = geometry.rotation_about(axis, angles)
    keep = carried.weights > 0
    points, flow = carried.points[keep], carried.trajectories[:, keep]
    moved_rms = _worst_rms(flow - flow[0])
    joint = traj[0, touching].mean(0)

    def residual_of(pivot: np.ndarray) -> tuple[np.ndarray, float]:
        poses = _poses(rotations, pivot)
        return poses, _worst_rms(geometry.transform_points(poses, np.broadcast_to(points, flow.shape)) - flow)

    pivot = _pivot(rotations, points, flow, axis, joint)
    poses, residual = residual_of(pivot)
    own = residual <= config.own_pivot
    if not own:
        pivot = joint
        poses, residual = residual_of(pivot)
    if residual > config.explains * moved_rms:
        return None
    return Hinge(axis, pivot, angles, poses, own, residual)


def _plane_normal(displacements: np.ndarray) -> np.ndarray | None:
    """Unit normal of the plane (T, M, 3) displacements lie nearest (least squares), or None
    if they lie along a line (no plane)."""
    _, s, vt = np.linalg.svd(displacements.reshape(-1, 3), full_matrices=False)
    if s[1] <= 1e-6 * s[0]:
        return None
    return vt[2]


def _pivot(rotations: np.ndarray, points: np.ndarray, flow: np.ndarray, axis: np.ndarray,
           near: np.ndarray) -> np.ndarray:
    """The pivot on a line along ``axis`` about which (T, 3, 3) ``rotations`` carry (M, 3)
    ``points`` nearest their (T, M, 3) ``flow``: least squares over frames and points (for a
    fixed rotation the points' mean decides it), the line's point nearest ``near``."""
    across = np.eye(3) - np.outer(axis, axis)
    a = ((np.eye(3) - rotations) @ across).reshape(-1, 3)
    b = (flow.mean(1) - rotations @ points.mean(0) - (np.eye(3) - rotations) @ near).reshape(-1)
    offset, *_ = np.linalg.lstsq(a, b, rcond=None)
    return near + across @ offset


def _poses(rotations: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """(T, 4, 4) rotations about ``pivot``."""
    poses = np.tile(np.eye(4), (len(rotations), 1, 1))
    poses[:, :3, :3] = rotations
    poses[:, :3, 3] = pivot - rotations @ pivot
    return poses


def _worst_rms(offsets: np.ndarray) -> float:
    """Largest over frames of the RMS length of (T, N, 3) offsets."""
    return float(np.sqrt((offsets**2).sum(-1).mean(1)).max())
