"""`render`: one differentiable pass giving colour/features, alpha and depth of 3D Gaussians."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from flowgen.raster.project import Projected, project

Backend = Literal["auto", "fast", "reference", "gsplat"]


@dataclass(frozen=True)
class RenderOutput:
    """One rendered view.

    Attributes:
        color: (H, W, C) composited per-Gaussian features (RGB, a 3D flow, or both
            concatenated), plus background * (1 - alpha) when a background is given.
        alpha: (H, W) accumulated opacity 1 - T_final.
        depth: (H, W) alpha-weighted camera z, sum_i w_i z_i, *not* normalised by alpha
            (gsplat's "D"); divide by alpha for the expected depth of the visible surface.
    """

    color: Tensor
    alpha: Tensor
    depth: Tensor


def render(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    features: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    background: Tensor | None = None,
    backend: Backend = "auto",
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
) -> RenderOutput:
    """Render 3D Gaussians into one pinhole camera (3DGS front-to-back compositing).

    Differentiable w.r.t. means, quats, scales, opacities, features and background (and
    viewmat and K, on the CPU backends).
    Compositing matches gsplat: alpha = min(0.999, opacity exp(-0.5 d^T conic d)), pairs with
    alpha < 1/255 skipped, a pixel stops before its transmittance would reach 1e-4; pixel
    (column j, row i) is sampled at (j + 0.5, i + 0.5); a 2D low-pass eps2d is added.

    Args:
        means: (N, 3) world positions.
        quats: (N, 4) wxyz rotations, need not be normalised.
        scales: (N, 3) positive standard deviations (not log).
        opacities: (N,) in [0, 1].
        features: (N, C) any channels, e.g. RGB, or RGB and a 3D flow concatenated.
        viewmat: (4, 4) camera_from_world, OpenCV axes (x right, y down, z forward).
        K: (3, 3) intrinsics.
        width: image width W.
        height: image height H.
        background: (C,) composited under the remaining transmittance, or None (zeros).
        backend: "auto" (gsplat for CUDA tensors, else "fast"), "fast" (CPU, numba),
            "reference" (CPU, plain torch; slow, for tests), or "gsplat" (CUDA).
        near: Gaussians with centre z < near are culled.
        far: Gaussians with centre z > far are culled.
        eps2d: screen-space low-pass variance in px^2.

    Returns:
        The colour (H, W, C), alpha (H, W) and depth (H, W) images.
    """
    c = _check_inputs(means, quats, scales, opacities, features, viewmat, K, background)
    chosen = _resolve_backend(backend, means)
    if chosen == "gsplat":
        from flowgen.raster.gsplat_backend import rasterize_gsplat

        color, alpha, depth = rasterize_gsplat(
            means, quats, scales, opacities, features, viewmat, K, width, height, near, far, eps2d
        )
    else:
        proj = _project_cpu(
            chosen, means, quats, scales, opacities, viewmat, K, width, height, near, far, eps2d
        )
        # depth is one more composited channel, so its gradient flows like any feature's
        channels = torch.cat([features, proj.depths[:, None]], dim=-1)
        args = (proj.means2d, proj.conics, opacities, channels, proj.depths, proj.radii)
        if chosen == "fast":
            from flowgen.raster.fast import rasterize_fast

            image, alpha = rasterize_fast(*args, width, height)
        else:
            from flowgen.raster.reference import rasterize_reference

            image, alpha = rasterize_reference(*args, width, height)
        color, depth = image[..., :c], image[..., c]
    if background is not None:
        color = color + (1 - alpha)[..., None] * background
    return RenderOutput(color=color, alpha=alpha, depth=depth)


def _project_cpu(
    backend: str,
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float,
) -> Projected:
    """The numba projection for the fast backend, the torch one for the reference backend
    or when the camera itself needs gradients (both give the same values)."""
    args = (means, quats, scales, opacities, viewmat, K, width, height, near, far, eps2d)
    if backend == "fast" and not (viewmat.requires_grad or K.requires_grad):
        from flowgen.raster.fast_project import project_fast

        return project_fast(*args)
    return project(*args)


def _resolve_backend(backend: str, means: Tensor) -> str:
    """The concrete backend for `backend` and the tensors' device."""
    if backend == "auto":
        return "gsplat" if means.is_cuda else "fast"
    if backend not in ("fast", "reference", "gsplat"):
        raise ValueError(
            f"unknown backend {backend!r}: use 'auto', 'fast', 'reference' or 'gsplat'"
        )
    if backend in ("fast", "reference") and means.device.type != "cpu":
        raise ValueError(
            f"backend {backend!r} runs on CPU tensors, got {means.device}: move them with "
            ".cpu() or use backend='auto'"
        )
    if backend == "gsplat" and not means.is_cuda:
        raise ValueError("backend 'gsplat' needs CUDA tensors: use backend='fast' on CPU")
    return backend


def _check_inputs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    features: Tensor,
    viewmat: Tensor,
    K: Tensor,
    background: Tensor | None,
) -> int:
    """Validate shapes and dtypes at the API boundary; returns the channel count C."""
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"means must be (N, 3), got {tuple(means.shape)}")
    n = means.shape[0]
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must be (N, C) with N={n}, got {tuple(features.shape)}")
    c = features.shape[1]
    expected = {
        "quats": (quats, (n, 4)),
        "scales": (scales, (n, 3)),
        "opacities": (opacities, (n,)),
        "viewmat": (viewmat, (4, 4)),
        "K": (K, (3, 3)),
    }
    if background is not None:
        expected["background"] = (background, (c,))
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    tensors = [means, quats, scales, opacities, features, viewmat, K] + (
        [background] if background is not None else []
    )
    if len({t.dtype for t in tensors}) != 1 or not means.is_floating_point():
        raise ValueError(
            "all inputs must share one float dtype (float32, or float64 for gradcheck), got "
            + ", ".join(str(t.dtype) for t in tensors)
        )
    return c
