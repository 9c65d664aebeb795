"""World-space Gaussian splats of one frame and their rendering from a `Camera` (a thin layer
over the rasteriser `flowgen.raster`); also the splats of an ObjectFlow's points, for viewing.

Colours and any extra per-Gaussian features (the 3D flow of the temporal loss) are rendered
in one pass as feature channels; a known background image is composited behind the colour
channels only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from chord_robot.camera import Camera
from flowgen.sh import padded_sh

__all__ = ["Image", "Splats", "camera_tensors", "point_splats", "render_splats", "render_splats_frames",
           "render_stacked"]


@dataclass(frozen=True)
class Splats:
    """World-space Gaussians of one frame.

    Attributes:
        means: (N, 3).
        quats: (N, 4) wxyz.
        scales: (N, 3) positive standard deviations.
        opacities: (N,) in [0, 1].
        features: (N, C) channels to composite (colour first).
        sh: (N, K, 3) higher spherical-harmonic coefficients of a 3DGS scan (K = 3, 8 or 15),
            evaluated per camera onto the colour (`flowgen.sh`); None: view-independent.
        sh_rotation: (N, 4) wxyz rotation of each Gaussian since rest (the SH are in the rest
            frame); None: at rest.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    features: Tensor
    sh: Tensor | None = None
    sh_rotation: Tensor | None = None

    @staticmethod
    def join(parts: list[Splats]) -> Splats:
        """Concatenate; SH coefficients are zero-padded to the largest degree (a part without
        them gets zeros: view-independent)."""
        fields = [torch.cat([getattr(p, a) for p in parts]) for a in ("means", "quats", "scales", "opacities",
                                                                       "features")]
        sh = padded_sh([(p.sh, len(p.means)) for p in parts])
        if sh is None:
            return Splats(*fields)
        rotation = []
        for p in parts:
            identity = p.means.new_zeros(len(p.means), 4)
            identity[:, 0] = 1.0
            rotation.append(p.sh_rotation if p.sh_rotation is not None else identity)
        return Splats(*fields, sh, torch.cat(rotation))


@dataclass(frozen=True)
class Image:
    """A rendered frame.

    Attributes:
        features: (H, W, C) composited channels (colour over the background when given).
        alpha: (H, W) accumulated opacity.
    """

    features: Tensor
    alpha: Tensor


