"""Pinch proposals: for sheets (a cloth lying flat) that no antipodal pair fits across.

A sheet is an object thinner than the gripper can close on. The hand comes down along the
sheet's normal, from the side away from the surface it lies on, until the fingertips hover
``gap`` above it, then closes: the fingertips pinch the sheet (against the support, for a
cloth on a table). The pinched point, not a rigid region, is what the hand carries; the
sheet bends around it (`Grasp.pinch`).

While the fingers close, the sheet slips a little along the closing axis. Closing across the
direction the pinched point will travel turns that slip into a sideways offset of where it
lands, rather than landing short of (or past) its target: rolls are scored by that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot import geometry
from planning.grasps import Grasp, GraspRequest, collision_counts


@dataclass(frozen=True)
class PinchConfig:
    """Pinch sampling and scoring."""

    max_thickness: float = 0.005
    """An object whose points lie within this distance of a plane is a sheet, metres."""
    samples: int = 64
    """Points of the moving part tried: the ones with the largest weights (a cloth's corner
    moves the most; pinching next to it rather than on it would leave the corner short of
    where the flow takes it)."""
    rolls: int = 4
    """Rotations of the hand about the approach tried per point."""
    gap: float = 0.003
    """Height of the fingertips above the sheet at the pinch, metres."""
    approach_distance: float = 0.08
    """Length of the straight approach along the normal; its swept volume must be free."""
    clearance: float = 0.002
    """Points closer than this to the hand count as collisions, metres."""
    max_pinches: int = 96
    """Pinches returned, best first."""


def sheet_normal(points: np.ndarray, max_thickness: float) -> np.ndarray | None:
    """(3,) unit normal of the plane (N, 3) ``points`` lie in, or None if they are thicker
    than ``max_thickness`` (peak to peak along the normal)."""
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    normal = vt[2]
    depth = centred @ normal
    return normal if float(depth.max() - depth.min()) <= max_thickness else None


@dataclass(frozen=True)
class PinchPlanner:
    """Proposes pinches of a sheet's moving part (none if the object is not a sheet)."""

    displacement: np.ndarray
    """(N, 3) where each object point ends up relative to where it starts (flow last frame
    minus first)."""
    config: PinchConfig = PinchConfig()

    def propose(self, request: GraspRequest, rng: np.random.Generator) -> list[Grasp]:
        """Pinches for ``request``, best first (empty unless the object is a sheet)."""
        cfg, g = self.config, request.gripper
        pts = request.points
        normal = sheet_normal(pts, cfg.max_thickness)
        moving = np.flatnonzero(request.weights > 0)
        if normal is None or len(moving) == 0:
            return []
        # Come from the side the preferred approach comes from (above a cloth on a table).
        down = request.preferred_approach if request.preferred_approach is not None else -normal
        approach = -normal if float(normal @ down) < 0 else normal
        assert self.displacement.shape == pts.shape, (self.displacement.shape, pts.shape)
        pick = moving[np.argsort(-request.weights[moving], kind="stable")[: cfg.samples]]
        helper = np.array([1.0, 0, 0]) if abs(approach[0]) < 0.9 else np.array([0, 1.0, 0])
        out = []
        for i in pick:
            origin = pts[i] - approach * (g.finger_tip + cfg.gap)
            across = np.cross(approach, self.displacement[i])  # in the sheet, across the travel
            if np.linalg.norm(across) < 1e-9:
                across = np.cross(approach, helper)
            angles = np.pi * np.arange(cfg.rolls) / cfg.rolls
            closing = [geometry.rotation_about(approach, a) @ across for a in angles]
            poses = np.stack([geometry.frame_from_axes(approach, c, origin) for c in closing])
            # The fingers close on the sheet itself: only the rest of the scene is tested.
            hits = collision_counts(
                poses, request.obstacles, g, g.max_width, cfg.approach_distance, cfg.clearance
            )
            agree = 0.5 * (1 + float(approach @ down))
            score = 4.0 * float(request.weights[i]) + agree + 0.5 * np.abs(np.cos(angles))
            contacts = np.stack([pts[i], pts[i]])
            out += [
                Grasp(pose, 0.0, float(sc), contacts, pinch=True)
                for pose, h, sc in zip(poses, hits, score)
                if h == 0
            ]
        out.sort(key=lambda x: -x.score)
        return out[: cfg.max_pinches]
