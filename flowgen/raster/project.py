"""EWA projection of 3D Gaussians to screen-space 2D Gaussians (pinhole camera).

The formulas follow gsplat's pure-torch implementation (`gsplat/cuda/_torch_impl.py`,
`_fully_fused_projection` with `_persp_proj`) and its CUDA kernel
(`ProjectionEWA3DGSFused.cu`): the same Jacobian clamping, 2D low-pass `eps2d`, culling and
opacity-aware screen radius. Everything here is plain differentiable torch; both CPU
rasterisers (fast and reference) consume its output, so they differ only in compositing.

Conventions: camera_from_world `viewmat` in OpenCV axes (x right, y down, z forward); pixel
(column j, row i) has its centre at (j + 0.5, i + 0.5), as in gsplat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowgen.raster.common import ALPHA_THRESHOLD

MAX_EXTENT_SIGMAS = 3.33
"""Screen radius in standard deviations before the opacity-aware tightening (gsplat)."""


@dataclass(frozen=True)
class Projected:
    """Screen-space Gaussians of one camera.

    Attributes:
        means2d: (N, 2) pixel coordinates of the projected centres.
        conics: (N, 3) inverse 2D covariance (a, b, c): sigma = 0.5 (a dx^2 + c dy^2) + b dx dy.
        depths: (N,) camera-space z of the centres.
        radii: (N, 2) int32 half-extents (x, y) in pixels of a box outside which the Gaussian's
            alpha is below ALPHA_THRESHOLD; (0, 0) means culled (behind the near plane,
            off-screen, degenerate or too transparent). Not differentiable.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices of (not necessarily unit) wxyz quaternions.

    Args:
        quats: (N, 4) wxyz.

    Returns:
        (N, 3, 3) rotation matrices.
    """
    w, x, y, z = torch.unbind(quats / quats.norm(dim=-1, keepdim=True), dim=-1)
    rot = torch.stack(
        [
            1 - 2 * (y**2 + z**2), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x**2 + z**2), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x**2 + y**2),
        ],
        dim=-1,
    )  # fmt: skip
    return rot.reshape(quats.shape[:-1] + (3, 3))


def camera_covariance(quats: Tensor, scales: Tensor, rot: Tensor) -> Tensor:
    """Camera-space covariances W W^T with W = rot R(q) diag(s), as 6 unique entries.

    Explicit products instead of batched 3x3 matmuls, which torch runs slowly on CPU
    (measured: projection forward + backward 19 -> 9 ms for 20k Gaussians).

    Args:
        quats: (N, 4) wxyz.
        scales: (N, 3) standard deviations along the local axes.
        rot: (3, 3) camera_from_world rotation.

    Returns:
        (N, 6) entries (xx, xy, xz, yy, yz, zz).
    """
    local = quat_to_rotmat(quats) * scales[:, None, :]  # columns: scaled local axes
    rows = (rot[None, :, :, None] * local[:, None, :, :]).sum(2).unbind(1)  # rows of rot @ local
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    return torch.stack([(rows[i] * rows[j]).sum(-1) for i, j in pairs], dim=-1)


def perspective_projection(
    means_cam: Tensor, cov_cam: Tensor, K: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """Pinhole projection of camera-space Gaussians, linearised at the mean (EWA).

    The Jacobian is evaluated at the mean clamped to 1.3x the field of view, as gsplat does,
    so Gaussians far off-screen do not get huge footprints.

    Args:
        means_cam: (N, 3) camera-space means with z > 0 (callers substitute culled ones).
        cov_cam: (N, 6) camera-space covariances (xx, xy, xz, yy, yz, zz).
        K: (3, 3) intrinsics.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        means2d (N, 2) and cov2d (N, 3) as (xx, xy, yy) = J cov J^T entries.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x, y, z = torch.unbind(means_cam, dim=-1)
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    tx = z * torch.minimum(torch.maximum(x / z, -lim_x_neg), lim_x_pos)
    ty = z * torch.minimum(torch.maximum(y / z, -lim_y_neg), lim_y_pos)
    # J = [[j00, 0, j02], [0, j11, j12]]
    j00, j02 = fx / z, -fx * tx / z**2
    j11, j12 = fy / z, -fy * ty / z**2
    sxx, sxy, sxz, syy, syz, szz = cov_cam.unbind(-1)
    cov2d = torch.stack(
        [
            j00 * j00 * sxx + 2 * j00 * j02 * sxz + j02 * j02 * szz,
            j00 * j11 * sxy + j00 * j12 * sxz + j02 * j11 * syz + j02 * j12 * szz,
            j11 * j11 * syy + 2 * j11 * j12 * syz + j12 * j12 * szz,
        ],
        dim=-1,
    )
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    return means2d, cov2d


