"""View-dependent colour of 3D Gaussian Splatting scans: real spherical harmonics (issue #19 item 5).

A 3DGS scan stores per Gaussian the degree-0 coefficient (``f_dc``, the view-independent
colour, which the flow model learns as its albedo) and, for degree d >= 1, the (d + 1)^2 - 1
higher coefficients per channel (``f_rest``). Rendered from a camera at ``c``, a Gaussian at
``mu`` has colour

    max(0, base + sum_{k >= 1} rest_k Y_k((mu - c) / |mu - c|))

with Y_k the real SH basis of 3DGS (the constants and sign convention of its reference code,
which gsplat's ``_eval_sh_bases_fast`` also uses) and ``base = 0.5 + C0 f_dc`` (or the learned
albedo). A Gaussian carried by a deformation sees the direction in its rest frame: the view
direction rotated back by its rotation since rest, so the highlights turn with the object.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowgen.quat import quat_conjugate, quat_rotate

__all__ = ["padded_sh", "sh_basis", "sh_degree", "sh_turn", "view_colors"]

_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
       1.445305721320277, -0.5900435899266435)


def padded_sh(parts: list[tuple[Tensor | None, int]]) -> Tensor | None:
    """Per part (its (n, c, 3) higher coefficients or None, its count n), concatenated and
    zero-padded to the largest c (a part without them: zeros, view-independent); None when no
    part has any."""
    k = max((sh.shape[1] for sh, _ in parts if sh is not None), default=0)
    if k == 0:
        return None
    like = next(sh for sh, _ in parts if sh is not None)
    return torch.cat([torch.cat([sh if sh is not None else like.new_zeros(n, 0, 3),
                                 like.new_zeros(n, k - (0 if sh is None else sh.shape[1]), 3)], 1)
                      for sh, n in parts])


def sh_degree(rest_count: int) -> int:
    """The degree d of ``rest_count`` = (d + 1)^2 - 1 higher coefficients per channel
    (0, 3, 8, 15 -> 0, 1, 2, 3); ValueError for another count."""
    d = math.isqrt(rest_count + 1) - 1
    if (d + 1) ** 2 - 1 != rest_count or d > 3:
        raise ValueError(f"{rest_count} higher SH coefficients per channel is not a degree 1-3 set (3, 8 or 15)")
    return d


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """(N, 3) unit directions -> (N, (degree + 1)^2 - 1) basis values of bands 1 .. degree."""
    assert dirs.ndim == 2 and dirs.shape[1] == 3 and 0 <= degree <= 3, (dirs.shape, degree)
    x, y, z = dirs.unbind(-1)
    out = []
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [_C2[0] * x * y, _C2[1] * y * z, _C2[2] * (2 * zz - xx - yy), _C2[3] * x * z, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [_C3[0] * y * (3 * xx - yy), _C3[1] * x * y * z, _C3[2] * y * (4 * zz - xx - yy),
                _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy), _C3[5] * z * (xx - yy),
                _C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, -1) if out else dirs.new_zeros(len(dirs), 0)


def sh_turn(frame: Tensor, degree: int) -> Tensor:
    """(K, K) matrix taking coefficients of functions of directions in a frame ``frame`` (3, 3)
    turns into the scene (scene = frame @ file) to coefficients in the scene's directions:
    ``c_scene = sh_turn(frame) @ c_file``, so that sum_k c_scene_k Y_k(d) = sum_k c_file_k Y_k(frame^T d).

    Each band is closed under rotations, so the matrix is exact; it is solved by least squares
    from the basis at 64 directions of a Fibonacci sphere (float64).
    """
    n = 64
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = i * math.pi * (3 - math.sqrt(5))
    r = (1 - z * z).sqrt()
    dirs = torch.stack((r * phi.cos(), r * phi.sin(), z), -1)
    scene, file = sh_basis(degree, dirs), sh_basis(degree, dirs @ frame.to(torch.float64))  # frame^T d as rows
    # file = scene @ X  =>  sum_k c_file_k Y_k(frame^T d) = (scene @ X @ c_file): c_scene = X @ c_file
    return torch.linalg.lstsq(scene, file).solution


def view_colors(base: Tensor, rest: Tensor, means: Tensor, eye: Tensor, rotation: Tensor | None = None) -> Tensor:
    """The colours seen from ``eye``.

    Args:
        base: (N, 3) view-independent colour (0.5 + C0 f_dc, or the learned albedo).
        rest: (N, K, 3) higher coefficients, K = (d + 1)^2 - 1.
        means: (N, 3) where the Gaussians are now.
        eye: (3,) camera centre.
        rotation: (N, 4) wxyz rotation of each Gaussian since rest (None: at rest).
    Returns:
        (N, 3) colours, clamped at 0 as 3DGS does.
    """
    n, k = rest.shape[:2]
    assert base.shape == (n, 3) and rest.shape == (n, k, 3) and means.shape == (n, 3), (base.shape, rest.shape)
    if k == 0:
        return base
    dirs = means - eye.to(means)
    if rotation is not None:
        dirs = quat_rotate(quat_conjugate(rotation), dirs)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (base + torch.einsum("nk,nkc->nc", sh_basis(sh_degree(k), dirs), rest)).clamp_min(0.0)
