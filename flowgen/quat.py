"""Small quaternion helpers (torch), scalar-first: q = (w, x, y, z) everywhere.

All functions broadcast over leading axes and are differentiable. Products use the
Hamilton convention, so ``quat_to_matrix(quat_multiply(a, b)) == R(a) @ R(b)``: the
right-hand factor is applied first.

On a CPU `quat_multiply`, `quat_normalize` and `quat_to_matrix` run as numba kernels with
hand-written backward passes (one autograd node each): written out in torch ops they are
30-40 small ops and twice as many backward nodes, and a loop iteration of a flow calls them
~40 times on tensors of a few hundred to a few thousand quaternions, where the ops' overhead
is their cost (~20 ms an iteration; docs/performance.md). Elsewhere (CUDA, other dtypes) the
torch forms (`_multiply_torch`, `_normalize_torch`, `_to_matrix_torch`) run; the tests hold the
kernels to them. The kernels are differentiable once (``once_differentiable``: no second
derivatives, no forward mode or ``torch.func``; nothing in the project needs them).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "matrix_to_quat",
    "quat_canonical",
    "quat_conjugate",
    "quat_continuous",
    "quat_identity",
    "quat_multiply",
    "quat_normalize",
    "quat_rotate",
    "quat_to_matrix",
]


def quat_identity(
    *shape: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Identity quaternions (1, 0, 0, 0) of shape ``(*shape, 4)``."""
    q = torch.zeros(*shape, 4, dtype=dtype, device=device)
    q[..., 0] = 1.0
    return q


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a ⊗ b`` of (..., 4) wxyz quaternions (b is applied first)."""
    if _fused(a, b):
        return _Multiply.apply(a, b)
    return _multiply_torch(a, b)


def _multiply_torch(a: Tensor, b: Tensor) -> Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_conjugate(q: Tensor) -> Tensor:
    """Conjugate (the inverse for unit quaternions) of (..., 4) wxyz quaternions."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: Tensor, eps: float = 1e-12) -> Tensor:
    """Scale (..., 4) quaternions to unit norm (a zero quaternion stays finite)."""
    if _fused(q):
        return _Normalize.apply(q, eps)
    return _normalize_torch(q, eps)


def _normalize_torch(q: Tensor, eps: float = 1e-12) -> Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_canonical(q: Tensor) -> Tensor:
    """Flip (..., 4) quaternions onto the w >= 0 hemisphere (same rotation)."""
    return torch.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of (..., 4) wxyz quaternions (normalised first)."""
    if _fused(q):
        return _ToMatrix.apply(q)
    return _to_matrix_torch(q)


def _to_matrix_torch(q: Tensor) -> Tensor:
    w, x, y, z = _normalize_torch(q).unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = (
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: Tensor) -> Tensor:
    """Unit wxyz quaternions (..., 4), w >= 0, of rotation matrices (..., 3, 3).

    Shepperd's method: of the four candidate formulas, each row uses the one whose
    divisor (4 * the largest of |w|, |x|, |y|, |z|) is largest, which is stable for
    every rotation including 180-degree ones.
    """
    assert m.shape[-2:] == (3, 3), f"expected (..., 3, 3), got {tuple(m.shape)}"
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 q_i^2 for i = w, x, y, z; clamped so sqrt stays real and its gradient finite.
    four_sq = torch.stack(
        (
            1 + m00 + m11 + m22,
            1 + m00 - m11 - m22,
            1 - m00 + m11 - m22,
            1 - m00 - m11 + m22,
        ),
        dim=-1,
    )
    root = four_sq.clamp_min(1e-12).sqrt()  # 2 |q_i|
    candidates = torch.stack(
        (
            torch.stack((root[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), dim=-1),
            torch.stack((m21 - m12, root[..., 1] ** 2, m10 + m01, m02 + m20), dim=-1),
            torch.stack((m02 - m20, m10 + m01, root[..., 2] ** 2, m12 + m21), dim=-1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, root[..., 3] ** 2), dim=-1),
        ),
        dim=-2,
    ) / (2 * root[..., :, None])  # (..., 4 candidates, 4)
    best = four_sq.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    return quat_canonical(quat_normalize(q))


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate (..., 3) vectors by (..., 4) wxyz quaternions (normalised first)."""
    return (quat_to_matrix(q) @ v[..., None])[..., 0]