def conic_and_det(cov2d: Tensor, eps2d: float) -> tuple[Tensor, Tensor]:
    """Inverse of the low-passed 2D covariance cov2d + eps2d I.

    Args:
        cov2d: (N, 3) entries (xx, xy, yy).
        eps2d: screen-space low-pass variance in px^2 (gsplat: 0.3).

    Returns:
        conics (N, 3) as (a, b, c) and the determinant (N,) of the low-passed covariance.
    """
    sxx, sxy, syy = cov2d.unbind(-1)
    sxx, syy = sxx + eps2d, syy + eps2d
    det = sxx * syy - sxy * sxy
    det_safe = det.clamp(min=1e-10)
    return torch.stack([syy / det_safe, -sxy / det_safe, sxx / det_safe], dim=-1), det


@torch.no_grad()
def screen_radii(
    means2d: Tensor,
    cov2d: Tensor,
    opacities: Tensor,
    valid: Tensor,
    eps2d: float,
    width: int,
    height: int,
) -> Tensor:
    """Integer half-extents of the box holding all pixels where alpha >= ALPHA_THRESHOLD.

    Opacity-aware (gsplat, after arXiv:2402.00525 B.2): along x, sigma >= dx^2 / (2 Sxx), so
    beyond extent * sqrt(Sxx) with extent = sqrt(2 log(255 opacity)) alpha is below threshold.

    Args:
        means2d: (N, 2).
        cov2d: (N, 3) entries (xx, xy, yy) before the low-pass.
        opacities: (N,).
        valid: (N,) bool, False for Gaussians already culled.
        eps2d: low-pass variance added to the diagonal.
        width: image width.
        height: image height.

    Returns:
        (N, 2) int32 radii, zero for culled Gaussians.
    """
    visible = valid & (opacities >= ALPHA_THRESHOLD)
    extent = torch.sqrt(2.0 * torch.log(opacities.clamp(min=ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
    extent = extent.clamp(max=MAX_EXTENT_SIGMAS)
    var = cov2d[:, 0::2] + eps2d  # (xx, yy)
    radius = torch.ceil(extent[:, None] * torch.sqrt(var.clamp(min=0.0)))
    visible &= (radius > 0).all(dim=-1)
    visible &= (means2d[:, 0] + radius[:, 0] > 0) & (means2d[:, 0] - radius[:, 0] < width)
    visible &= (means2d[:, 1] + radius[:, 1] > 0) & (means2d[:, 1] - radius[:, 1] < height)
    return torch.where(visible[:, None], radius, torch.zeros_like(radius)).to(torch.int32)


def project(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
) -> Projected:
    """Project world-space 3D Gaussians into one pinhole camera.

    Differentiable w.r.t. means, quats, scales (and viewmat, K). Culled Gaussians (centre
    not in (near, far), degenerate, off-screen, or opacity < 1/255) get radii (0, 0) and
    finite values everywhere else, so they carry zero, never NaN, gradients. Computed in
    float64 and rounded to the input dtype: accurate for thin Gaussians, and the numba
    projection (`fast_project.py`) does the same, so the two agree to the last float32 bit.

    Args:
        means: (N, 3) world positions.
        quats: (N, 4) wxyz rotations, need not be normalised.
        scales: (N, 3) positive standard deviations.
        opacities: (N,) in [0, 1]; only used for the screen radius.
        viewmat: (4, 4) camera_from_world, OpenCV axes.
        K: (3, 3) intrinsics.
        width: image width in pixels.
        height: image height in pixels.
        near: Gaussians whose centre has z < near are culled (as gsplat).
        far: Gaussians whose centre has z > far are culled.
        eps2d: screen-space low-pass variance (px^2) added to every 2D covariance.

    Returns:
        The projected Gaussians.
    """
    n = means.shape[0]
    assert means.shape == (n, 3) and quats.shape == (n, 4) and scales.shape == (n, 3)
    assert opacities.shape == (n,) and viewmat.shape == (4, 4) and K.shape == (3, 3)
    dtype = means.dtype
    means, quats, scales, viewmat, K = (x.double() for x in (means, quats, scales, viewmat, K))
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    means_cam = means @ rot.T + trans
    cov_cam = camera_covariance(quats, scales, rot)
    depths = means_cam[:, 2]
    in_range = (depths >= near) & (depths <= far)
    # Culled centres get z = 1 before any division, so their gradients are 0 instead of NaN.
    safe_z = torch.where(in_range, depths, torch.ones_like(depths))
    means_cam_safe = torch.cat([means_cam[:, :2], safe_z[:, None]], dim=-1)
    means2d, cov2d = perspective_projection(means_cam_safe, cov_cam, K, width, height)
    conics, det = conic_and_det(cov2d, eps2d)
    valid = in_range & (det > 0) & torch.isfinite(det)
    radii = screen_radii(
        means2d.detach(), cov2d.detach(), opacities.detach().double(), valid, eps2d, width, height
    )
    return Projected(
        means2d=means2d.to(dtype), conics=conics.to(dtype), depths=depths.to(dtype), radii=radii
    )
