"""Appearance of the 4D model: each Gaussian has an albedo; with ``shading`` the rendered colour is

    c_i^t = albedo_i * (ambient + diffuse * max(0, n_i^t . l))

with one global light ``l`` and the Gaussian's normal ``n_i^t`` turned by the same skinning
as its rotation (flat Gaussians carry their surface normal as the third axis). A lid that
turns away from the light then darkens in the render as it does in the video, instead of the
darkening being explained by a wrong pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from flowgen.model import SceneModel

__all__ = ["Light", "albedo", "gaussian_normals", "shade"]


@dataclass(frozen=True)
class Light:
    """One directional light plus ambient, shared by the scene.

    Attributes:
        direction: (3,) towards the light (normalised when used).
        ambient: () softplus-parametrised ambient term.
        diffuse: () softplus-parametrised diffuse term.
    """

    direction: Tensor
    ambient: Tensor
    diffuse: Tensor


def gaussian_normals(quats: Tensor) -> Tensor:
    """(..., 3) third axis (the flat Gaussians' normal) of (..., 4) wxyz rotations."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack((2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)), -1)


def albedo(logit: Tensor) -> Tensor:
    """(N, 3) albedo in (0, 1) from its logit."""
    return torch.sigmoid(logit)


def shade(model: SceneModel, albedo_rgb: Tensor, normals: Tensor | None) -> Tensor:
    """Colours (..., N, 3) of albedo (N, 3) under the model's light, for normals (..., N, 3).

    Without shading (or without normals, e.g. a 3DGS scan) the albedo is the colour.
    """
    if normals is None:
        return albedo_rgb
    if not model.shading:
        return albedo_rgb.expand(*normals.shape[:-1], 3)
    light = model.light
    direction = light.direction / light.direction.norm().clamp_min(1e-8)
    lambert = (normals @ direction).clamp_min(0.0)[..., None]
    ambient = torch.nn.functional.softplus(light.ambient)
    diffuse = torch.nn.functional.softplus(light.diffuse)
    return albedo_rgb * (ambient + diffuse * lambert)
