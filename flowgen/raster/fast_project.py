"""Fused EWA projection in numba with a hand-written backward (the fast CPU path's projection).

The same math as `project.project` (its reference, differentiated by autograd): one loop over
the Gaussians in float64, outputs rounded to the input dtype, so both give the same float32
values. One fused loop replaces the torch version's hundreds of small ops (timings in
docs/flowgen-notes.md).

Gradients flow to means, quats and scales. Culled Gaussians (radii (0, 0)) only pass on the
gradient of their depth: the rasterisers never give them a screen-space gradient. The camera
(viewmat, K) is not differentiated here; `render` uses `project.project` when it needs to be.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from flowgen.raster.common import ALPHA_THRESHOLD
from flowgen.raster.project import MAX_EXTENT_SIGMAS, Projected

# Small matrices are tuples of floats, row-major: numba keeps them in registers, whereas
# tiny arrays cost an allocation or a reference count per use (measured 5x slower overall).
Mat3 = tuple  # 9 floats
Mat23 = tuple  # 6 floats


@numba.njit(cache=True, inline="always")
def _mul33(a: Mat3, b: Mat3) -> Mat3:
    """a @ b."""
    return (
        a[0] * b[0] + a[1] * b[3] + a[2] * b[6], a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
        a[0] * b[2] + a[1] * b[5] + a[2] * b[8], a[3] * b[0] + a[4] * b[3] + a[5] * b[6],
        a[3] * b[1] + a[4] * b[4] + a[5] * b[7], a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
        a[6] * b[0] + a[7] * b[3] + a[8] * b[6], a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
        a[6] * b[2] + a[7] * b[5] + a[8] * b[8],
    )  # fmt: skip


@numba.njit(cache=True, inline="always")
def _transpose(a: Mat3) -> Mat3:
    """a^T."""
    return (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])


@numba.njit(cache=True, inline="always")
def _rotation(q: np.ndarray) -> tuple[Mat3, tuple, float]:
    """Rotation of quaternion q (wxyz), the unit quaternion q / |q| and |q|."""
    norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    w, x, y, z = q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm
    rot = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return rot, (w, x, y, z), norm


@numba.njit(cache=True, inline="always")
def _rotation_vjp(unit: tuple, norm: float, v: Mat3) -> tuple:
    """dL/dq (4 floats) for the rotation of q = norm * unit, given v = dL/dR."""
    w, x, y, z = unit
    gw = 2 * (-z * v[1] + y * v[2] + z * v[3] - x * v[5] - y * v[6] + x * v[7])
    gx = 2 * (y * v[1] + z * v[2] + y * v[3] - 2 * x * v[4] - w * v[5] + z * v[6] + w * v[7]
              - 2 * x * v[8])  # fmt: skip
    gy = 2 * (-2 * y * v[0] + x * v[1] + w * v[2] + x * v[3] + z * v[5] - w * v[6] + z * v[7]
              - 2 * y * v[8])  # fmt: skip
    gz = 2 * (-2 * z * v[0] - w * v[1] + x * v[2] + w * v[3] - 2 * z * v[4] + y * v[5]
              + x * v[6] + y * v[7])  # fmt: skip
    radial = gw * w + gx * x + gy * y + gz * z  # through q / |q|
    return ((gw - radial * w) / norm, (gx - radial * x) / norm,
            (gy - radial * y) / norm, (gz - radial * z) / norm)  # fmt: skip


@numba.njit(cache=True)
def _clamp_limits(K: np.ndarray, width: int, height: int) -> tuple:
    """Tangent limits (x-, x+, y-, y+) of the Jacobian clamp, as in gsplat."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    return (cx / fx + 0.3 * tan_x, (width - cx) / fx + 0.3 * tan_x,
            cy / fy + 0.3 * tan_y, (height - cy) / fy + 0.3 * tan_y)  # fmt: skip


