"""Videos of a Plan: the robot driven along the plan's joints, the flow's points moving with it.

Layer 2: PyBullet (through `sim`) is imported inside the functions that need it.

See `chord_robot.app.views.playback` for the time axis and the flow alignment.

*Drawing points.* PyBullet's TinyRenderer has no point primitive, and adding a visual body
per point per frame is slow. So the robot is rendered alone and the points are drawn over
the image afterwards (`overlay_points`): projected with the same `Camera`, splatted as small
shaded discs whose pixel radius follows their depth, and depth-tested against TinyRenderer's
depth buffer, so the arm hides the points behind it and the points in front of it hide the arm.
The renderer and `Camera.project` agree to the pixel (sim.render shifts TinyRenderer's
sampling to pixel centres), so the overlay registers with the robot. Points are coloured by
object (`object_colors`, static objects grey), as in the viewer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np

from chord_robot.app.views.playback import (
    flow_phase,
    motion_at,
    object_colors,
    plan_states,
    subsample,
    video_times,
)
from chord_robot.camera import Camera, frame_points
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow
from chord_robot.plans import Plan


@dataclass(frozen=True)
class PlanRenderConfig:
    """How a plan video is drawn."""

    point_radius: float = 0.004
    """Radius of a drawn flow point, metres (its pixel radius follows its depth)."""
    min_point_radius_px: int = 1
    """Smallest pixel radius of a drawn point (far away): 1 draws a 5-pixel cross, so a dense
    surface of points reads as a surface rather than a moire of single pixels."""
    max_point_radius_px: int = 4
    """Largest pixel radius of a drawn point (near the camera)."""
    max_points_per_object: int = 20000
    """Objects with more points are drawn from a fixed random subset of this size."""
    margin: float = 1.0
    """Automatic camera: the bounding sphere of the robot's reach and the points, times this,
    fills the view (the sphere is already loose around a flat scene)."""
    depth_tolerance: float = 0.002
    """A point is hidden by the robot when it lies this far (metres) behind the depth buffer."""
    seed: int = 0
    """Seed of the point subsets."""


# --------------------------------------------------------------------------- stores


def _disc(radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer pixel offsets (D,), (D,) within ``radius`` and their distance (D,)."""
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    d = np.hypot(dx, dy).ravel()
    keep = d <= radius + 0.5
    return dx.ravel()[keep], dy.ravel()[keep], d[keep]