def quat_continuous(q: Tensor, dim: int = 0) -> Tensor:
    """Flip signs along ``dim``: the first element onto w >= 0, then each next one onto the
    hemisphere of its predecessor (non-negative dot product).

    ``q`` and ``-q`` are the same rotation, but a linear blend of the two is not. Control
    points all start at the identity (frame 0), so sequences anchored there and made
    continuous in time keep smoothly moving neighbours on one hemisphere. Differentiable
    (the signs are constants). Shapes: (..., 4) with the sequence along ``dim``.
    """
    seq = q.movedim(dim, 0)
    first = torch.where(seq[:1, ..., :1] < 0, -1.0, 1.0).to(q.dtype)
    dots = (seq[1:] * seq[:-1]).sum(-1, keepdim=True)
    steps = torch.where(dots < 0, -1.0, 1.0).to(q.dtype)
    signs = torch.cumprod(torch.cat((first, steps), 0), dim=0)
    return (seq * signs).movedim(0, dim)


# --------------------------------------------------------------------------- CPU kernels


def _fused(*tensors: Tensor) -> bool:
    """Whether the numba kernels take these tensors: CPU, one float dtype."""
    dtype = tensors[0].dtype
    return dtype in (torch.float32, torch.float64) and all(
        t.device.type == "cpu" and t.dtype == dtype and t.shape[-1:] == (4,) for t in tensors)


def _rows(t: Tensor, shape: torch.Size) -> np.ndarray:
    """``t`` broadcast to ``shape`` (..., 4) as a C-contiguous (M, 4) array."""
    return t.detach().expand(shape).reshape(-1, 4).contiguous().numpy()


@numba.njit(cache=True, nogil=True)
def _multiply_rows(a: np.ndarray, b: np.ndarray, sa: float, sb: float, out: np.ndarray) -> None:
    """out = (a with its vector part times ``sa``) ⊗ (b with its vector part times ``sb``),
    row by row: sa = sb = 1 the product, -1 a conjugate factor (the backward's)."""
    for i in range(a.shape[0]):
        aw, ax, ay, az = a[i, 0], sa * a[i, 1], sa * a[i, 2], sa * a[i, 3]
        bw, bx, by, bz = b[i, 0], sb * b[i, 1], sb * b[i, 2], sb * b[i, 3]
        out[i, 0] = aw * bw - ax * bx - ay * by - az * bz
        out[i, 1] = aw * bx + ax * bw + ay * bz - az * by
        out[i, 2] = aw * by - ax * bz + ay * bw + az * bx
        out[i, 3] = aw * bz + ax * by - ay * bx + az * bw


