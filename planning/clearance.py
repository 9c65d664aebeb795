"""How near the robot comes to the scene along a plan: the free approach, the arm and the hand
while they carry, and the points they are measured against.

The approach and the arm are measured by the robot's covering spheres; the hand, while it holds
the object and after it lets go, by its own palm and finger boxes (`planning.grasps.box_gaps`):
the spheres are fitted round the fully open gripper and stand 1-2 cm proud of a hand closed on
a small object. `planning.report.TrajectoryResult.problem` turns these figures into refusals.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from planning.grasps import Grasp, box_gaps, gripper_boxes
from planning.layout import StepLayout
from planning.robot import RobotModel
from planning.trajopt import TrajectoryOptimizer


def approach_clearance(
    optimizer: TrajectoryOptimizer,
    layout: StepLayout,
    q: np.ndarray,
    base: np.ndarray,
    scene: cKDTree,
) -> float:
    """Smallest distance (metres, negative: overlapping) from the robot's spheres to the
    ``scene`` points (world frame) along the free approach of the steps ``q`` (S, dof):
    from the start to the pre-grasp, sampled between steps. The insertion from the
    pre-grasp on was checked with the grasp."""
    f = layout.first_target
    path = np.concatenate(
        [np.linspace(a, b, 4, endpoint=False) for a, b in pairwise(q[: f + 1])] + [q[f : f + 1]]
    )
    centres = geometry.transform_points(base, optimizer.sphere_centers(path).reshape(-1, 3))
    distance, _ = scene.query(centres)
    radius = np.tile(optimizer.spheres.radius, len(path))
    return float((distance - radius).min())


def _motion_path(layout: StepLayout, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The joints from the grasp to the end of ``q`` (S, dof), four samples per step, and the
    step each sample starts from."""
    a = layout.grasp
    path = np.concatenate(
        [np.linspace(x, y, 4, endpoint=False) for x, y in pairwise(q[a:])] + [q[-1:]]
    )
    return path, a + np.minimum(np.arange(len(path)) // 4, len(q) - 1 - a)


def motion_clearance(
    optimizer: TrajectoryOptimizer,
    layout: StepLayout,
    q: np.ndarray,
    base: np.ndarray,
    others: cKDTree | None,
) -> tuple[float, int]:
    """(smallest distance in metres, negative: overlapping; the step where it is) from the
    arm's spheres (the links up to the wrist; the hand is `hand_clearance`'s) to ``others``
    (world points of everything but the manipulated object, the table's surface left to the
    table-plane check) along the manipulation and the retreat: the steps from the grasp to the
    end ``q`` (S, dof), sampled between steps."""
    if others is None:
        return float("inf"), -1
    path, steps = _motion_path(layout, q)
    arm = optimizer.spheres.frame < len(optimizer.chain.links)
    centres = geometry.transform_points(base, optimizer.sphere_centers(path)[:, arm].reshape(-1, 3))
    distance, _ = others.query(centres)
    gap = (distance - np.tile(optimizer.spheres.radius[arm], len(path))).reshape(len(path), -1).min(1)
    worst = int(gap.argmin())
    return float(gap[worst]), int(steps[worst])


def hand_clearance(
    model: RobotModel,
    layout: StepLayout,
    q: np.ndarray,
    base: np.ndarray,
    others: cKDTree | None,
    grasp: Grasp,
) -> tuple[float, int]:
    """(smallest signed distance in metres, negative: inside; the step where it is) from
    ``others``' points (as `motion_clearance`'s) to the hand's palm and finger boxes
    (`planning.grasps.gripper_boxes`, the hand's own shape, not the spheres covering it on
    the way in) along the manipulation and the retreat of ``q`` (S, dof): `hand_gaps`."""
    gaps = hand_gaps(model, layout, q, base, others, grasp)
    worst = int(gaps.argmin())
    return (float("inf"), -1) if not np.isfinite(gaps[worst]) else (float(gaps[worst]), worst)


def hand_gaps(
    model: RobotModel,
    layout: StepLayout,
    q: np.ndarray,
    base: np.ndarray,
    others: cKDTree | None,
    grasp: Grasp,
) -> np.ndarray:
    """(S,) per step of ``q`` (S, dof), the smallest signed distance of ``others``' points to
    the hand's boxes on the way from that step to the next (sampled between steps; +inf before
    the grasp and where nothing is near): the fingers closed on the object (at the grasp's
    opening; a push's stay shut) until the last manipulate step, open from it on (the gripper
    releases there, at rest). The covering spheres, fitted round the fully open hand, stand 1-2
    cm proud of a hand closed on a small object carried low over another."""
    out = np.full(len(q), np.inf)
    if others is None:
        return out
    path, steps = _motion_path(layout, q)
    tcp = base @ model.tcp_pose(path)  # (P, 4, 4) world
    points = others.data
    near, _ = cKDTree(tcp[:, :3, 3]).query(points, distance_upper_bound=0.25)
    points = points[np.isfinite(near)]  # the palm's far corner is ~0.16 m from the TCP
    if len(points) == 0:
        return out
    gripper = model.spec.gripper
    push = grasp.mode == "push"
    last = layout.grasp + layout.frames - 1
    gap = np.full(len(path), np.inf)
    for width, at in (
        (0.0 if push else grasp.width, steps <= last),
        (0.0 if push else gripper.max_width, steps >= last),
    ):
        gap[at] = np.minimum(gap[at], box_gaps(tcp[at], points, gripper_boxes(gripper, width, 0.0)))
    np.minimum.at(out, steps, gap)
    return out


def others_above_table(obstacles: np.ndarray, table_z: float | None, margin: float = 0.01) -> cKDTree | None:
    """The tree `motion_clearance` measures against: ``obstacles`` without the table's surface
    (points within ``margin`` of the table plane, which the table check covers)."""
    keep = obstacles if table_z is None else obstacles[obstacles[:, 2] > table_z + margin]
    return cKDTree(keep) if len(keep) else None
