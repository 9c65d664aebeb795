"""The inputs of the ``video`` flow source, written from a reset task: a labelled, coloured scan
of the scene, a video of the oracle motion with its camera, and the background without the
objects (DESIGN.md §3, §6).

The scan's colours are the ones the sim renders (the task objects' patch textures), so that a
video prior fitted to the video starts from the colours it sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chord_robot.camera import Camera
from sim.tasks.base import ORACLE_FPS, Task, record_oracle


@dataclass(frozen=True)
class FlowInputFiles:
    """What the ``video`` flow source fits, written by :func:`write_flow_inputs`.

    Attributes:
        scan: labelled, coloured mesh PLY of the scene at reset (``scan.labels.json`` beside it).
        video: MP4 of the oracle motion from the reference camera.
        camera: that camera's JSON.
        background: PNG of the same view with only the table (None: not written).
    """

    scan: Path
    video: Path
    camera: Path
    background: Path | None


def write_labelled_scan(path: str | os.PathLike[str], objects: dict) -> Path:
    """A scanned-style, labelled mesh PLY with vertex colours: object i of ``objects`` (name ->
    (trimesh mesh, (M, 3) RGB in [0, 1])) gets label i; the names go to ``SCAN.labels.json``
    (DESIGN.md §3). Both files are written atomically."""
    import json

    from chord_robot.atomic import atomic_path
    from chord_robot.ply import write_ply

    verts, faces, cols, labels, offset = [], [], [], [], 0
    for label, (mesh, colours) in enumerate(objects.values()):
        verts.append(np.asarray(mesh.vertices))
        faces.append(np.asarray(mesh.faces) + offset)
        cols.append(colours)
        labels.append(np.full(len(mesh.vertices), label, np.int32))
        offset += len(mesh.vertices)
    v = np.concatenate(verts).astype(np.float32)
    c = np.round(np.clip(np.concatenate(cols), 0, 1) * 255).astype(np.uint8)
    props = {"x": v[:, 0], "y": v[:, 1], "z": v[:, 2], "red": c[:, 0], "green": c[:, 1],
             "blue": c[:, 2], "label": np.concatenate(labels)}
    path = Path(path)
    with atomic_path(path) as tmp:
        write_ply(tmp, props, np.concatenate(faces))
    names = {str(i): name for i, name in enumerate(objects)}
    with atomic_path(path.with_suffix(".labels.json")) as tmp:
        Path(tmp).write_text(json.dumps(names))
    return path


def table_surface(world) -> tuple:
    """The world's table as a scan surface: (mesh, its RGB vertex colours)."""
    from sim.world import table_mesh

    table = table_mesh(world.config.table)
    return table, np.tile(world.config.table.color[:3], (len(table.vertices), 1))


def write_scan(task: Task, path: str | os.PathLike[str]) -> Path:
    """The task's scene as a scanned-style, labelled mesh PLY with vertex colours: the table
    (label 0) and every task object at its current pose, in the colours the sim renders
    (`write_labelled_scan`)."""
    return write_labelled_scan(path, {"table": table_surface(task.world), **task.scan_surfaces()})


def render_background(task: Task, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8: the view of ``camera`` with the table only (a second, temporary world
    with the task world's settings), the background the video prior composites over."""
    from sim.render import render
    from sim.world import create

    empty = create(task.world.config, direct=True)
    try:
        return render(empty, camera, segmentation=False).rgb
    finally:
        empty.close()


def flow_camera(task: Task, width: int, height: int, fov_y_deg: float = 40.0, margin: float = 1.1) -> Camera:
    """A camera looking from the reference camera's direction that fits every moving object
    over the whole oracle motion in view: the reference views frame the robot's workspace, in
    which the objects cover a few dozen pixels at the flow's resolution."""
    from chord_robot.camera import frame_points

    flow = task.oracle_flow(num_frames=11, points_per_object=512)
    points = np.concatenate([m.trajectories.reshape(-1, 3) for m in flow.moving().values()])
    centre = (points.min(0) + points.max(0)) / 2
    d = task.reference_camera(width, height).position - centre
    azimuth = np.degrees(np.arctan2(d[1], d[0]))
    elevation = np.degrees(np.arcsin(d[2] / np.linalg.norm(d)))
    return frame_points(points, width, height, azimuth, elevation, fov_y_deg, margin)


def write_flow_inputs(
    task: Task, out_dir: str | os.PathLike[str], num_frames: int = 41, width: int = 320,
    height: int = 240, camera: Camera | None = None, background: bool = True,
) -> FlowInputFiles:
    """Write the inputs of the ``video`` flow sources for a reset task into ``out_dir``
    (created): its scan, a video of the oracle motion with its camera's JSON, and the
    background image. The task is back at its reset state afterwards.

    Args:
        camera: the video's camera (None: :func:`flow_camera`, framed from the scripted motion
            itself: privileged).
        background: also write the object-free background image (privileged: a user's video
            has none).
    """
    import imageio.v3 as iio

    from chord_robot.atomic import atomic_path
    from chord_robot.camera import save_cameras
    from sim.render import write_mp4

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = FlowInputFiles(out / "scan.ply", out / "video.mp4", out / "camera.json",
                           out / "background.png" if background else None)
    write_scan(task, files.scan)
    camera = camera if camera is not None else flow_camera(task, width, height)
    frames, _ = record_oracle(task, num_frames, width, height, camera)
    task.reset(task.seed)  # type: ignore[attr-defined]
    write_mp4(files.video, frames, fps=ORACLE_FPS)
    save_cameras(files.camera, camera)
    if files.background is not None:
        with atomic_path(files.background) as tmp:
            iio.imwrite(tmp, render_background(task, camera), extension=".png")
    return files