@numba.njit(cache=True, inline="always")
def _screen_covariance(
    i: int,
    means: np.ndarray,
    quats: np.ndarray,
    scales: np.ndarray,
    rot_view: Mat3,
    t_view: tuple,
    fx: float,
    fy: float,
    lims: tuple,
) -> tuple:
    """Intermediates of Gaussian i: camera point (x, y, z), R(q), unit q, |q|,
    W = R_view R(q) diag(s), the Jacobian entries (j00, j02, j11, j12), J W, the clamped
    tangents (tu, tv) and whether each was inside its clamp."""
    r = rot_view
    px, py, pz = means[i, 0], means[i, 1], means[i, 2]
    x = r[0] * px + r[1] * py + r[2] * pz + t_view[0]
    y = r[3] * px + r[4] * py + r[5] * pz + t_view[1]
    z = r[6] * px + r[7] * py + r[8] * pz + t_view[2]
    rot, unit, norm = _rotation(quats[i])
    sx, sy, sz = scales[i, 0], scales[i, 1], scales[i, 2]
    local = (rot[0] * sx, rot[1] * sy, rot[2] * sz, rot[3] * sx, rot[4] * sy, rot[5] * sz,
             rot[6] * sx, rot[7] * sy, rot[8] * sz)  # fmt: skip
    w = _mul33(rot_view, local)
    u, v = x / z, y / z
    tu, tv = min(max(u, -lims[0]), lims[1]), min(max(v, -lims[2]), lims[3])
    j00, j02 = fx / z, -fx * (z * tu) / (z * z)
    j11, j12 = fy / z, -fy * (z * tv) / (z * z)
    jw = (j00 * w[0] + j02 * w[6], j00 * w[1] + j02 * w[7], j00 * w[2] + j02 * w[8],
          j11 * w[3] + j12 * w[6], j11 * w[4] + j12 * w[7], j11 * w[5] + j12 * w[8])  # fmt: skip
    inside = (-lims[0] < u < lims[1], -lims[2] < v < lims[3])
    return (x, y, z), rot, unit, norm, w, (j00, j02, j11, j12), jw, (tu, tv), inside


@numba.njit(cache=True, inline="always")
def _low_passed(jw: Mat23, eps2d: float) -> tuple[float, float, float]:
    """Screen covariance (J W)(J W)^T + eps2d I as (xx, xy, yy)."""
    sxx = jw[0] * jw[0] + jw[1] * jw[1] + jw[2] * jw[2] + eps2d
    sxy = jw[0] * jw[3] + jw[1] * jw[4] + jw[2] * jw[5]
    syy = jw[3] * jw[3] + jw[4] * jw[4] + jw[5] * jw[5] + eps2d
    return sxx, sxy, syy


