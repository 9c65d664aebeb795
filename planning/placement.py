"""Where to put the robot's base when the caller gives none.

Candidates stand on the surface the object rests on, at a few distances around it, facing it;
a candidate is kept if its footprint is free of scene points, and ranked by how comfortably
the points the TCP must visit lie within the arm's reach from its shoulder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot import geometry
from planning.robot import RobotSpec


@dataclass(frozen=True)
class PlacementConfig:
    """Candidate base poses and how they are ranked."""

    distances: tuple[float, ...] = (0.45, 0.55, 0.65)
    """Horizontal distances from the object's centre tried, metres."""
    yaws: int = 12
    """Directions around the object tried."""
    footprint_radius: float = 0.15
    """Radius around the base that must be free of scene points, metres."""
    footprint_height: float = 0.02
    """Scene points lower than this above the base plane do not block it (the table), metres."""
    min_reach: float = 0.25
    """Points closer than this to the shoulder are awkward to reach, metres."""


def base_candidates(
    targets: np.ndarray,
    support_z: float,
    scene: np.ndarray,
    spec: RobotSpec,
    config: PlacementConfig | None = None,
) -> list[np.ndarray]:
    """Base poses (4, 4), best first, from which ``targets`` (N, 3) are within reach.

    Args:
        targets: points the TCP must reach over the motion (world frame).
        support_z: height of the base plane (the surface the object stands on).
        scene: (M, 3) scene points that must not be inside the base's footprint.
    """
    config = config or PlacementConfig()
    assert targets.ndim == 2 and targets.shape[1] == 3, targets.shape
    center = targets.mean(0)
    scored = []
    for d in config.distances:
        for k in range(config.yaws):
            theta = 2 * np.pi * k / config.yaws
            xy = center[:2] + d * np.array([np.cos(theta), np.sin(theta)])
            near = np.linalg.norm(scene[:, :2] - xy, axis=1) < config.footprint_radius
            if np.any(scene[near, 2] > support_z + config.footprint_height):
                continue
            shoulder = np.array([xy[0], xy[1], support_z + spec.shoulder_height])
            r = np.linalg.norm(targets - shoulder, axis=1)
            margin = min(spec.reach - r.max(), r.min() - config.min_reach)
            yaw = np.arctan2(center[1] - xy[1], center[0] - xy[0])
            scored.append((margin, geometry.yaw_pose(xy[0], xy[1], support_z, yaw)))
    scored.sort(key=lambda s: -s[0])
    return [pose for _, pose in scored]
