"""The skinning blend: each point's weighted sum of the values of its bound control points.

    out[n] = sum_j weights[n, j] * values[index[n, j]]            (N, D) from (K, D)

`flowgen.skinning` blends all frames' control channels at once (D = T x 16), so this product
runs several times per iteration on a few thousand points. On a CPU it is a numba kernel with
a hand-written backward (d/dweights: each pair's dot product with the output's gradient;
d/dvalues: the weighted gradients added into the rows they came from, serially, so every run
sums in the same order; two loops, each of which the compiler vectorises, and each only when
its input needs a gradient), in place of torch's sparse product, whose backward builds, coalesces
and masks sparse tensors (timings: benchmarks/run.py, "skinning blend"; docs/performance.md).
On CUDA it is torch's sparse (N, K) x (K, D) product; on ``meta`` (a dry run's device, which
has no sparse kernels) a gather.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["blend_rows", "blend_rows_sparse"]


@numba.njit(cache=True)
def _forward(weights: np.ndarray, index: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    for n in range(index.shape[0]):
        for j in range(index.shape[1]):
            w = weights[n, j]
            if w == 0.0:  # padding of a point with fewer controls in its group
                continue
            row = index[n, j]
            for d in range(values.shape[1]):
                out[n, d] += w * values[row, d]


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _grad_weights(index: np.ndarray, values: np.ndarray, grad: np.ndarray, grad_weights: np.ndarray) -> None:
    for n in range(index.shape[0]):
        for j in range(index.shape[1]):
            row = index[n, j]
            dot = 0.0
            for d in range(values.shape[1]):
                dot += grad[n, d] * values[row, d]
            grad_weights[n, j] = dot


@numba.njit(cache=True)
def _grad_values(weights: np.ndarray, index: np.ndarray, grad: np.ndarray, grad_values: np.ndarray) -> None:
    for n in range(index.shape[0]):
        for j in range(index.shape[1]):
            w = weights[n, j]
            if w == 0.0:
                continue
            into, g = grad_values[index[n, j]], grad[n]
            for d in range(g.shape[0]):
                into[d] += w * g[d]


class _BlendRows(torch.autograd.Function):
    """`blend_rows` on the CPU by `_forward`, its gradients by `_grad_weights` and `_grad_values`."""

    @staticmethod
    def forward(ctx, weights: Tensor, index: Tensor, values: Tensor) -> Tensor:
        weights, values = weights.detach().contiguous(), values.detach().contiguous()
        index = index.contiguous()
        out = torch.zeros(weights.shape[0], values.shape[1], dtype=values.dtype)
        _forward(weights.numpy(), index.numpy(), values.numpy(), out.numpy())
        ctx.save_for_backward(weights, index, values)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        weights, index, values = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weights = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_weights = torch.empty_like(weights)
            _grad_weights(index.numpy(), values.numpy(), grad.numpy(), grad_weights.numpy())
        if ctx.needs_input_grad[2]:
            grad_values = torch.zeros_like(values)
            _grad_values(weights.numpy(), index.numpy(), grad.numpy(), grad_values.numpy())
        return grad_weights, None, grad_values


def blend_rows(weights: Tensor, index: Tensor, values: Tensor) -> Tensor:
    """(N, D) weighted sums ``sum_j weights[n, j] values[index[n, j]]``, differentiable with
    respect to ``weights`` (N, k) and ``values`` (K, D); ``index`` (N, k) int64."""
    assert weights.shape == index.shape and values.ndim == 2, (weights.shape, index.shape, values.shape)
    if weights.device.type == "cpu":
        assert weights.dtype == values.dtype, (weights.dtype, values.dtype)
        return _BlendRows.apply(weights, index, values)
    if weights.device.type == "meta":
        return (weights[..., None] * values[index]).sum(1)
    return blend_rows_sparse(weights, index, values)


def blend_rows_sparse(weights: Tensor, index: Tensor, values: Tensor) -> Tensor:
    """`blend_rows` as one sparse (N, K) x (K, D) product (any device with sparse kernels)."""
    num_points, k = weights.shape
    rows = torch.arange(num_points, device=weights.device)[:, None].expand(num_points, k)
    sparse = torch.sparse_coo_tensor(torch.stack((rows.reshape(-1), index.reshape(-1))), weights.reshape(-1),
                                     (num_points, values.shape[0]), check_invariants=False)
    return torch.sparse.mm(sparse, values)
