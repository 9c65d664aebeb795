"""What every task shares: the `Task` protocol, surface sampling, oracle-flow building blocks,
kinematic playback and reference-video rendering.

A task owns the bodies of a `World` between two ``reset(seed)`` calls. Its oracle is a
scripted object motion over normalised time s in [0, 1], lasting ``(num_frames - 1) / fps``
seconds; the flow samples it at ``num_frames`` frames and ``play_oracle`` at the sim rate.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.flow import ObjectFlow, ObjectMotion, matrix_to_quat
from sim.assets import PatchTexture, link_texture
from sim.world import Body, Panda, World, link_matrix, load_panda

ORACLE_FPS = 10.0
"""Frames per second of every oracle flow and reference video."""
ROBOT_BASE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
"""Suggested Panda base pose (wxyz_xyz): on the table top at its near edge, facing +x."""


class Task(Protocol):
    """The interface of every task in `sim.tasks.TASKS`."""

    name: str
    text: str
    world: World

    def reset(self, seed: int) -> None: ...
    def bodies(self) -> dict[str, Body]: ...
    def robot_base(self) -> np.ndarray: ...
    def load_robot(self) -> Panda: ...
    def scene_meshes(self) -> dict[str, trimesh.Trimesh]: ...
    def scene_points(self, num_points: int = 2048) -> dict[str, np.ndarray]: ...
    def scan_surfaces(self) -> dict[str, tuple[trimesh.Trimesh, np.ndarray]]: ...
    def oracle_flow(self, num_frames: int = 41, points_per_object: int = 2048) -> ObjectFlow: ...
    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None: ...
    def render_reference_video(
        self, num_frames: int = 41, width: int = 320, height: int = 240
    ) -> tuple[np.ndarray, Camera]: ...
    def reference_camera(self, width: int, height: int) -> Camera: ...
    def evaluate(self) -> tuple[bool, float]: ...


def ease(s: float | np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling: 0 -> 0, 1 -> 1, zero velocity and acceleration at both ends."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s * s)


def frame_times(num_frames: int) -> np.ndarray:
    """(T,) normalised times of the flow frames."""
    assert num_frames >= 2, num_frames
    return np.linspace(0.0, 1.0, num_frames)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Link:
    """One rigid part of a task object.

    Attributes:
        name: link name ("base", "lid", ...).
        body: PyBullet body id.
        index: PyBullet link index, -1 for the base.
        mesh: its surface in the link frame.
        rgba: its colour.
        texture: the coloured patches of its visual mesh, if it has them.
    """

    name: str
    body: int
    index: int
    mesh: trimesh.Trimesh
    rgba: tuple[float, float, float, float]
    texture: PatchTexture | None = None


def asset_links(
    spec: object, body: int, meshes: dict[str, trimesh.Trimesh], parts: tuple[tuple[str, int, tuple], ...]
) -> list[Link]:
    """The links of an asset body: ``parts`` lists (link name, PyBullet link index, rgba); each
    link carries its patch texture when ``spec`` has a texture seed (`sim.assets.link_texture`)."""
    return [Link(n, body, i, meshes[n], rgba, link_texture(spec, n, meshes[n], rgba)) for n, i, rgba in parts]


def sample_surface(mesh: trimesh.Trimesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) points uniformly distributed over the surface of ``mesh`` (area weighted)."""
    assert n > 0
    tri = mesh.triangles  # (F, 3, 3)
    area = mesh.area_faces
    face = rng.choice(len(tri), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def farthest_points(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` points by farthest point sampling from a random start. (N, 3) -> (k,)."""
    k = min(k, len(points))
    idx = np.empty(k, dtype=np.int64)
    idx[0] = rng.integers(len(points))
    d = np.linalg.norm(points - points[idx[0]], axis=1)
    for i in range(1, k):
        idx[i] = int(np.argmax(d))
        d = np.minimum(d, np.linalg.norm(points - points[idx[i]], axis=1))
    return idx


def split_count(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights``, each at least 1."""
    w = np.asarray(weights, dtype=np.float64)
    parts = np.maximum(1, np.floor(total * w / w.sum()).astype(int))
    parts[int(np.argmax(w))] += total - parts.sum()
    return parts


def transform(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (4, 4) ``m`` to (N, 3) points."""
    return points @ m[:3, :3].T + m[:3, 3]


def links_world_mesh(world: World, links: list[Link]) -> trimesh.Trimesh:
    """The union of the links' meshes at their current world poses."""
    parts = []
    for link in links:
        m = link.mesh.copy()
        m.apply_transform(link_matrix(world, link.body, link.index))
        parts.append(m)
    return trimesh.util.concatenate(parts)


def articulated_motion(
    links: list[Link],
    poses: dict[str, np.ndarray],
    num_points: int,
    rng: np.random.Generator,
    controls_per_link: int = 16,
    skin_scale: float = 0.5,
) -> ObjectMotion:
    """The motion of an object made of rigid links, each following its own poses.

    Args:
        links: the object's links (meshes in link frames).
        poses: link name -> (T, 4, 4) world poses over the flow's frames.
        num_points: surface points in total, split by link area.
        controls_per_link: control points per link (farthest point sampled on the link),
            each carrying the link's rigid transform.
        skin_scale: skinning radii as a fraction of the mean distance to the 3 nearest
            control points.
    Returns:
        An ObjectMotion whose trajectories are exact and whose skinning reproduces them away
        from the joints.
    """
    counts = split_count(num_points, np.array([link.mesh.area for link in links]))
    pts, traj, cols, centers, quats, trans = [], [], [], [], [], []
    for link, n in zip(links, counts, strict=True):
        local = sample_surface(link.mesh, int(n), rng)
        p = poses[link.name]  # (T, 4, 4)
        assert p.ndim == 3 and p.shape[1:] == (4, 4), p.shape
        world_t = np.einsum("tij,nj->tni", p[:, :3, :3], local) + p[:, None, :3, 3]  # (T, n, 3)
        pts.append(world_t[0])
        traj.append(world_t)
        cols.append(np.tile(np.asarray(link.rgba[:3]), (int(n), 1)))
        c = world_t[0][farthest_points(world_t[0], controls_per_link, rng)]  # (k, 3)
        rel = p @ np.linalg.inv(p[0])  # (T, 4, 4): frame 0 -> frame t
        centers.append(c)
        q = matrix_to_quat(rel[:, :3, :3])  # (T, 4)
        quats.append(np.repeat(q[:, None], len(c), 1))
        # x' = R (x - c) + c + T  =>  T = R c + t - c
        trans.append(np.einsum("tij,kj->tki", rel[:, :3, :3], c) + rel[:, None, :3, 3] - c[None])
    traj_all = np.concatenate(traj, 1)
    motion = ObjectMotion(
        points=traj_all[0],
        trajectories=traj_all,
        centers=np.concatenate(centers),
        quats=np.concatenate(quats, 1),
        translations=np.concatenate(trans, 1),
        colors=np.concatenate(cols),
        static=False,
        source="mesh",
    )
    # Narrow skinning radii keep a point's blend on its own link's control points.
    return dataclasses.replace(motion, scales=skin_scale * motion.control_scales())


def table_motion(
    region: np.ndarray, num_frames: int, num_points: int, rng: np.random.Generator
) -> ObjectMotion:
    """The static table: points uniform on its top (z = 0) inside ``region`` (2, 2) xy min/max."""
    region = np.asarray(region, dtype=np.float64)
    xy = region[0] + rng.random((num_points, 2)) * (region[1] - region[0])
    pts = np.concatenate([xy, np.zeros((num_points, 1))], 1)
    poses = np.repeat(np.eye(4)[None], num_frames, 0)
    return ObjectMotion.rigid(
        pts, poses, colors=np.tile([0.72, 0.58, 0.42], (num_points, 1)), static=True, source="mesh"
    )


def table_region(points: list[np.ndarray], margin: float = 0.15) -> np.ndarray:
    """(2, 2) xy bounds of the given point sets, grown by ``margin`` metres."""
    allp = np.concatenate([p.reshape(-1, 3) for p in points])
    return np.stack([allp[:, :2].min(0) - margin, allp[:, :2].max(0) + margin])


def side_camera(
    target: np.ndarray, width: int, height: int, offset=(-0.2, -0.55, 0.35), fov_y_deg: float = 50.0
) -> Camera:
    """A fixed camera to the robot's left, above the table, looking at ``target``."""
    target = np.asarray(target, dtype=np.float64)
    return Camera.look_at(
        target + np.asarray(offset, dtype=np.float64), target, width, height, fov_y_deg
    )


# --------------------------------------------------------------------------- playback


def set_joint_friction(world: World, body: int, friction: dict[int, float]) -> None:
    """Model hinge friction (joint index -> N m) as a zero-velocity motor of that strength."""
    for j, f in friction.items():
        pb.setJointMotorControl2(
            body, j, pb.VELOCITY_CONTROL, targetVelocity=0.0, force=f, physicsClientId=world.client
        )


def drive_loop(
    world: World,
    num_frames: int,
    drive: Callable[[float, float], None],
    on_step: Callable[[float], None] | None = None,
) -> int:
    """Run the oracle's duration at the sim rate, calling ``drive(s, ds_dt)`` before each step.

    ``on_step(sim_time)`` is called before the first step and after every step (a recorder
    hook). Returns the number of steps taken (bounded by the duration).
    """
    duration = (num_frames - 1) / ORACLE_FPS
    steps = round(duration / world.time_step)
    if on_step is not None:
        on_step(0.0)
    for k in range(1, steps + 1):
        drive(k / steps, 1.0 / duration)
        world.step(1)
        if on_step is not None:
            on_step(k * world.time_step)
    return steps


def record_oracle(
    task: Task, num_frames: int, width: int, height: int, camera: Camera | None = None
) -> tuple[np.ndarray, Camera]:
    """Play the oracle and render frame i at time i / fps from ``camera`` (default: the task's
    reference camera); return (T, H, W, 3) frames and the camera."""
    from sim.render import render

    camera = camera or task.reference_camera(width, height)
    frames: list[np.ndarray] = []

    def on_step(t: float) -> None:
        if len(frames) < num_frames and t + 1e-9 >= len(frames) / ORACLE_FPS:
            frames.append(render(task.world, camera, segmentation=False).rgb)

    task.play_oracle(num_frames, on_step=on_step)
    assert len(frames) == num_frames, (len(frames), num_frames)
    return np.stack(frames), camera


def load_task_robot(world: World) -> Panda:
    """The Panda at `ROBOT_BASE` in its home configuration, fingers open."""
    return load_panda(world, ROBOT_BASE)


def write_reference(
    task: Task,
    video_path: str | os.PathLike[str],
    camera_path: str | os.PathLike[str],
    num_frames: int = 41,
    width: int = 320,
    height: int = 240,
) -> tuple[np.ndarray, Camera]:
    """Render the task's reference video and write it as an MP4 plus its camera JSON
    (DESIGN.md §3), both atomically; the input of the ``video`` flow source."""
    from chord_robot.camera import save_cameras
    from sim.render import write_mp4

    frames, camera = task.render_reference_video(num_frames, width, height)
    write_mp4(video_path, frames, fps=ORACLE_FPS)
    save_cameras(camera_path, camera)
    return frames, camera


# --------------------------------------------------------------------------- flow inputs


def links_world_surface(world: World, links: list[Link]) -> tuple[trimesh.Trimesh, np.ndarray]:
    """The links' visual surfaces at their current world poses and (V, 3) RGB vertex colours
    in [0, 1]: a textured link's patches, else its plain colour. Links stay separate
    connected components (the parts flowgen skins apart)."""
    meshes, colours = [], []
    for link in links:
        m = (link.texture.mesh if link.texture is not None else link.mesh).copy()
        m.apply_transform(link_matrix(world, link.body, link.index))
        meshes.append(m)
        colours.append(
            link.texture.vertex_colors
            if link.texture is not None
            else np.tile(np.asarray(link.rgba[:3]), (len(m.vertices), 1))
        )
    return trimesh.util.concatenate(meshes), np.concatenate(colours)


@dataclass(frozen=True)
class FlowInputFiles:
    """What the ``video`` flow source fits, written by :func:`write_flow_inputs`.

    Attributes:
        scan: labelled, coloured mesh PLY of the scene at reset (``scan.labels.json`` beside it).
        video: MP4 of the oracle motion from the reference camera.
        camera: that camera's JSON.
        background: PNG of the same view with only the table.
    """

    scan: Path
    video: Path
    camera: Path
    background: Path


def write_scan(task: Task, path: str | os.PathLike[str]) -> Path:
    """The task's scene as a scanned-style, labelled mesh PLY with vertex colours: the table
    (label 0) and every task object at its current pose, in the colours the sim renders; the
    names go to ``SCAN.labels.json`` (DESIGN.md §3). Both files are written atomically."""
    import json

    from chord_robot.atomic import atomic_path
    from chord_robot.ply import write_ply
    from sim.world import table_mesh

    table = table_mesh(task.world.config.table)
    objects = {"table": (table, np.tile(task.world.config.table.color[:3], (len(table.vertices), 1)))}
    objects |= task.scan_surfaces()
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
    height: int = 240,
) -> FlowInputFiles:
    """Write the inputs of the ``video`` flow source for a reset task into ``out_dir``
    (created): its scan, a video of the oracle motion from :func:`flow_camera` with that
    camera's JSON, and the background image. The task is back at its reset state afterwards."""
    import imageio.v3 as iio

    from chord_robot.atomic import atomic_path
    from chord_robot.camera import save_cameras
    from sim.render import write_mp4

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = FlowInputFiles(out / "scan.ply", out / "video.mp4", out / "camera.json", out / "background.png")
    write_scan(task, files.scan)
    camera = flow_camera(task, width, height)
    frames, _ = record_oracle(task, num_frames, width, height, camera)
    task.reset(task.seed)  # type: ignore[attr-defined]
    write_mp4(files.video, frames, fps=ORACLE_FPS)
    save_cameras(files.camera, camera)
    with atomic_path(files.background) as tmp:
        iio.imwrite(tmp, render_background(task, camera), extension=".png")
    return files
