"""Small quaternion helpers (torch), scalar-first: q = (w, x, y, z) everywhere.

All functions broadcast over leading axes and are differentiable. Products use the
Hamilton convention, so ``quat_to_matrix(quat_multiply(a, b)) == R(a) @ R(b)``: the
right-hand factor is applied first.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "quat_identity",
    "quat_multiply",
    "quat_conjugate",
    "quat_normalize",
    "quat_canonical",
    "quat_to_matrix",
    "matrix_to_quat",
    "quat_rotate",
    "quat_continuous",
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
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def quat_canonical(q: Tensor) -> Tensor:
    """Flip (..., 4) quaternions onto the w >= 0 hemisphere (same rotation)."""
    return torch.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of (..., 4) wxyz quaternions (normalised first)."""
    w, x, y, z = quat_normalize(q).unbind(-1)
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