class _Multiply(torch.autograd.Function):
    """a ⊗ b; backward: grad_a = g ⊗ conj(b), grad_b = conj(a) ⊗ g, summed over broadcast axes."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(a.shape, b.shape)
        rows_a, rows_b = _rows(a, shape), _rows(b, shape)
        out = np.empty_like(rows_a)
        _multiply_rows(rows_a, rows_b, 1.0, 1.0, out)
        ctx.save_for_backward(a, b)
        return torch.from_numpy(out.reshape(shape))  # reshaped in numpy: the output is no torch view

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        shape = grad.shape
        g = _rows(grad.to(a.dtype), shape)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            out = np.empty_like(g)
            _multiply_rows(g, _rows(b, shape), 1.0, -1.0, out)
            grad_a = torch.from_numpy(out).view(shape).sum_to_size(a.shape)
        if ctx.needs_input_grad[1]:
            out = np.empty_like(g)
            _multiply_rows(_rows(a, shape), g, -1.0, 1.0, out)
            grad_b = torch.from_numpy(out).view(shape).sum_to_size(b.shape)
        return grad_a, grad_b


@numba.njit(cache=True, nogil=True)
def _normalize_rows(q: np.ndarray, eps: float, unit: np.ndarray, norm: np.ndarray) -> None:
    """unit = q / max(|q|, eps) row by row; ``norm`` gets max(|q|, eps), negated where it was eps."""
    for i in range(q.shape[0]):
        n = np.sqrt(q[i, 0] * q[i, 0] + q[i, 1] * q[i, 1] + q[i, 2] * q[i, 2] + q[i, 3] * q[i, 3])
        m = max(n, eps)
        for c in range(4):
            unit[i, c] = q[i, c] / m
        norm[i] = m if n > eps else -m


@numba.njit(cache=True, nogil=True)
def _normalize_backward_rows(unit: np.ndarray, norm: np.ndarray, grad: np.ndarray, out: np.ndarray) -> None:
    """The gradient on q of u = q / max(|q|, eps) from the gradient on u: the part orthogonal
    to u over |q|, or all of it over eps where the norm was clamped (``norm`` < 0)."""
    for i in range(unit.shape[0]):
        m = norm[i]
        if m > 0:
            dot = unit[i, 0] * grad[i, 0] + unit[i, 1] * grad[i, 1] + unit[i, 2] * grad[i, 2] + unit[i, 3] * grad[i, 3]
            for c in range(4):
                out[i, c] = (grad[i, c] - unit[i, c] * dot) / m
        else:
            for c in range(4):
                out[i, c] = grad[i, c] / -m


class _Normalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, eps: float) -> Tensor:
        rows = _rows(q, q.shape)
        unit, norm = np.empty_like(rows), np.empty(len(rows), dtype=rows.dtype)
        _normalize_rows(rows, eps, unit, norm)
        out = torch.from_numpy(unit.reshape(q.shape))
        ctx.save_for_backward(out)  # the output is the backward's input: autograd guards it against edits
        ctx.norm, ctx.dtype = norm, q.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (out,) = ctx.saved_tensors
        g = _rows(grad.to(ctx.dtype), grad.shape)
        result = np.empty_like(g)
        _normalize_backward_rows(out.reshape(-1, 4).numpy(), ctx.norm, g, result)
        return torch.from_numpy(result).view(grad.shape), None


@numba.njit(cache=True, nogil=True)
def _matrix_rows(unit: np.ndarray, out: np.ndarray) -> None:
    """Row-major rotation matrices (M, 9) of unit quaternions (M, 4)."""
    for i in range(unit.shape[0]):
        w, x, y, z = unit[i, 0], unit[i, 1], unit[i, 2], unit[i, 3]
        xx, yy, zz = x * x, y * y, z * z
        xy, xz, yz = x * y, x * z, y * z
        wx, wy, wz = w * x, w * y, w * z
        out[i, 0], out[i, 1], out[i, 2] = 1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)
        out[i, 3], out[i, 4], out[i, 5] = 2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)
        out[i, 6], out[i, 7], out[i, 8] = 2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)


@numba.njit(cache=True, nogil=True)
def _matrix_backward_rows(unit: np.ndarray, grad: np.ndarray, out: np.ndarray) -> None:
    """The gradient on the unit quaternion (M, 4) of `_matrix_rows` from the gradient on its
    matrices (M, 9)."""
    for i in range(unit.shape[0]):
        w, x, y, z = unit[i, 0], unit[i, 1], unit[i, 2], unit[i, 3]
        g00, g01, g02 = grad[i, 0], grad[i, 1], grad[i, 2]
        g10, g11, g12 = grad[i, 3], grad[i, 4], grad[i, 5]
        g20, g21, g22 = grad[i, 6], grad[i, 7], grad[i, 8]
        out[i, 0] = 2 * (z * (g10 - g01) + y * (g02 - g20) + x * (g21 - g12))
        out[i, 1] = 2 * (y * (g01 + g10) + z * (g02 + g20) + w * (g21 - g12)) - 4 * x * (g11 + g22)
        out[i, 2] = 2 * (x * (g01 + g10) + w * (g02 - g20) + z * (g12 + g21)) - 4 * y * (g00 + g22)
        out[i, 3] = 2 * (w * (g10 - g01) + x * (g02 + g20) + y * (g12 + g21)) - 4 * z * (g00 + g11)


class _ToMatrix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor) -> Tensor:
        rows = _rows(q, q.shape)
        unit, norm = np.empty_like(rows), np.empty(len(rows), dtype=rows.dtype)
        _normalize_rows(rows, 1e-12, unit, norm)
        out = np.empty((len(rows), 9), dtype=rows.dtype)
        _matrix_rows(unit, out)
        ctx.unit, ctx.norm, ctx.dtype = unit, norm, q.dtype
        return torch.from_numpy(out.reshape(*q.shape[:-1], 3, 3))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        g = grad.to(ctx.dtype).reshape(-1, 9).contiguous().numpy()
        grad_unit = np.empty_like(ctx.unit)
        _matrix_backward_rows(ctx.unit, g, grad_unit)
        out = np.empty_like(grad_unit)
        _normalize_backward_rows(ctx.unit, ctx.norm, grad_unit, out)
        return torch.from_numpy(out).view(*grad.shape[:-2], 4)
