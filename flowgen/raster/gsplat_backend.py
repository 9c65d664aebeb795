"""CUDA backend: gsplat's fused projection + rasterisation (needs a CUDA device).

gsplat's rasteriser does not run on CPU; `render(backend="auto")` only routes CUDA tensors
here. Depth comes from gsplat's "RGB+D" mode, i.e. the same sum_i w_i z_i as the CPU paths.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gsplat_available() -> bool:
    """True when CUDA is present (gsplat is a hard dependency of the package)."""
    return torch.cuda.is_available()


def rasterize_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    features: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render with `gsplat.rasterization` (classic 3DGS compositing, no SH, one camera).

    Args:
        means: (N, 3), quats: (N, 4) wxyz, scales: (N, 3), opacities: (N,), features: (N, C),
            all on one CUDA device.
        viewmat: (4, 4) camera_from_world; K: (3, 3).
        width, height: image size.
        near, far: depth culling planes.
        eps2d: screen-space low-pass variance.

    Returns:
        color (H, W, C) without background, alpha (H, W), depth (H, W) = sum_i w_i z_i.
    """
    if not gsplat_available():
        raise RuntimeError(
            "the gsplat backend needs CUDA; use render(..., backend='fast') on CPU tensors"
        )
    if means.dtype != torch.float32:
        raise ValueError(f"gsplat renders float32 only, got {means.dtype}: use .float()")
    from gsplat import rasterization  # imported here: it loads CUDA extensions

    colors, alphas, _ = rasterization(
        means,
        quats,
        scales,
        opacities,
        features,
        viewmats=viewmat[None],
        Ks=K[None],
        width=width,
        height=height,
        near_plane=near,
        far_plane=far,
        eps2d=eps2d,
        render_mode="RGB+D",
        sh_degree=None,
        packed=False,
        rasterize_mode="classic",
    )
    c = features.shape[1]
    return colors[0, :, :, :c], alphas[0, :, :, 0], colors[0, :, :, c]
