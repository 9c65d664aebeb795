"""Analytic scenes and flows with known motion: tests, benchmarks and demos use them.

World frame: z up, a table top at z = 0, objects in front of a robot base at the origin.
"""

from __future__ import annotations

import numpy as np

from chord_robot import geometry
from chord_robot.flow import ObjectFlow, ObjectMotion


def box_surface(
    size: tuple[float, float, float], center: tuple[float, float, float], spacing: float = 0.005
) -> np.ndarray:
    """(N, 3) points on the six faces of an axis-aligned box, about ``spacing`` apart."""
    size_a, center_a = np.asarray(size, dtype=np.float64), np.asarray(center, dtype=np.float64)
    faces = []
    for axis in range(3):
        u, v = [k for k in range(3) if k != axis]
        gu = np.linspace(-0.5, 0.5, max(2, round(float(size_a[u]) / spacing) + 1)) * size_a[u]
        gv = np.linspace(-0.5, 0.5, max(2, round(float(size_a[v]) / spacing) + 1)) * size_a[v]
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        for sign in (-1, 1):
            f = np.zeros((uu.size, 3))
            f[:, u], f[:, v], f[:, axis] = uu.ravel(), vv.ravel(), sign * size_a[axis] / 2
            faces.append(f)
    pts = np.unique(np.round(np.concatenate(faces), 9), axis=0)
    return pts + center_a


def table(
    extent: tuple[float, float, float, float] = (0.1, 0.9, -0.45, 0.45), spacing: float = 0.01
) -> np.ndarray:
    """(M, 3) points of a table top at z = 0 over x0, x1, y0, y1."""
    x0, x1, y0, y1 = extent
    xx, yy = np.meshgrid(
        np.arange(x0, x1 + 1e-9, spacing), np.arange(y0, y1 + 1e-9, spacing), indexing="ij"
    )
    return np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], 1)


def ease(num_frames: int) -> np.ndarray:
    """(T,) smooth 0 -> 1 progress with zero velocity at both ends."""
    return 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, num_frames))


def _flow(task: str, moving: ObjectMotion, static: dict[str, np.ndarray], fps: float) -> ObjectFlow:
    t = moving.num_frames
    objects = {"object": moving}
    for name, pts in static.items():
        objects[name] = ObjectMotion.rigid(pts, np.repeat(np.eye(4)[None], t, 0), static=True)
    return ObjectFlow(objects, task, fps=fps, prior="oracle")


BOX_SIZE = (0.04, 0.12, 0.10)
"""Narrow along x (4 cm): the only side the Panda's 8 cm gripper closes across."""


def translation_flow(
    num_frames: int = 41, offset: tuple[float, float, float] = (0.0, 0.15, 0.05), fps: float = 10.0
) -> ObjectFlow:
    """A box on a table translated rigidly by ``offset`` metres."""
    pts = box_surface(BOX_SIZE, (0.5, -0.05, BOX_SIZE[2] / 2))
    s = ease(num_frames)
    poses = np.repeat(np.eye(4)[None], num_frames, 0)
    poses[:, :3, 3] = s[:, None] * np.asarray(offset)
    return _flow("move the box", ObjectMotion.rigid(pts, poses), {"table": table()}, fps)


def hinge_poses(pivot: np.ndarray, axis: np.ndarray, angle: float, num_frames: int) -> np.ndarray:
    """(T, 4, 4) rotations by ``ease * angle`` (radians) about the line through ``pivot`` along ``axis``."""
    r = geometry.rotation_about(axis, ease(num_frames) * angle)
    return geometry.make_transform(r, pivot - np.einsum("tij,j->ti", r, pivot))


HINGE_PIVOT = np.array([0.5, 0.0, 0.05])
HINGE_AXIS = np.array([0.0, 1.0, 0.0])


def hinge_flow(num_frames: int = 41, angle_deg: float = 60.0, fps: float = 10.0) -> ObjectFlow:
    """A lid (a 25 x 15 cm plate, 1 cm thick) standing up from a hinge along y at x = 0.5, z = 0.05,
    rotating by ``angle_deg`` about it (it tilts away from the robot); its base block stays still.

    One object, "object", whose moving part is the lid: the moving-part selection is exercised.
    """
    lid = box_surface((0.01, 0.15, 0.25), (HINGE_PIVOT[0], 0.0, HINGE_PIVOT[2] + 0.125 + 0.005))
    block = box_surface((0.06, 0.15, 0.05), (HINGE_PIVOT[0], 0.0, 0.025), spacing=0.01)
    poses = hinge_poses(HINGE_PIVOT, HINGE_AXIS, np.deg2rad(angle_deg), num_frames)
    lid_traj = geometry.transform_points(poses, np.broadcast_to(lid, (num_frames,) + lid.shape))
    pts = np.concatenate([lid, block])
    traj = np.concatenate([lid_traj, np.broadcast_to(block, (num_frames,) + block.shape)], 1)
    # Control points: one on the lid (moving), one on the block (still); LBS by nearest.
    rigid = ObjectMotion.rigid(lid, poses)
    still = ObjectMotion.rigid(block, np.repeat(np.eye(4)[None], num_frames, 0))
    motion = ObjectMotion(
        points=pts,
        trajectories=traj,
        centers=np.concatenate([rigid.centers, still.centers]),
        quats=np.concatenate([rigid.quats, still.quats], 1),
        translations=np.concatenate([rigid.translations, still.translations], 1),
        scales=np.array([0.05, 0.05]),
    )
    return _flow("tilt the lid", motion, {"table": table()}, fps)


def arc_flow(num_frames: int = 41, fps: float = 10.0) -> ObjectFlow:
    """Pick and place: the box lifts 12 cm along an arc to a spot 25 cm away, turning 30 degrees."""
    pts = box_surface(BOX_SIZE, (0.45, -0.12, BOX_SIZE[2] / 2))
    s = ease(num_frames)
    center = np.array([0.45, -0.12, BOX_SIZE[2] / 2])
    shift = np.stack([0.05 * s, 0.25 * s, 0.12 * np.sin(np.pi * s)], 1)
    r = geometry.rotation_about(np.array([0.0, 0.0, 1.0]), np.deg2rad(30.0) * s)
    poses = geometry.make_transform(r, center + shift - np.einsum("tij,j->ti", r, center))
    return _flow(
        "put the box on the right", ObjectMotion.rigid(pts, poses), {"table": table()}, fps
    )
