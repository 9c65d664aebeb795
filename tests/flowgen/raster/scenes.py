"""Random Gaussian scenes for the rasteriser tests, and their comparison helper."""

from __future__ import annotations

import torch
from torch import Tensor

F64 = torch.float64


def look_at_viewmat(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """camera_from_world (4, 4), OpenCV axes, camera at eye looking at target."""
    z = target - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, up)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    rot = torch.stack([x, y, z])  # rows: camera axes in world coordinates
    view = torch.eye(4, dtype=eye.dtype)
    view[:3, :3] = rot
    view[:3, 3] = -rot @ eye
    return view


def random_scene(n: int, width: int, height: int, seed: int, dtype: torch.dtype = F64) -> dict:
    """Gaussians around a tilted camera's frustum: some partly off-screen, some behind it.

    Returns keyword arguments for `render` (inputs as leaf tensors requiring grad).
    """
    g = torch.Generator().manual_seed(seed)
    fx, fy = 0.9 * width, 0.8 * width
    K = torch.tensor(
        [[fx, 0.0, 0.47 * width], [0.0, fy, 0.55 * height], [0.0, 0.0, 1.0]], dtype=F64
    )
    eye = torch.tensor([0.3, -0.4, -1.5], dtype=F64)
    view = look_at_viewmat(
        eye, torch.tensor([0.05, 0.1, 0.3], dtype=F64), torch.tensor([0.0, -1.0, 0.1], dtype=F64)
    )
    # camera-space points: x, y over 1.4x the field of view, z in [-0.3, 3] (some behind)
    z = -0.3 + 3.3 * torch.rand(n, generator=g, dtype=F64)
    depth = z.abs().clamp(min=0.2)
    x = (torch.rand(n, generator=g, dtype=F64) - 0.47) * 1.4 * width / fx * depth
    y = (torch.rand(n, generator=g, dtype=F64) - 0.55) * 1.4 * height / fy * depth
    cam = torch.stack([x, y, z], dim=-1)
    cam[0] = torch.tensor([0.02, -0.03, 1.2], dtype=F64)  # at least one Gaussian in view
    world = (cam - view[:3, 3]) @ view[:3, :3]  # inverse of R p + t
    # screen sizes from ~0.7 px to ~6 px, anisotropic
    pixels = torch.exp(torch.empty(n, 3, dtype=F64).uniform_(-0.3, 1.8, generator=g))
    scales = depth[:, None] / fx * pixels
    inputs = {
        "means": world,
        "quats": torch.randn(n, 4, generator=g, dtype=F64),
        "scales": scales,
        "opacities": 0.05 + 0.95 * torch.rand(n, generator=g, dtype=F64),
        "features": torch.rand(n, 4, generator=g, dtype=F64) - 0.2,
        "background": torch.tensor([0.2, 0.5, 0.9, -0.3], dtype=F64),
    }
    inputs = {k: v.to(dtype).requires_grad_(True) for k, v in inputs.items()}
    return dict(inputs, viewmat=view.to(dtype), K=K.to(dtype), width=width, height=height)


def assert_close_rel(actual: Tensor, expected: Tensor, rel: float, name: str) -> None:
    """max |actual - expected| <= rel * max |expected| (and exactly zero where both are)."""
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= rel * max(scale, 1e-30), f"{name}: max error {err:.3g} vs scale {scale:.3g}"