def overlay_points(
    rgb: np.ndarray,
    depth: np.ndarray,
    camera: Camera,
    points: np.ndarray,
    colors: np.ndarray,
    world_radius: float,
    max_radius_px: int = 4,
    depth_tolerance: float = 0.002,
    min_radius_px: int = 0,
) -> np.ndarray:
    """Draw world points over a rendered image, depth-tested against its depth buffer.

    Each point becomes a disc of pixel radius ``clip(round(fx * world_radius / z), min_radius_px,
    max_radius_px)`` (0 is a single pixel), shaded darker towards its rim; where discs overlap
    the nearest wins; a disc pixel is drawn only where it is nearer than ``depth`` +
    ``depth_tolerance``.

    Args:
        rgb: (H, W, 3) uint8 image.
        depth: (H, W) camera-frame z of the image, metres.
        camera: the camera that rendered the image.
        points: (N, 3) world points.
        colors: (N, 3) RGB in [0, 1].
    Returns:
        (H, W, 3) uint8, a new image.
    """
    h, w = depth.shape
    assert rgb.shape == (h, w, 3) and (camera.height, camera.width) == (h, w), (
        rgb.shape,
        depth.shape,
    )
    assert points.ndim == 2 and points.shape[1] == 3 and colors.shape == points.shape, (
        points.shape,
        colors.shape,
    )
    out = rgb.copy()
    uv, z = camera.project(points)
    front = z > 1e-6
    uv, z, colors = uv[front], z[front], np.asarray(colors, dtype=np.float64)[front]
    if len(z) == 0:
        return out
    radius = np.clip(np.round(camera.fx * world_radius / z), min_radius_px, max_radius_px)
    dx, dy, dist = _disc(max_radius_px)
    # pixel (column c, row r) covers [c, c + 1) x [r, r + 1) in Camera.project's coordinates
    col = np.floor(uv[:, 0])[:, None].astype(np.int64) + dx[None]  # (N, D)
    row = np.floor(uv[:, 1])[:, None].astype(np.int64) + dy[None]
    inside = dist[None] <= radius[:, None] + 0.5
    inside &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
    n_idx, d_idx = np.nonzero(inside)
    if len(n_idx) == 0:
        return out
    pix = row[n_idx, d_idx] * w + col[n_idx, d_idx]
    zz = z[n_idx]
    visible = zz <= depth.reshape(-1)[pix] + depth_tolerance
    pix, zz, n_idx, d_idx = pix[visible], zz[visible], n_idx[visible], d_idx[visible]
    order = np.lexsort((zz, pix))  # by pixel, nearest first
    pix, n_idx, d_idx = pix[order], n_idx[order], d_idx[order]
    first = np.concatenate([[True], pix[1:] != pix[:-1]])
    pix, n_idx, d_idx = pix[first], n_idx[first], d_idx[first]
    rim = dist[d_idx] / np.maximum(radius[n_idx] + 0.5, 1.0)
    shade = 1.0 - 0.35 * rim**2
    flat = out.reshape(-1, 3)
    flat[pix] = np.clip(colors[n_idx] * shade[:, None] * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- the robot


@dataclass(frozen=True)
class _Robot:
    """A robot loaded kinematically into a PyBullet world."""

    body: int
    arm: tuple[int, ...]  # PyBullet joint index of each plan joint
    fingers: tuple[int, ...]  # gripper joints (names containing "finger")
    finger_upper: tuple[float, ...]  # their upper limits: the opening at gripper = 1


def _load_robot(world, plan: Plan) -> _Robot:
    import pybullet as pb

    from chord_robot.robots import resolve_urdf
    from sim.world import matrix_to_xyzw, pose_to_matrix

    c = world.client
    path = resolve_urdf(plan.robot_urdf)
    if not path.is_file():
        raise InputError(
            f"the plan's robot URDF {plan.robot_urdf!r} was not found (looked at {path})"
        )
    pos, orn = matrix_to_xyzw(pose_to_matrix(plan.robot_base))
    body = pb.loadURDF(str(path), pos, orn, useFixedBase=True, physicsClientId=c)
    infos = [
        pb.getJointInfo(body, j, physicsClientId=c)
        for j in range(pb.getNumJoints(body, physicsClientId=c))
    ]
    movable = [i for i in infos if i[2] in (pb.JOINT_REVOLUTE, pb.JOINT_PRISMATIC)]
    by_name = {i[1].decode(): i[0] for i in movable}
    if plan.joint_names:
        missing = [n for n in plan.joint_names if n not in by_name]
        if missing:
            raise InputError(f"the plan's joints {missing} are not in {plan.robot_urdf}")
        arm = tuple(by_name[n] for n in plan.joint_names)
    else:
        arm = tuple(i[0] for i in movable[: plan.dof])
    if len(arm) != plan.dof:
        raise InputError(
            f"{plan.robot_urdf} has {len(arm)} movable joints, the plan drives {plan.dof}"
        )
    fingers = [i for i in movable if "finger" in i[1].decode() and i[0] not in arm]
    return _Robot(body, arm, tuple(i[0] for i in fingers), tuple(float(i[9]) for i in fingers))


def _pose_robot(world, robot: _Robot, joints: np.ndarray, gripper: float) -> None:
    import pybullet as pb

    for j, q in zip(robot.arm, joints, strict=True):
        pb.resetJointState(robot.body, j, float(q), 0.0, physicsClientId=world.client)
    for j, upper in zip(robot.fingers, robot.finger_upper, strict=True):
        pb.resetJointState(robot.body, j, float(gripper) * upper, 0.0, physicsClientId=world.client)


def _link_positions(world, robot: _Robot) -> np.ndarray:
    """(L + 1, 3) world positions of the base and every link frame."""
    import pybullet as pb

    c = world.client
    pts = [pb.getBasePositionAndOrientation(robot.body, physicsClientId=c)[0]]
    for j in range(pb.getNumJoints(robot.body, physicsClientId=c)):
        pts.append(
            pb.getLinkState(robot.body, j, computeForwardKinematics=True, physicsClientId=c)[4]
        )
    return np.asarray(pts)


# --------------------------------------------------------------------------- rendering


class PlanRenderer:
    """A PyBullet world holding a plan's robot (and the flow's points), rendered frame by frame.

    Running state is explicit: the world is created in the constructor and released by
    `close` (or the ``with`` block); frames are rendered one at a time, so a long video is
    streamed to its file rather than held in memory.

    Attributes:
        camera: the view (given, or framing the robot's reach over the plan and the points).
        times: (F,) plan time of each frame, `video_times`.
    """

    def __init__(
        self,
        plan: Plan,
        flow: ObjectFlow | None = None,
        camera: Camera | None = None,
        width: int = 480,
        height: int = 360,
        fps: float = 15.0,
        config: PlanRenderConfig | None = None,
    ) -> None:
        """Args:
        plan: the plan; its robot is loaded from ``plan.robot_urdf`` at ``plan.robot_base``.
        flow: the flow the plan was made for, or None to draw the robot on a floor (z = 0).
        camera: the view; None frames the robot's reach over the plan and the flow's points.
        width, height: image size of the automatic camera (ignored with ``camera``).
        fps: frames per second of plan time (`video_times`).
        """
        from sim import world as simworld

        self.config = config or PlanRenderConfig()
        self.times = video_times(float(plan.times[-1]), fps)
        self._joints, self._gripper = plan_states(plan, self.times)
        self._world = simworld.create(direct=True, table=False)
        try:
            if flow is None:  # a floor at the table-top height (z = 0) for context
                import pybullet as pb

                pb.loadURDF("plane.urdf", physicsClientId=self._world.client)
            self._robot = _load_robot(self._world, plan)
            self._clouds: list[tuple[np.ndarray, np.ndarray]] = []  # (T, N, 3), (N, 3) colours
            self._phases = np.zeros(len(self.times))
            if flow is not None:
                rng = np.random.default_rng(self.config.seed)
                colours = object_colors(flow)
                for name in sorted(flow.objects):
                    m = flow.objects[name]
                    idx = subsample(m, self.config.max_points_per_object, rng)
                    rgb = np.broadcast_to(colours[name], (len(idx), 3))
                    self._clouds.append((m.trajectories[:, idx], rgb))
                self._phases = flow_phase(plan, flow.num_frames, self.times)
            self.camera = camera if camera is not None else self._auto_camera(width, height)
        except BaseException:
            self.close()
            raise

    @property
    def num_frames(self) -> int:
        return len(self.times)

    def _auto_camera(self, width: int, height: int) -> Camera:
        reach = []
        for f in np.linspace(0, self.num_frames - 1, min(self.num_frames, 12)).round().astype(int):
            _pose_robot(self._world, self._robot, self._joints[f], self._gripper[f])
            reach.append(_link_positions(self._world, self._robot))
        seen = [np.concatenate(reach)] + [t[[0, -1]].reshape(-1, 3) for t, _ in self._clouds]
        return frame_points(np.concatenate(seen), width, height, margin=self.config.margin)

    def frame(self, f: int) -> np.ndarray:
        """(H, W, 3) uint8 image of frame ``f``."""
        from sim.render import render

        cfg = self.config
        _pose_robot(self._world, self._robot, self._joints[f], self._gripper[f])
        image = render(self._world, self.camera, segmentation=False)
        if not self._clouds:
            return image.rgb
        pts = np.concatenate([motion_at(traj, self._phases[f]) for traj, _ in self._clouds])
        cols = np.concatenate([c for _, c in self._clouds])
        return overlay_points(
            image.rgb,
            image.depth,
            self.camera,
            pts,
            cols,
            cfg.point_radius,
            cfg.max_point_radius_px,
            cfg.depth_tolerance,
            cfg.min_point_radius_px,
        )

    def close(self) -> None:
        """Release the PyBullet world (idempotent)."""
        self._world.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan_frames(
    plan: Plan,
    flow: ObjectFlow | None = None,
    camera: Camera | None = None,
    width: int = 480,
    height: int = 360,
    fps: float = 15.0,
    config: PlanRenderConfig | None = None,
) -> tuple[np.ndarray, Camera]:
    """All frames of a plan video in memory, (F, H, W, 3) uint8, and the camera used (see
    `PlanRenderer` for the arguments)."""
    with PlanRenderer(plan, flow, camera, width, height, fps, config) as r:
        return np.stack([r.frame(f) for f in range(r.num_frames)]), r.camera


def render_plan(
    plan: Plan,
    flow: ObjectFlow | None,
    out_mp4: str | os.PathLike[str],
    camera: Camera | None = None,
    width: int = 480,
    height: int = 360,
    fps: float = 15.0,
    config: PlanRenderConfig | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Write an H.264 MP4 of a plan executed kinematically, atomically, frame by frame.

    The video has ``len(video_times(plan duration, fps))`` frames of ``width`` x ``height``
    (the camera's size when ``camera`` is given). H.264 in yuv420p needs even sizes: an odd
    size is refused rather than padded, so the file is the size asked for.

    Args:
        on_frame: called with the frame index after each frame is written (progress).
    Returns:
        the number of frames written.
    """
    from chord_robot.atomic import atomic_path
    from sim.render import mp4_writer

    w, h = (camera.width, camera.height) if camera is not None else (width, height)
    if w % 2 or h % 2 or w < 16 or h < 16:
        raise InputError(
            f"the video size must be even and at least 16x16 (H.264, yuv420p), got {w}x{h}"
        )
    if flow is not None and plan.object not in flow.objects:
        raise InputError(
            f"the plan manipulates {plan.object!r}, which the flow does not hold "
            f"({', '.join(sorted(flow.objects))}); was the plan made from another flow?"
        )
    with (
        PlanRenderer(plan, flow, camera, width, height, fps, config) as r,
        atomic_path(out_mp4) as tmp,
    ):
        writer = mp4_writer(tmp, fps)  # streamed: one frame rendered at a time
        try:
            for f in range(r.num_frames):
                writer.append_data(r.frame(f))
                if on_frame is not None:
                    on_frame(f)
        finally:
            writer.close()
        return r.num_frames
