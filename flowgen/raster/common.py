"""Compositing rules shared by every rasteriser backend (gsplat 1.5.3's values)."""

from __future__ import annotations

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0
"""Pixels where a Gaussian's alpha is below this are skipped (gsplat's ALPHA_THRESHOLD)."""

ALPHA_MAX = 0.999
"""Per-Gaussian alpha is clamped here (gsplat 1.5.3; the original 3DGS used 0.99)."""

TRANSMITTANCE_MIN = 1e-4
"""A pixel stops before the Gaussian that would bring its transmittance to <= this."""


def depth_order(depths: Tensor, radii: Tensor) -> Tensor:
    """Indices of the visible Gaussians sorted front to back (stable: ties keep index order).

    Args:
        depths: (N,) camera z.
        radii: (N, 2) int screen radii; Gaussians with a zero radius are culled.

    Returns:
        (L,) int64 indices into the N Gaussians.
    """
    visible = torch.nonzero((radii > 0).all(dim=-1)).squeeze(-1)
    return visible[torch.sort(depths.detach()[visible], stable=True).indices]
