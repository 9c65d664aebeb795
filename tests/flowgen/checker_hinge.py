"""A hinged box that neither flowgen nor PyBullet draws: two checkerboard boxes (a base and a lid
on a hinge along its back edge) on a grey table, filmed by a small z-buffer triangle rasteriser
written here (flat Lambert shading, the checkers computed per pixel in each part's own frame),
with the lid closing from 105 to 45 degrees. The scan is the first frame's geometry with the
checkers at its vertices. A test helper (tests/flowgen/test_recovery.py, test_first_frame.py)
and `benchmarks/lift.py`'s second clip (issue #17: is the video fit tuned to one renderer's
look?); flowgen itself never imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

WIDTH, DEPTH, BASE_H, LID_H = 0.30, 0.21, 0.02, 0.008
START_DEG, END_DEG = 105.0, 45.0
CELL = 0.03
"""Checker cell, metres."""
COLOURS = {"base": ((0.1, 0.1, 0.1), (0.9, 0.9, 0.9)), "lid": ((0.8, 0.1, 0.1), (0.95, 0.95, 0.95))}
TABLE_RGB = (0.55, 0.55, 0.55)
LIGHT = np.array([0.3, -0.5, 1.0]) / np.linalg.norm([0.3, -0.5, 1.0])
HINGE = np.array([0.0, DEPTH / 2, BASE_H])


def ease(t: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def lid_angle(t: np.ndarray | float) -> np.ndarray:
    """Degrees above the base at clip time ``t`` in [0, 1]."""
    return START_DEG + (END_DEG - START_DEG) * ease(np.asarray(t, dtype=np.float64))


def lid_pose(angle_deg: float) -> np.ndarray:
    """(4, 4) world pose of the lid's frame (the closed lid's frame is the world's)."""
    a = -math.radians(angle_deg)  # about +x: the free edge (toward -y) rises
    return trimesh.transformations.rotation_matrix(a, [1.0, 0.0, 0.0], point=HINGE)


def parts() -> dict[str, trimesh.Trimesh]:
    """The base and the closed lid (world = the lid's frame), and the table."""
    base = trimesh.creation.box((WIDTH, DEPTH, BASE_H), transform=trimesh.transformations.translation_matrix([0, 0, BASE_H / 2]))
    lid = trimesh.creation.box((WIDTH, DEPTH, LID_H), transform=trimesh.transformations.translation_matrix([0, 0, BASE_H + LID_H / 2 + 0.001]))
    table = trimesh.creation.box((1.0, 1.0, 0.04), transform=trimesh.transformations.translation_matrix([0, 0.1, -0.02]))
    return {"base": base, "lid": lid, "table": table}


def checker(local: np.ndarray, part: str) -> np.ndarray:
    """(..., 3) RGB of the part's checkerboard at its own-frame points ``local`` (..., 3)."""
    a, b = (np.asarray(c) for c in COLOURS[part])
    k = np.floor(local / CELL + 1e-6).astype(int).sum(-1) % 2
    return np.where(k[..., None] == 0, a, b)


def move_lid(points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, N, 3) the lid's points (given at the first frame) at clip ``times``."""
    back = np.linalg.inv(lid_pose(START_DEG))
    local = points @ back[:3, :3].T + back[:3, 3]
    out = []
    for t in times:
        pose = lid_pose(float(lid_angle(t)))
        out.append(local @ pose[:3, :3].T + pose[:3, 3])
    return np.stack(out)