@numba.njit(cache=True, nogil=True)
def _project_forward(
    means: np.ndarray,
    quats: np.ndarray,
    scales: np.ndarray,
    opacities: np.ndarray,
    view: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float,
    means2d: np.ndarray,
    conics: np.ndarray,
    depths: np.ndarray,
    radii: np.ndarray,
) -> None:
    """Fill means2d (N, 2), conics (N, 3), depths (N,), radii (N, 2); see `project.project`.

    All float arrays float64.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lims = _clamp_limits(K, width, height)
    rot_view = (view[0, 0], view[0, 1], view[0, 2], view[1, 0], view[1, 1], view[1, 2],
                view[2, 0], view[2, 1], view[2, 2])  # fmt: skip
    t_view = (view[0, 3], view[1, 3], view[2, 3])
    means2d[:] = 0.0
    conics[:] = 0.0
    radii[:] = 0
    for i in range(means.shape[0]):
        depths[i] = (rot_view[6] * means[i, 0] + rot_view[7] * means[i, 1]
                     + rot_view[8] * means[i, 2] + t_view[2])  # fmt: skip
        if not (near <= depths[i] <= far) or opacities[i] < ALPHA_THRESHOLD:
            continue
        cam, _, _, _, _, _, jw, _, _ = _screen_covariance(
            i, means, quats, scales, rot_view, t_view, fx, fy, lims
        )
        sxx, sxy, syy = _low_passed(jw, eps2d)
        det = sxx * syy - sxy * sxy
        if not (det > 0.0 and math.isfinite(det)):
            continue
        mx, my = fx * cam[0] / cam[2] + cx, fy * cam[1] / cam[2] + cy
        extent = min(math.sqrt(2.0 * math.log(opacities[i] / ALPHA_THRESHOLD)), MAX_EXTENT_SIGMAS)
        rx, ry = math.ceil(extent * math.sqrt(sxx)), math.ceil(extent * math.sqrt(syy))
        outside = mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height
        if rx <= 0 or ry <= 0 or outside:
            continue
        means2d[i, 0], means2d[i, 1] = mx, my
        conics[i, 0], conics[i, 1], conics[i, 2] = syy / det, -sxy / det, sxx / det
        radii[i, 0], radii[i, 1] = rx, ry


@numba.njit(cache=True, nogil=True)
def _project_backward(
    means: np.ndarray,
    quats: np.ndarray,
    scales: np.ndarray,
    view: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    eps2d: float,
    radii: np.ndarray,
    v_means2d: np.ndarray,
    v_conics: np.ndarray,
    v_depths: np.ndarray,
    v_means: np.ndarray,
    v_quats: np.ndarray,
    v_scales: np.ndarray,
) -> None:
    """Vector-Jacobian product of `_project_forward` into v_means, v_quats, v_scales.

    All arrays float64. Matrix gradients are full ones (dL = sum_ij V_ij dA_ij): for
    A = B C, dL/dB = V C^T and dL/dC = B^T V; for a symmetric A = B B^T, dL/dB = 2 V B.
    """
    fx, fy = K[0, 0], K[1, 1]
    lims = _clamp_limits(K, width, height)
    rot_view = (view[0, 0], view[0, 1], view[0, 2], view[1, 0], view[1, 1], view[1, 2],
                view[2, 0], view[2, 1], view[2, 2])  # fmt: skip
    t_view = (view[0, 3], view[1, 3], view[2, 3])
    for i in range(means.shape[0]):
        gx, gy, gz = 0.0, 0.0, v_depths[i]
        v_quats[i, :] = 0.0
        v_scales[i, :] = 0.0
        if radii[i, 0] > 0 and radii[i, 1] > 0:
            cam, rot, unit, norm, w, jac, jw, tan, inside = _screen_covariance(
                i, means, quats, scales, rot_view, t_view, fx, fy, lims
            )
            x, y, z = cam
            j00, j02, j11, j12 = jac
            sxx, sxy, syy = _low_passed(jw, eps2d)
            det = sxx * syy - sxy * sxy
            a, b, c = syy / det, -sxy / det, sxx / det  # the conic: inverse covariance
            # conic (a, b, c) = (inv00, inv01, inv11): dL/dcov2d = -inv G inv with
            # G = [[ga, gb / 2], [gb / 2, gc]] (b is one entry standing in both slots)
            ga, gb, gc = v_conics[i, 0], 0.5 * v_conics[i, 1], v_conics[i, 2]
            p00, p01, p10, p11 = a * ga + b * gb, a * gb + b * gc, b * ga + c * gb, b * gb + c * gc
            v00, v01, v11 = -(p00 * a + p01 * b), -(p00 * b + p01 * c), -(p10 * b + p11 * c)
            # cov2d = (J W)(J W)^T: with A = V (J W), dL/dW = 2 J^T A and dL/dJ = 2 A W^T
            a0 = (v00 * jw[0] + v01 * jw[3], v00 * jw[1] + v01 * jw[4], v00 * jw[2] + v01 * jw[5])
            a1 = (v01 * jw[0] + v11 * jw[3], v01 * jw[1] + v11 * jw[4], v01 * jw[2] + v11 * jw[5])
            v_w = (2 * j00 * a0[0], 2 * j00 * a0[1], 2 * j00 * a0[2],
                   2 * j11 * a1[0], 2 * j11 * a1[1], 2 * j11 * a1[2],
                   2 * (j02 * a0[0] + j12 * a1[0]), 2 * (j02 * a0[1] + j12 * a1[1]),
                   2 * (j02 * a0[2] + j12 * a1[2]))  # fmt: skip
            v_j00 = 2 * (a0[0] * w[0] + a0[1] * w[1] + a0[2] * w[2])
            v_j02 = 2 * (a0[0] * w[6] + a0[1] * w[7] + a0[2] * w[8])
            v_j11 = 2 * (a1[0] * w[3] + a1[1] * w[4] + a1[2] * w[5])
            v_j12 = 2 * (a1[0] * w[6] + a1[1] * w[7] + a1[2] * w[8])
            # W = R_view L with L = R(q) diag(s)
            v_local = _mul33(_transpose(rot_view), v_w)
            for col in range(3):
                v_scales[i, col] = (v_local[col] * rot[col] + v_local[3 + col] * rot[3 + col]
                                    + v_local[6 + col] * rot[6 + col])  # fmt: skip
            sx, sy, sz = scales[i, 0], scales[i, 1], scales[i, 2]
            v_rot = (v_local[0] * sx, v_local[1] * sy, v_local[2] * sz,
                     v_local[3] * sx, v_local[4] * sy, v_local[5] * sz,
                     v_local[6] * sx, v_local[7] * sy, v_local[8] * sz)  # fmt: skip
            v_quats[i, 0], v_quats[i, 1], v_quats[i, 2], v_quats[i, 3] = _rotation_vjp(
                unit, norm, v_rot
            )
            # J entries: fx / z, -fx tx / z^2, ... with tx = z tu, tu = clamp(x / z)
            tu, tv = tan
            tx, ty = z * tu, z * tv
            v_tx, v_ty = -fx / (z * z) * v_j02, -fy / (z * z) * v_j12
            gz += -fx / (z * z) * v_j00 - fy / (z * z) * v_j11
            gz += 2 * fx * tx / z**3 * v_j02 + 2 * fy * ty / z**3 * v_j12
            gx += v_tx * inside[0]
            gy += v_ty * inside[1]
            gz += v_tx * (tu - inside[0] * x / z) + v_ty * (tv - inside[1] * y / z)
            # means2d = (fx x / z + cx, fy y / z + cy)
            gx += fx / z * v_means2d[i, 0]
            gy += fy / z * v_means2d[i, 1]
            gz -= fx * x / (z * z) * v_means2d[i, 0] + fy * y / (z * z) * v_means2d[i, 1]
        for r in range(3):  # cam = R_view p + t
            v_means[i, r] = rot_view[r] * gx + rot_view[3 + r] * gy + rot_view[6 + r] * gz


class _ProjectFast(torch.autograd.Function):
    """Numba projection with a hand-written backward (see module docstring)."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmat, K, width, height, near, far, eps2d):
        n, dtype = means.shape[0], means.dtype
        arrays = [
            x.detach().double().contiguous().numpy() for x in (means, quats, scales, opacities)
        ]
        view = viewmat.detach().double().contiguous().numpy()
        intrinsics = K.detach().double().contiguous().numpy()
        means2d = np.empty((n, 2), dtype=np.float64)
        conics = np.empty((n, 3), dtype=np.float64)
        depths = np.empty(n, dtype=np.float64)
        radii = np.empty((n, 2), dtype=np.int32)
        _project_forward(
            *arrays, view, intrinsics, width, height, near, far, eps2d,
            means2d, conics, depths, radii,
        )  # fmt: skip
        ctx.save_for_backward(means, quats, scales)
        ctx.camera = (view, intrinsics, width, height, eps2d, radii)
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        out = [torch.from_numpy(a).to(dtype) for a in (means2d, conics, depths)]
        return *out, radii_t

    @staticmethod
    @once_differentiable
    def backward(ctx, v_means2d, v_conics, v_depths, _v_radii):
        means, quats, scales = (x.detach().double().contiguous().numpy() for x in ctx.saved_tensors)
        view, intrinsics, width, height, eps2d, radii = ctx.camera
        n = means.shape[0]
        v_means = np.empty((n, 3), dtype=np.float64)
        v_quats = np.empty((n, 4), dtype=np.float64)
        v_scales = np.empty((n, 3), dtype=np.float64)
        upstream = (x.double().contiguous().numpy() for x in (v_means2d, v_conics, v_depths))
        _project_backward(
            means, quats, scales, view, intrinsics, width, height, eps2d, radii, *upstream,
            v_means, v_quats, v_scales,
        )  # fmt: skip
        dtype = v_means2d.dtype
        grads = [torch.from_numpy(a).to(dtype) for a in (v_means, v_quats, v_scales)]
        return *grads, None, None, None, None, None, None, None, None


def project_fast(
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
    """`project.project` in numba: same arguments, same result; camera not differentiated.

    Args:
        means: (N, 3), quats: (N, 4) wxyz, scales: (N, 3), opacities: (N,): CPU, one dtype.
        viewmat: (4, 4) camera_from_world; K: (3, 3).
        width, height: image size.
        near, far: depth culling planes.
        eps2d: screen-space low-pass variance.

    Returns:
        The projected Gaussians (means2d, conics, depths in the input dtype; int32 radii).
    """
    n = means.shape[0]
    assert means.shape == (n, 3) and quats.shape == (n, 4) and scales.shape == (n, 3)
    assert opacities.shape == (n,) and viewmat.shape == (4, 4) and K.shape == (3, 3)
    assert not (viewmat.requires_grad or K.requires_grad), "use project.project for camera grads"
    means2d, conics, depths, radii = _ProjectFast.apply(
        means, quats, scales, opacities, viewmat, K, width, height, near, far, eps2d
    )
    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii)
