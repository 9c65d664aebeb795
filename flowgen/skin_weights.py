"""Skinning weights on a CPU: each point's normalised Gaussian weights of its bound controls.

    u = R_c^T (x_n - p_c) / s_c          (the offset in the control's frame, in its scales)
    w[n, j] = softmax_j(-|u|^2 / 2)      over the point's valid controls, padding 0

`flowgen.skinning.skinning_weights` recomputes these for every point set and control level in
every iteration (the scales and rotations are learned). In torch that is a few gathers of
(N, k, 3, 3) matrices, whose backward (an accumulating index_put per gather) dominates; here
one numba pass per point computes the weights, and the backward adds each pair's gradient
into its control's rotation and scales serially, so every run sums in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from flowgen.quat import quat_to_matrix

if TYPE_CHECKING:
    from flowgen.skinning import Binding, ControlLevel

__all__ = ["gaussian_weights", "skinning_weights_torch"]


@numba.njit(cache=True, inline="always")
def _local(points, centres, rot, n, c):
    """(d, u): the offset x_n - p_c and u = R_c^T d (d itself for unturned controls)."""
    d0, d1, d2 = points[n, 0] - centres[c, 0], points[n, 1] - centres[c, 1], points[n, 2] - centres[c, 2]
    if rot.shape[0] == 0:
        return d0, d1, d2, d0, d1, d2
    return (d0, d1, d2,
            rot[c, 0, 0] * d0 + rot[c, 1, 0] * d1 + rot[c, 2, 0] * d2,
            rot[c, 0, 1] * d0 + rot[c, 1, 1] * d1 + rot[c, 2, 1] * d2,
            rot[c, 0, 2] * d0 + rot[c, 1, 2] * d1 + rot[c, 2, 2] * d2)


@numba.njit(cache=True)
def _forward(points, centres, index, valid, rot, inv_scales, weights) -> None:
    for n in range(index.shape[0]):
        top = -np.inf
        for j in range(index.shape[1]):
            if not valid[n, j]:
                weights[n, j] = -np.inf
                continue
            c = index[n, j]
            _, _, _, u0, u1, u2 = _local(points, centres, rot, n, c)
            v0, v1, v2 = u0 * inv_scales[c, 0], u1 * inv_scales[c, 1], u2 * inv_scales[c, 2]
            logit = -0.5 * (v0 * v0 + v1 * v1 + v2 * v2)
            weights[n, j] = logit
            top = max(top, logit)
        total = 0.0
        for j in range(index.shape[1]):
            e = np.exp(weights[n, j] - top)
            weights[n, j] = e
            total += e
        for j in range(index.shape[1]):
            weights[n, j] /= total


@numba.njit(cache=True)
def _backward(grad, weights, points, centres, index, rot, inv_scales,
              grad_points, grad_centres, grad_rot, grad_inv_scales) -> None:
    """Adds the gradients of (points, centres, rot, inv_scales) into the non-empty outputs."""
    turned = rot.shape[0] > 0
    for n in range(index.shape[0]):
        mean = 0.0
        for j in range(index.shape[1]):
            mean += weights[n, j] * grad[n, j]
        for j in range(index.shape[1]):
            w = weights[n, j]
            if not w > 0.0:  # padding (and NaN rows, as torch's masked softmax gives none)
                continue
            c = index[n, j]
            d0, d1, d2, u0, u1, u2 = _local(points, centres, rot, n, c)
            dm = -0.5 * w * (grad[n, j] - mean)  # d loss / d |u / s|^2 (the softmax's backward)
            s0, s1, s2 = inv_scales[c, 0], inv_scales[c, 1], inv_scales[c, 2]
            if grad_inv_scales.shape[0] > 0:
                grad_inv_scales[c, 0] += 2.0 * dm * u0 * u0 * s0
                grad_inv_scales[c, 1] += 2.0 * dm * u1 * u1 * s1
                grad_inv_scales[c, 2] += 2.0 * dm * u2 * u2 * s2
            du0, du1, du2 = 2.0 * dm * u0 * s0 * s0, 2.0 * dm * u1 * s1 * s1, 2.0 * dm * u2 * s2 * s2
            if turned:
                if grad_rot.shape[0] > 0:  # u_a = sum_b R[b, a] d_b
                    grad_rot[c, 0, 0] += d0 * du0
                    grad_rot[c, 0, 1] += d0 * du1
                    grad_rot[c, 0, 2] += d0 * du2
                    grad_rot[c, 1, 0] += d1 * du0
                    grad_rot[c, 1, 1] += d1 * du1
                    grad_rot[c, 1, 2] += d1 * du2
                    grad_rot[c, 2, 0] += d2 * du0
                    grad_rot[c, 2, 1] += d2 * du1
                    grad_rot[c, 2, 2] += d2 * du2
                dd0 = rot[c, 0, 0] * du0 + rot[c, 0, 1] * du1 + rot[c, 0, 2] * du2
                dd1 = rot[c, 1, 0] * du0 + rot[c, 1, 1] * du1 + rot[c, 1, 2] * du2
                dd2 = rot[c, 2, 0] * du0 + rot[c, 2, 1] * du1 + rot[c, 2, 2] * du2
            else:
                dd0, dd1, dd2 = du0, du1, du2
            if grad_points.shape[0] > 0:
                grad_points[n, 0] += dd0
                grad_points[n, 1] += dd1
                grad_points[n, 2] += dd2
            if grad_centres.shape[0] > 0:
                grad_centres[c, 0] -= dd0
                grad_centres[c, 1] -= dd1
                grad_centres[c, 2] -= dd2


def _empty(like: Tensor, needed: bool) -> Tensor:
    return torch.zeros_like(like) if needed else like.new_zeros((0, *like.shape[1:]))


class _GaussianWeights(torch.autograd.Function):
    @staticmethod
    def forward(ctx, points: Tensor, centres: Tensor, index: Tensor, valid: Tensor, rot: Tensor,
                inv_scales: Tensor) -> Tensor:
        points, centres, rot, inv_scales = (t.detach().contiguous() for t in (points, centres, rot, inv_scales))
        index, valid = index.contiguous(), valid.contiguous()
        weights = torch.empty(index.shape, dtype=points.dtype)
        _forward(points.numpy(), centres.numpy(), index.numpy(), valid.numpy(), rot.numpy(), inv_scales.numpy(),
                 weights.numpy())
        ctx.save_for_backward(weights, points, centres, index, rot, inv_scales)
        return weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        weights, points, centres, index, rot, inv_scales = ctx.saved_tensors
        need = ctx.needs_input_grad
        outs = [_empty(points, need[0]), _empty(centres, need[1]), _empty(rot, need[4] and rot.shape[0] > 0),
                _empty(inv_scales, need[5])]
        _backward(grad.contiguous().numpy(), weights.numpy(), points.numpy(), centres.numpy(), index.numpy(),
                  rot.numpy(), inv_scales.numpy(), *(o.numpy() for o in outs))
        grad_points, grad_centres, grad_rot, grad_inv_scales = (o if n else None for o, n in
                                                                 zip(outs, (need[0], need[1], need[4], need[5])))
        return grad_points, grad_centres, None, None, grad_rot, grad_inv_scales


def gaussian_weights(points: Tensor, centres: Tensor, index: Tensor, valid: Tensor, rot: Tensor | None,
                     inv_scales: Tensor) -> Tensor:
    """(N, k) softmax over each point's valid controls of ``-|R_c^T (x_n - p_c) / s_c|^2 / 2``.

    Args:
        points: (N, 3); centres: (K, 3); index: (N, k) int64; valid: (N, k) bool.
        rot: (K, 3, 3) control rotations R_c, or None for the identity.
        inv_scales: (K, 3) 1 / s_c per axis (an isotropic scale repeated).
    Differentiable with respect to the points, centres, rotations and inverse scales.
    """
    num = centres.shape[0]
    if rot is None:
        rot = points.new_zeros((0, 3, 3))
    if points.shape[1:] != (3,) or centres.shape != (num, 3) or inv_scales.shape != (num, 3) \
            or rot.shape not in ((0, 3, 3), (num, 3, 3)) or index.shape != valid.shape or index.ndim != 2 \
            or index.shape[0] != points.shape[0]:
        raise ValueError(f"bad shapes: points {tuple(points.shape)}, centres {tuple(centres.shape)}, rot "
                         f"{tuple(rot.shape)}, inv_scales {tuple(inv_scales.shape)}, index {tuple(index.shape)}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num):
        raise ValueError(f"control index out of range [0, {num})")
    return _GaussianWeights.apply(points, centres, index, valid, rot, inv_scales)


def skinning_weights_torch(points: Tensor, level: ControlLevel, binding: Binding) -> Tensor:
    """`flowgen.skinning.skinning_weights` in torch ops (any device)."""
    offsets = points[:, None, :] - level.centres[binding.index]  # (N, k, 3)
    if level.rotations is not None:  # into each control's frame: R_k^T (x - p_k)
        rot = quat_to_matrix(level.rotations)[binding.index]  # (N, k, 3, 3)
        offsets = (rot.transpose(-1, -2) @ offsets[..., None])[..., 0]
    scales = level.log_scales.exp()[binding.index]  # (N, k) or (N, k, 3)
    if scales.ndim == 2:
        scales = scales[..., None]
    mahalanobis = ((offsets / scales) ** 2).sum(-1)  # (N, k)
    logits = (-0.5 * mahalanobis).masked_fill(~binding.valid, float("-inf"))
    return torch.softmax(logits, dim=-1)
