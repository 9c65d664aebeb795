"""Images of a `World` from a `chord_robot.camera.Camera` (OpenCV convention) with PyBullet's
TinyRenderer (CPU, headless), frame recording at a fixed simulated rate, and MP4 writing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet as pb

from chord_robot.atomic import atomic_path
from chord_robot.camera import Camera
from chord_robot.errors import InputError
from sim.world import World


@dataclass(frozen=True)
class Frame:
    """One rendered image.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 camera-frame z in metres (far plane where nothing was hit).
        segmentation: (H, W) int32 body unique id per pixel, -1 for background.
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray


def view_matrix(camera: Camera) -> np.ndarray:
    """(4, 4) OpenGL view matrix (x right, y up, looking down -z) of an OpenCV camera."""
    return np.diag([1.0, -1.0, -1.0, 1.0]) @ camera.camera_from_world


def projection_matrix(camera: Camera, near: float, far: float) -> np.ndarray:
    """(4, 4) OpenGL projection of a pinhole camera, such that pixel (u, v) of
    `Camera.project` (u right, v down, pixel centres at integer + 0.5) lands at NDC
    (2u/W - 1, 1 - 2v/H)."""
    w, h = camera.width, camera.height
    return np.array(
        [
            [2 * camera.fx / w, 0.0, 1 - 2 * camera.cx / w, 0.0],
            [0.0, 2 * camera.fy / h, 2 * camera.cy / h - 1, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )


def render(
    world: World,
    camera: Camera,
    near: float = 0.02,
    far: float = 10.0,
    segmentation: bool = True,
    light_direction: tuple[float, float, float] = (0.4, -0.6, 1.0),
) -> Frame:
    """Render the world from an OpenCV `Camera` with PyBullet's TinyRenderer (CPU)."""
    view = view_matrix(camera).T.reshape(-1).tolist()  # OpenGL wants column-major
    # TinyRenderer samples pixel (i, r) at the continuous point (u, v) = (i, r + 1) rather than
    # at the pixel centre (i + 0.5, r + 0.5): shift the principal point by half a pixel so the
    # image agrees with Camera.project (tests/sim/test_world.py measures it).
    shifted = dataclasses.replace(camera, cx=camera.cx - 0.5, cy=camera.cy + 0.5)
    proj = projection_matrix(shifted, near, far).T.reshape(-1).tolist()
    flags = 0 if segmentation else pb.ER_NO_SEGMENTATION_MASK
    _, _, rgba, zbuf, seg = pb.getCameraImage(
        camera.width,
        camera.height,
        view,
        proj,
        lightDirection=list(light_direction),
        shadow=0,
        renderer=pb.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=world.client,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[..., :3].copy()
    zbuf = np.asarray(zbuf, dtype=np.float64).reshape(camera.height, camera.width)
    depth = (far * near / (far - (far - near) * zbuf)).astype(np.float32)
    if segmentation:
        seg_arr = np.asarray(seg, dtype=np.int64).reshape(camera.height, camera.width)
        # without the link flag PyBullet stores the body id; -1 is background
        seg_out = seg_arr.astype(np.int32)
    else:
        seg_out = np.full((camera.height, camera.width), -1, np.int32)
    return Frame(rgb, depth, seg_out)


@dataclass
class Recorder:
    """Collects rendered frames at a fixed rate of simulated time (explicit running state).

    Attributes:
        camera: the camera frames are rendered from.
        fps: frames per simulated second.
        frames: the (H, W, 3) uint8 frames so far.
    """

    camera: Camera
    fps: float = 10.0
    frames: list[np.ndarray] = field(default_factory=list)
    _next_time: float = 0.0

    def maybe_capture(self, world: World, sim_time: float) -> None:
        """Render a frame if ``sim_time`` has reached the next frame time."""
        if sim_time + 1e-9 >= self._next_time:
            self.capture(world)
            self._next_time += 1.0 / self.fps

    def capture(self, world: World) -> None:
        """Render a frame now."""
        self.frames.append(render(world, self.camera, segmentation=False).rgb)

    def video(self) -> np.ndarray:
        """(T, H, W, 3) uint8."""
        if not self.frames:
            return np.zeros((0, self.camera.height, self.camera.width, 3), np.uint8)
        return np.stack(self.frames)


def mp4_writer(path: str | Path, fps: float):
    """An imageio writer of H.264 MP4 (yuv420p, even sizes) at ``path``: frames are appended one
    by one (`append_data`), and the caller closes it. `write_mp4` writes a whole clip with it."""
    import imageio.v2 as imageio

    return imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1,
                              ffmpeg_log_level="error", pixelformat="yuv420p")


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 10.0) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 MP4, atomically. Odd sizes are padded."""

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0 or frames.dtype != np.uint8:
        raise InputError(
            f"a video needs (T, H, W, 3) uint8 frames with T > 0, got {frames.shape} {frames.dtype}"
        )
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(path) as tmp:
        writer = mp4_writer(tmp, fps)
        try:
            for f in frames:
                writer.append_data(f)
        finally:
            writer.close()