def render(camera, lid_deg: float | None) -> np.ndarray:
    """(H, W, 3) uint8 image: the table, and the box with its lid at ``lid_deg`` (None: no box)."""
    h, w = camera.height, camera.width
    depth = np.full((h, w), np.inf)
    image = np.ones((h, w, 3))  # white beyond the table
    meshes = parts()
    items = [("table", meshes["table"], np.eye(4))]
    if lid_deg is not None:
        items += [("base", meshes["base"], np.eye(4)), ("lid", meshes["lid"], lid_pose(lid_deg))]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    for name, mesh, pose in items:
        local = np.asarray(mesh.vertices)
        world = local @ pose[:3, :3].T + pose[:3, 3]
        uv, z = camera.project(world)
        for face, normal in zip(mesh.faces, mesh.face_normals, strict=True):
            n = pose[:3, :3] @ normal
            shade = 0.35 + 0.65 * max(float(n @ LIGHT), 0.0)
            p = uv[face]
            x0, x1 = max(int(p[:, 0].min()), 0), min(int(p[:, 0].max()) + 1, w)
            y0, y1 = max(int(p[:, 1].min()), 0), min(int(p[:, 1].max()) + 1, h)
            if x0 >= x1 or y0 >= y1 or (z[face] <= 0).any():
                continue
            px, py = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
            (ax, ay), (bx, by), (cx, cy) = p
            area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
            if abs(area) < 1e-12:
                continue
            w1 = ((px - ax) * (cy - ay) - (cx - ax) * (py - ay)) / area
            w2 = ((bx - ax) * (py - ay) - (px - ax) * (by - ay)) / area
            w0 = 1.0 - w1 - w2
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            # perspective-correct: interpolate 1/z and attributes / z
            iz = w0 / z[face[0]] + w1 / z[face[1]] + w2 / z[face[2]]
            zz = 1.0 / np.where(inside, iz, 1.0)
            closer = inside & (zz < depth[y0:y1, x0:x1])
            if not closer.any():
                continue
            lw = np.stack([w0 / z[face[0]], w1 / z[face[1]], w2 / z[face[2]]], -1) * zz[..., None]
            pts = lw @ local[face]
            colour = np.asarray(TABLE_RGB) if name == "table" else checker(pts, name)
            colour = np.broadcast_to(colour, (*closer.shape, 3)) * shade
            depth[y0:y1, x0:x1][closer] = zz[closer]
            image[y0:y1, x0:x1][closer] = colour[closer]
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class CheckerClip:
    """Paths of the clip and the scan's part vertices (for the errors)."""

    scan: Path
    video: Path
    camera: Path
    background: Path
    lid: np.ndarray
    base: np.ndarray


def camera(width: int = 320, height: int = 240):
    from chord_robot.camera import Camera

    return Camera.look_at(np.array([0.45, -0.55, 0.5]), np.array([0.0, 0.03, 0.08]), width, height, fov_y_deg=40.0)


def write(out: Path, frames: int = 41, supersample: int = 2) -> CheckerClip:
    """Render the clip (at ``supersample`` x the size, area-averaged) and write the scan."""
    import imageio.v3 as iio

    from chord_robot.camera import save_cameras
    from sim.tasks.flow_inputs import write_labelled_scan

    out.mkdir(parents=True, exist_ok=True)
    cam, big = camera(), camera(320 * supersample, 240 * supersample)

    def shrink(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[0] // supersample, img.shape[1] // supersample
        return np.round(img.reshape(h, supersample, w, supersample, 3).mean((1, 3))).astype(np.uint8)

    scan, video_path, camera_path, background = (out / f"checker-{name}" for name in
                                                  ("box.ply", "hinge.mp4", "camera.json", "background.png"))
    video = np.stack([shrink(render(big, float(lid_angle(t)))) for t in np.linspace(0.0, 1.0, frames)])
    iio.imwrite(video_path, video, fps=10, codec="libx264", quality=9, macro_block_size=8)
    iio.imwrite(background, shrink(render(big, None)))
    save_cameras(camera_path, cam)
    meshes = parts()
    base = meshes["base"].subdivide_to_size(0.006)
    lid = meshes["lid"].subdivide_to_size(0.006)
    base_colours = checker(np.asarray(base.vertices), "base")
    lid_colours = checker(np.asarray(lid.vertices), "lid")
    lid.apply_transform(lid_pose(START_DEG))
    box = trimesh.util.concatenate([base, lid])
    table = meshes["table"].subdivide_to_size(0.05)
    write_labelled_scan(scan, {"table": (table, np.tile(TABLE_RGB, (len(table.vertices), 1))),
                               "box": (box, np.concatenate([base_colours, lid_colours]))})
    return CheckerClip(scan, video_path, camera_path, background, np.asarray(lid.vertices), np.asarray(base.vertices))


def errors(flow, clip: CheckerClip) -> dict[str, float]:
    """Errors (mm) of the flow's box against the analytic hinge at the scan's vertices."""
    motion = flow.objects["box"]
    times = np.arange(flow.num_frames) / (flow.num_frames - 1)
    lid_error = np.linalg.norm(motion.evaluate(clip.lid) - move_lid(clip.lid, times), axis=-1)
    base_error = np.linalg.norm(motion.evaluate(clip.base) - clip.base[None], axis=-1)
    return {"lid_mean_mm": 1000 * float(lid_error.mean()), "lid_final_mm": 1000 * float(lid_error[-1].mean()),
            "base_mean_mm": 1000 * float(base_error.mean()),
            "base_worst_frame_mm": 1000 * float(base_error.mean(1).max())}
