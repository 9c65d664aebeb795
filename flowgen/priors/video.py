"""The video prior: guidance from one or more given videos, each with its fixed camera.

For a batch of frames of one video, the loss compares the renders with the frames
(`flowgen.losses.photometric`: L1 plus the brightness-tolerant D-SSIM) and, where a
background image is known, the rendered opacity with the foreground mask (pixels that differ
from the background). With a background the moving objects are composited over it, so the
static scene need not be rendered; without one every object is rendered and the loss covers
the whole image.

Lower-resolution renders (the coarse-to-fine pyramid) compare with area-downsampled frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor

from chord_robot.camera import Camera
from flowgen.losses import photometric, silhouette
from flowgen.priors.video_io import GuideVideo, scale_camera

__all__ = ["VideoPrior", "View", "still_pixels"]


@dataclass(frozen=True)
class View:
    """What to render for one loss evaluation.

    Attributes:
        source: index of the guide video.
        camera: the camera at the render resolution.
        frames: (T,) int64 frame indices.
        background: (H, W, 3) image behind the objects, or None (render static objects too).
    """

    source: int
    camera: Camera
    frames: Tensor
    background: Tensor | None


@dataclass(frozen=True)
class _Targets:
    frames: Tensor  # (T, H, W, 3)
    mask: Tensor | None  # (T, H, W)
    background: Tensor | None  # (H, W, 3)
    camera: Camera
    still: Tensor  # (T, H, W)


def still_pixels(frames: Tensor, mask: Tensor | None, threshold: float) -> Tensor:
    """(T, H, W) 1 where frame t shows what frame 0 shows (every channel within
    ``threshold``) on the objects (the foreground in both frames, when a mask is known).

    Where the video does not change, the surface seen there does not move: the evidence the
    still-pixel loss uses to hold static parts in place in 3D, depth included, which one
    camera's photometric loss alone leaves free.
    """
    still = ((frames - frames[:1]).abs().amax(-1) < threshold).float()
    if mask is not None:
        still = still * mask * mask[:1]
    return still


@dataclass(frozen=True)
class VideoPrior:
    """Photometric guidance from videos.

    Attributes:
        guides: the videos, already resampled to the run's frames and resolution.
        ssim_weight: share of D-SSIM in the photometric loss.
        silhouette_weight: weight of the opacity-vs-mask term (videos with a background).
        still_threshold: largest colour change (0..1) of a pixel that counts as unchanged
            since frame 0 (:func:`still_pixels`).
    """

    guides: tuple[GuideVideo, ...]
    ssim_weight: float = 0.2
    silhouette_weight: float = 1.0
    still_threshold: float = 0.03
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = {g.frames.shape[0] for g in self.guides}
        if len(counts) != 1:
            raise ValueError(f"all guide videos must have the same frame count, got {sorted(counts)}")

    @property
    def num_frames(self) -> int:
        """T, frames of every guide."""
        return int(self.guides[0].frames.shape[0])

    @property
    def num_sources(self) -> int:
        """Number of guide videos (cameras)."""
        return len(self.guides)

    def _targets(self, source: int, scale: float) -> _Targets:
        key = (source, round(scale, 4))
        if key not in self._cache:
            g = self.guides[source]
            if scale == 1.0:
                still = still_pixels(g.frames, g.mask, self.still_threshold)
                self._cache[key] = _Targets(g.frames, g.mask, g.background, g.camera, still)
            else:
                w = max(8, round(g.camera.width * scale))
                h = max(8, round(g.camera.height * scale))

                def down(x: Tensor) -> Tensor:  # (..., H, W, C) -> area-resized
                    y = F.interpolate(x.permute(0, 3, 1, 2), size=(h, w), mode="area")
                    return y.permute(0, 2, 3, 1).contiguous()

                frames = down(g.frames)
                mask = None if g.mask is None else down(g.mask[..., None])[..., 0]
                bg = None if g.background is None else down(g.background[None])[0]
                still = (down(self._targets(source, 1.0).still[..., None])[..., 0] > 0.999).float()
                self._cache[key] = _Targets(frames, mask, bg, scale_camera(g.camera, w, h), still)
        return self._cache[key]

    def views(self, frames: list[Tensor], scale: float, first: int = 0) -> list[View]:
        """One view per entry of ``frames``, cycling through the videos from video ``first``
        (the loop passes a running count, so one view per iteration still visits them all)."""
        out = []
        for i, fr in enumerate(frames):
            source = (first + i) % len(self.guides)
            t = self._targets(source, scale)
            out.append(View(source, t.camera, fr, t.background))
        return out

    def still(self, view: View, scale: float) -> Tensor:
        """(T, H, W) pixels of the view's frames that show what frame 0 showed."""
        return self._targets(view.source, scale).still[view.frames]

    def loss(self, view: View, rgb: Tensor, alpha: Tensor, scale: float) -> dict[str, Tensor]:
        """Loss terms of rendered ``rgb`` (T, H, W, 3) and ``alpha`` (T, H, W) for ``view``.

        Returns ``photometric``, ``silhouette`` (when a background is known) and
        ``per_frame`` (T,) detached mean absolute errors (for frame sampling).
        """
        t = self._targets(view.source, scale)
        target = t.frames[view.frames]
        assert rgb.shape == target.shape, (rgb.shape, target.shape)
        out = {"photometric": photometric(rgb, target, self.ssim_weight)}
        if t.mask is not None and self.silhouette_weight > 0:
            out["silhouette"] = self.silhouette_weight * silhouette(alpha, t.mask[view.frames])
        out["per_frame"] = (rgb - target).detach().abs().mean(dim=(1, 2, 3))
        return out
