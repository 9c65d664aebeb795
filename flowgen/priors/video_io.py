"""Reading guidance videos and fitting them to the run: size, camera, frame count."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from chord_robot.camera import Camera, load_cameras
from chord_robot.errors import ConfigError, InputError

_ASPECT_TOL = 0.01


@dataclass(frozen=True)
class GuideVideo:
    """A video with its camera, resampled to the run's frames and resolution.

    Attributes:
        frames: (T, H, W, 3) float32 RGB in [0, 1].
        camera: the camera, intrinsics scaled to (W, H).
        mask: (T, H, W) float32 foreground in [0, 1] where a background image was given, else None.
        background: (H, W, 3) float32 RGB background image (the view without the movable
            objects) at the same size, or None.
    """

    frames: Tensor
    camera: Camera
    mask: Tensor | None = None
    background: Tensor | None = None

    def to(self, device: torch.device | str) -> GuideVideo:
        """The same video with its images on ``device`` (the run's)."""
        return GuideVideo(self.frames.to(device), self.camera, None if self.mask is None else self.mask.to(device),
                          None if self.background is None else self.background.to(device))


def read_video(path: str | os.PathLike[str]) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video file (any format imageio-ffmpeg reads) or a .npy array."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"video not found: {path}")
    if path.suffix == ".npy":
        frames = np.load(path)
    else:
        import imageio.v3 as iio

        try:
            frames = iio.imread(path, index=None)
        except Exception as e:  # imageio raises many types for unreadable files
            raise InputError(f"cannot read video {path}: {e}") from None
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise InputError(f"video {path} must be frames of RGB images, got array shape {frames.shape}")
    return frames[..., :3]


def fit_video(frames: np.ndarray, camera: Camera, num_frames: int, max_side: int,
              background: np.ndarray | None = None, name: str = "video") -> GuideVideo:
    """Resample a video to ``num_frames`` and a resolution whose long side is ``max_side``.

    The video and its camera must have the same aspect ratio (the camera's intrinsics are
    scaled to the video's size); at least 2 frames are needed.
    """
    f, h, w, _ = frames.shape
    if f < 2:
        raise InputError(f"{name} has {f} frame; a motion needs at least 2")
    if f < num_frames:
        shown = name.replace("{", "{{").replace("}", "}}")
        raise ConfigError(
            "num_frames",
            f"{shown} has {f} frames but the run needs {num_frames}: use {{field}} {f} (or fewer) "
            "or a longer video",
        )
    if abs((w / h) / (camera.width / camera.height) - 1) > _ASPECT_TOL:
        raise InputError(
            f"{name} is {w}x{h} but its camera is {camera.width}x{camera.height}: the sizes do not fit "
            "(same aspect ratio needed); pass the camera the video was rendered with"
        )
    scale = max_side / max(w, h)
    out_w, out_h = max(8, round(w * scale)), max(8, round(h * scale))
    cam = scale_camera(camera, out_w, out_h)
    x = torch.as_tensor(np.asarray(frames), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0  # (T, 3, H, W)
    x = resample_time(x, num_frames)
    x = torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="area")
    mask = bg = None
    if background is not None:
        if background.shape[:2] != (h, w):
            raise InputError(f"background image is {background.shape[1]}x{background.shape[0]}, {name} is {w}x{h}")
        bg = torch.as_tensor(background[..., :3], dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
        bg = torch.nn.functional.interpolate(bg, size=(out_h, out_w), mode="area")
        diff = (x - bg).abs().amax(1)  # (T, H, W)
        mask = (diff > 0.06).float()
        bg = bg[0].permute(1, 2, 0).contiguous()
    return GuideVideo(x.permute(0, 2, 3, 1).contiguous(), cam, mask, bg)


def resample_time(x: Tensor, num_frames: int) -> Tensor:
    """(T, ...) -> (num_frames, ...) by linear interpolation in time (first and last kept), in
    ``x``'s floating dtype."""
    f = x.shape[0]
    pos = torch.linspace(0, f - 1, num_frames, dtype=torch.float64)
    lo = pos.floor().long().clamp(max=f - 1)
    hi = (lo + 1).clamp(max=f - 1)
    a = (pos - lo.double()).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return (1 - a) * x[lo] + a * x[hi]


def scale_camera(camera: Camera, width: int, height: int) -> Camera:
    """The same camera with intrinsics scaled to a ``width`` x ``height`` image."""
    sx, sy = width / camera.width, height / camera.height
    return Camera(width, height, camera.fx * sx, camera.fy * sy, camera.cx * sx, camera.cy * sy, camera.world_from_camera)


def load_guides(videos: list[Path], cameras: list[Path], num_frames: int, max_side: int,
                backgrounds: list[Path] | None = None,
                movable: list[tuple[np.ndarray, np.ndarray | None]] | None = None,
                static: list[tuple[np.ndarray, np.ndarray | None]] | None = None) -> list[GuideVideo]:
    """Load each video with its camera (one camera JSON per video) and its background image:
    the given one, else, with ``movable`` (the scan's moving objects at the first frame: points
    and faces or None), the video's first frame around them, filled behind them from the
    ``static`` objects' surfaces (`flowgen.priors.first_frame`), else none."""
    if not videos:
        raise InputError("the video prior needs at least one video with its camera")
    if len(videos) != len(cameras):
        raise InputError(f"{len(videos)} video(s) but {len(cameras)} camera(s): give one camera JSON per video")
    if backgrounds and len(backgrounds) != len(videos):
        raise InputError(f"{len(videos)} video(s) but {len(backgrounds)} background(s): give one image per video")
    out = []
    for i, (v, c) in enumerate(zip(videos, cameras)):
        cams = load_cameras(c)
        frames = read_video(v)
        if len(cams) != 1:
            raise InputError(f"{c} holds {len(cams)} cameras; the video prior needs one fixed camera per video")
        bg = None
        if backgrounds:
            import imageio.v3 as iio

            try:
                bg = np.asarray(iio.imread(backgrounds[i]))
            except Exception as e:  # imageio raises many types for unreadable files
                raise InputError(f"cannot read background image {backgrounds[i]}: {e}") from None
            if bg.ndim == 2:
                bg = np.repeat(bg[..., None], 3, axis=-1)
        elif movable:
            from flowgen.priors.first_frame import background_from_first_frame, silhouette, surfaces

            h, w = frames.shape[1:3]
            cam = scale_camera(cams[0], w, h)
            labels = surfaces(static, cam) if static else None
            try:
                grow = max(2, round(max(w, h) / max_side))  # a pixel of the fit's size at least
                bg = background_from_first_frame(frames[0], silhouette(movable, cam), labels, grow=grow)
            except ValueError as e:
                raise InputError(f"{v}: {e}; pass --background") from None
        out.append(fit_video(frames, cams[0], num_frames, max_side, bg, name=str(v)))
    return out
