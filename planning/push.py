"""Push proposals: for parts better pushed than grasped (a lamp head, a laptop lid).

The closed fingertips touch the surface where the part moves away from them (outward normal
against the motion); the TCP then follows the part under the same rigid attachment model as
a grasp, and the approach ends at a pre-contact pose offset back along the normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from planning.grasps import Grasp, GraspRequest, collision_counts, gripper_boxes


@dataclass(frozen=True)
class PushConfig:
    """Push contact sampling and scoring."""

    samples: int = 200
    """Contact points sampled on the moving part."""
    min_opposition: float = 0.5
    """Smallest cosine between the inward normal and the contact's motion direction."""
    standoff: float = -0.002
    """Gap between fingertips and surface at the contact pose, metres; negative presses in,
    so that the fingertips, carried with the part, keep pushing it."""
    approach_distance: float = 0.06
    """Offset of the pre-contact pose back along the normal, metres."""
    clearance: float = 0.003
    """Points closer than this to the hand count as collisions, metres."""
    rolls: int = 4
    """Rotations of the hand about the push direction tried per contact."""
    max_pushes: int = 96
    """Pushes returned, best first."""


@dataclass(frozen=True)
class PushPlanner:
    """Samples push contacts on the moving part, facing against its motion."""

    directions: np.ndarray
    """(N, 3) unit direction each object point starts moving in (zero where it does not move)."""
    config: PushConfig = PushConfig()

    def propose(self, request: GraspRequest, rng: np.random.Generator) -> list[Grasp]:
        """Push contacts for ``request``, best first (possibly empty)."""
        cfg, g = self.config, request.gripper
        pts, nrm = request.points, request.normals
        assert self.directions.shape == pts.shape, (self.directions.shape, pts.shape)
        opposition = -np.einsum("ni,ni->n", nrm, self.directions)
        ok = np.flatnonzero((opposition >= cfg.min_opposition) & (request.weights > 0))
        if len(ok) == 0:
            return []
        pick = rng.choice(ok, size=min(cfg.samples, len(ok)), replace=False)
        scene = np.concatenate([pts, request.obstacles])
        scene_tree = cKDTree(scene)
        extent = np.abs(gripper_boxes(g, 0.0, cfg.approach_distance)).max(1)
        reach = float(np.linalg.norm(extent, axis=1).max()) + 2 * cfg.clearance
        # The hand is tested just before touching: the contact itself is meant to touch.
        touch_gap = cfg.clearance + 0.001
        out = []
        for i in pick:
            approach = -nrm[i]
            helper = np.array([0.0, 0, 1]) if abs(approach[2]) < 0.9 else np.array([1.0, 0, 0])
            origin = pts[i] - approach * (g.finger_tip + cfg.standoff)
            poses = []
            for k in range(cfg.rolls):
                closing = geometry.rotation_about(approach, np.pi * k / cfg.rolls) @ np.cross(
                    approach, helper
                )
                poses.append(geometry.frame_from_axes(approach, closing, origin))
            poses = np.stack(poses)
            before = poses.copy()
            before[:, :3, 3] = pts[i] - approach * (g.finger_tip + touch_gap)
            nearby = scene[scene_tree.query_ball_point(pts[i], reach)]
            hits = collision_counts(before, nearby, g, 0.0, cfg.approach_distance, cfg.clearance)
            pref = request.preferred_approach
            agree = 0.5 * (1 + float(approach @ pref)) if pref is not None else 0.5
            score = float(opposition[i]) + 2.0 * float(request.weights[i]) + agree
            out += [
                Grasp(p, 0.0, score, np.stack([pts[i], pts[i]]), mode="push")
                for p, h in zip(poses, hits)
                if h == 0
            ]
        out.sort(key=lambda x: -x.score)
        return out[: cfg.max_pushes]


def motion_directions(trajectories: np.ndarray, min_move: float = 0.005) -> np.ndarray:
    """(N, 3) unit direction each point first moves in, from (T, N, 3) trajectories.

    Uses the first frame at which the point has moved ``min_move``; zero if it never does.
    """
    disp = trajectories - trajectories[0]
    dist = np.linalg.norm(disp, axis=-1)  # (T, N)
    moved = dist >= min_move
    first = np.where(moved.any(0), moved.argmax(0), 0)
    d = disp[first, np.arange(disp.shape[1])]
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    return np.where(n > 0, d / np.maximum(n, 1e-12), 0.0)