def camera_tensors(camera: Camera, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """(4, 4) camera_from_world and (3, 3) intrinsics of ``camera`` as tensors on ``device``."""
    return (torch.as_tensor(camera.camera_from_world, dtype=dtype, device=device),
            torch.as_tensor(camera.K, dtype=dtype, device=device))


def render_splats(splats: Splats, camera: Camera, background: Tensor | None = None,
                  color_channels: int = 3, backend: str = "auto") -> Image:
    """Render ``splats`` from ``camera`` (with their spherical harmonics evaluated for it).

    Args:
        splats: the Gaussians.
        camera: pinhole camera (its width and height are the image size).
        background: (H, W, color_channels) image behind the colour channels, or None (black).
        color_channels: how many leading feature channels get the background.
        backend: the rasteriser (`flowgen.raster.render`: "auto", "fast", "reference", "gsplat").
    """
    from flowgen.raster import render

    viewmat, K = camera_tensors(camera, splats.means.dtype, splats.means.device)
    out = render(splats.means, splats.quats, splats.scales, splats.opacities, _seen_features(splats, camera),
                 viewmat, K, camera.width, camera.height, backend=backend)
    return Image(_behind(out.color, out.alpha, camera, background, color_channels), out.alpha)


def render_splats_frames(frames: list[Splats], camera: Camera, background: Tensor | None = None,
                         color_channels: int = 3, backend: str = "auto") -> list[Image]:
    """`render_splats` of several frames of the same Gaussians (one ``Splats`` per frame, the
    same count in each) from one camera: on the CPU's fast rasteriser all frames in one pass,
    a frame per worker thread (`flowgen.raster.frames`); otherwise frame by frame."""
    assert frames and len({len(s.means) for s in frames}) == 1, "one or more frames of equally many Gaussians"
    means = frames[0].means
    if means.device.type != "cpu" or backend not in ("auto", "fast"):
        return [render_splats(s, camera, background, color_channels, backend) for s in frames]
    stacked = [torch.stack([getattr(s, a) for s in frames]) for a in ("means", "quats", "scales", "opacities")]
    features = torch.stack([_seen_features(s, camera) for s in frames])
    out = render_stacked(*stacked, features, camera, background, color_channels)
    return [Image(color, alpha) for color, alpha in zip(out.features.unbind(0), out.alpha.unbind(0))]


def render_stacked(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, features: Tensor,
                   camera: Camera, background: Tensor | None = None, color_channels: int = 3) -> Image:
    """T frames of view-independent splats given as stacked tensors, on the CPU's fast
    rasteriser in one pass (`flowgen.raster.frames.render_frames`): an `Image` of (T, H, W, C)
    features and (T, H, W) alpha, ``background`` behind the colour channels of every frame.

    Args:
        means: (T, N, 3); quats: (T, N, 4) wxyz; features: (T, N, C): per frame.
        scales: (N, 3) or (T, N, 3); opacities: (N,) or (T, N): shared or per frame.
    """
    from flowgen.raster.frames import render_frames

    viewmat, K = camera_tensors(camera, means.dtype, means.device)
    out = render_frames(means, quats, scales, opacities, features, viewmat, K, camera.width, camera.height)
    return Image(_behind(out.color, out.alpha, camera, background, color_channels), out.alpha)


def _seen_features(splats: Splats, camera: Camera) -> Tensor:
    """The splats' features with their colour as seen from ``camera`` (spherical harmonics)."""
    if splats.sh is None:
        return splats.features
    from flowgen.sh import view_colors

    eye = torch.as_tensor(camera.position, dtype=splats.means.dtype, device=splats.means.device)
    seen = view_colors(splats.features[:, :3], splats.sh, splats.means, eye, splats.sh_rotation)
    return torch.cat((seen, splats.features[:, 3:]), -1)


def _behind(features: Tensor, alpha: Tensor, camera: Camera, background: Tensor | None,
            color_channels: int) -> Tensor:
    """(..., H, W, C) ``features`` with ``background`` (H, W, color_channels) composited behind
    their colour channels."""
    if background is None:
        return features
    assert background.shape == (camera.height, camera.width, color_channels), background.shape
    rest = 1.0 - alpha[..., None]
    return torch.cat((features[..., :color_channels] + rest * background, features[..., color_channels:]), -1)


def point_splats(flow, frame: int, size_factor: float = 0.7, default_color: float = 0.6) -> Splats:
    """Isotropic Gaussians at a flow's points at ``frame`` (for viewing an ObjectFlow).

    Each object's Gaussians get ``size_factor`` times its median nearest-point spacing as
    standard deviation and the flow's colours (grey without).
    """
    import numpy as np
    from scipy.spatial import cKDTree

    means, scales, colors = [], [], []
    for motion in flow.objects.values():
        pts = motion.points
        spacing = float(np.median(cKDTree(pts).query(pts, k=2)[0][:, 1])) if len(pts) > 1 else 0.005
        means.append(motion.trajectories[frame])
        scales.append(np.full(len(pts), max(size_factor * spacing, 1e-4)))
        colors.append(motion.colors if motion.colors is not None else np.full((len(pts), 3), default_color))
    n = sum(len(m) for m in means)
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    scale = torch.as_tensor(np.concatenate(scales), dtype=torch.float32)[:, None].expand(n, 3)
    return Splats(torch.as_tensor(np.concatenate(means), dtype=torch.float32), quats, scale.contiguous(),
                  torch.full((n,), 0.9), torch.as_tensor(np.concatenate(colors), dtype=torch.float32))
