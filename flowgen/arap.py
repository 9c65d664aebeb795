"""As-rigid-as-possible energy on the near-surface point set S (paper Eq. 13).

For rest points ``x_i`` (the voxel centres S from :mod:`flowgen.control`), their 10
nearest neighbours ``N_i`` found once at rest, and the same points deformed by the
skinning, ``x'_i = x_i^t``:

    r_ij^t = (x'_i - x'_j) - R_i^t (x_i - x_j)
    E      = 1/T sum_t sum_i sum_{j in N_i} ||r_ij^t||^2

``R_i^t`` is the best local rotation (orthogonal Procrustes of the neighbour edges,
`flowgen.procrustes`: Horn's quaternion method in numba on a CPU, a 3x3 SVD elsewhere; the two
agree to float32 rounding). It is computed without gradient, as in the
local step of Sorkine & Alexa's local/global ARAP: because ``R_i`` minimises E over rotations, the
partial derivative through ``R_i`` vanishes at it (envelope theorem), so the gradient with
``R`` held fixed *is* the gradient of E - and no SVD backward (unstable for repeated
singular values) is ever taken.

E is zero for any rigid motion and grows with shear or stretch. :func:`arap_residuals`
gives the per-edge residuals for least-squares use; ``graph.num_edges`` normalises E to a
per-edge mean when a loss weight calls for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor
from torch.autograd.function import once_differentiable

from flowgen.procrustes import contiguous_chunks, horn_rotation, procrustes_rotations

__all__ = [
    "ArapGraph",
    "arap_energy",
    "arap_energy_reference",
    "arap_energy_torch",
    "arap_graph",
    "arap_residuals",
    "local_rotations",
]


@dataclass(frozen=True)
class ArapGraph:
    """Rest points and their neighbour edges.

    Attributes:
        rest: (M, 3) rest positions.
        neighbours: (M, n) int64 neighbour indices (self excluded), nearest first.
        valid: (M, n) bool; False marks padding where a point's group has <= n points.
        num_edges: valid (i, j) edges, the number of residuals per frame (counted once, on the
            host: the loop reads it every iteration).
    """

    rest: Tensor
    neighbours: Tensor
    valid: Tensor
    num_edges: int


def arap_graph(
    rest: Tensor, num_neighbours: int = 10, group: Tensor | np.ndarray | None = None
) -> ArapGraph:
    """Neighbour edges of (M, 3) rest points; with ``group`` (M,), only within a group.

    Restricting edges to a part keeps ARAP from coupling parts that move differently
    (a lid and its base) - the findings note saw ARAP drag a base along with its lid.
    """
    if rest.ndim != 2 or rest.shape[1] != 3:
        raise ValueError(f"rest must be (M, 3), got {tuple(rest.shape)}")
    points = rest.detach().cpu().double().numpy()
    count = len(points)
    ids = np.zeros(count, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    if ids.shape != (count,):
        raise ValueError(f"group must be (M,) = ({count},), got {ids.shape}")
    neighbours = np.zeros((count, num_neighbours), dtype=np.int64)
    valid = np.zeros((count, num_neighbours), dtype=bool)
    for gid in np.unique(ids):
        rows = np.flatnonzero(ids == gid)
        k = min(num_neighbours, len(rows) - 1)
        if k < 1:
            neighbours[rows] = rows[:, None]
            continue
        _, idx = cKDTree(points[rows]).query(points[rows], k=k + 1)
        idx = np.asarray(idx).reshape(len(rows), k + 1)
        neighbours[rows, :k] = rows[idx[:, 1:]]  # column 0 is the point itself
        neighbours[rows, k:] = rows[:, None]  # padding: a zero-length self edge
        valid[rows, :k] = True
    device = rest.device
    return ArapGraph(
        rest, torch.from_numpy(neighbours).to(device), torch.from_numpy(valid).to(device), int(valid.sum())
    )


def _edges(points: Tensor, graph: ArapGraph) -> Tensor:
    """(…, M, n, 3) edges x_i - x_j of (…, M, 3) points, zero on padding."""
    edges = points[..., :, None, :] - points[..., graph.neighbours, :]
    return edges * graph.valid[..., None].to(points.dtype)


def local_rotations(graph: ArapGraph, deformed: Tensor) -> Tensor:
    """(T, M, 3, 3) best rotations taking rest edges onto deformed edges (no gradient).

    Procrustes: with ``C_i = sum_j e'_ij e_ij^T = U S V^T``, ``R_i = U diag(1, 1, d) V^T``
    and ``d = det(U V^T)`` so that R_i is a rotation, not a reflection
    (`procrustes_rotations`).
    """
    assert deformed.ndim == 3 and deformed.shape[1:] == graph.rest.shape, (
        f"deformed must be (T, M, 3) with M = {graph.rest.shape[0]}, got {tuple(deformed.shape)}"
    )
    with torch.no_grad():
        rest_edges = _edges(graph.rest.to(deformed.dtype), graph)  # (M, n, 3)
        moved_edges = _edges(deformed.detach(), graph)  # (T, M, n, 3)
        cross = moved_edges.transpose(-1, -2) @ rest_edges  # (T, M, 3, 3)
        return procrustes_rotations(cross)


def arap_residuals(graph: ArapGraph, deformed: Tensor, rotations: Tensor | None = None) -> Tensor:
    """(T, M, n, 3) residuals ``(x'_i - x'_j) - R_i (x_i - x_j)``, zero on padding.

    Args:
        graph: from :func:`arap_graph`.
        deformed: (T, M, 3) deformed positions of ``graph.rest``.
        rotations: (T, M, 3, 3), default :func:`local_rotations` (detached).
    """
    if rotations is None:
        rotations = local_rotations(graph, deformed)
    rest_edges = _edges(graph.rest.to(deformed.dtype), graph)  # (M, n, 3)
    rotated = rest_edges @ rotations.transpose(-1, -2)  # (T, M, n, 3): R_i e_ij
    return _edges(deformed, graph) - rotated


def arap_energy(graph: ArapGraph, deformed: Tensor) -> Tensor:
    """Scalar ARAP energy: squared residuals summed over edges, averaged over frames.

    On a CPU one numba pass per frame (`_arap_frames`: cross-covariances, Horn rotations,
    residuals, the energy and its gradient together, frames spread over the worker threads);
    elsewhere `arap_energy_torch`. The two agree to float32 rounding (tested)."""
    if deformed.ndim != 3 or deformed.shape[1:] != graph.rest.shape:
        raise ValueError(f"deformed must be (T, M, 3) with M = {graph.rest.shape[0]}, got {tuple(deformed.shape)}")
    if deformed.device.type == "cpu":
        return _ArapEnergy.apply(deformed, graph)
    return arap_energy_torch(graph, deformed)


def arap_energy_torch(graph: ArapGraph, deformed: Tensor) -> Tensor:
    """`arap_energy` from `arap_residuals` (torch ops on any device)."""
    residuals = arap_residuals(graph, deformed)
    return residuals.square().sum(dim=(1, 2, 3)).mean()


@numba.njit(cache=True, nogil=True)
def _arap_frames(rest_edges: np.ndarray, neighbours: np.ndarray, valid: np.ndarray, deformed: np.ndarray,
                 start: int, stop: int, energy: np.ndarray, grad: np.ndarray) -> None:
    """Frames ``start:stop`` of (T, M, 3) ``deformed``: each frame's energy (sum over edges of
    ``|r_ij|^2``) into ``energy`` (T,) and its gradient into ``grad`` (T, M, 3), in float64.

    ``r_ij = (x'_i - x'_j) - R_i e_ij`` with ``R_i`` the Horn rotation of the cross-covariance
    ``sum_j (x'_i - x'_j) e_ij^T``, held fixed (module docstring); the gradient adds ``2 r_ij``
    to point i and ``-2 r_ij`` to point j, in one fixed order.
    """
    count, num = neighbours.shape
    cross, rot = np.empty((3, 3)), np.empty((3, 3))
    n4, v4 = np.empty((4, 4)), np.empty((4, 4))
    moved = np.empty((num, 3))
    for t in range(start, stop):
        x = deformed[t]
        total = 0.0
        for i in range(count):
            cross[:] = 0.0
            for j in range(num):
                if not valid[i, j]:
                    moved[j] = 0.0
                    continue
                k = neighbours[i, j]
                for a in range(3):
                    moved[j, a] = np.float64(x[i, a]) - np.float64(x[k, a])
                for a in range(3):
                    for b in range(3):
                        cross[a, b] += moved[j, a] * rest_edges[i, j, b]
            horn_rotation(cross, n4, v4, rot)
            for j in range(num):
                if not valid[i, j]:
                    continue
                k = neighbours[i, j]
                for a in range(3):
                    r = moved[j, a] - (rot[a, 0] * rest_edges[i, j, 0] + rot[a, 1] * rest_edges[i, j, 1]
                                       + rot[a, 2] * rest_edges[i, j, 2])
                    total += r * r
                    grad[t, i, a] += 2.0 * r
                    grad[t, k, a] -= 2.0 * r
        energy[t] = total


class _ArapEnergy(torch.autograd.Function):
    """`arap_energy` on a CPU: the energy and its gradient from one pass (`_arap_frames`)."""

    @staticmethod
    def forward(ctx, deformed: Tensor, graph: ArapGraph) -> Tensor:
        from flowgen.raster.tiling import for_tile_batches, num_workers

        points = np.ascontiguousarray(deformed.detach().numpy())
        rest = graph.rest.detach().double()
        rest_edges = np.ascontiguousarray(_edges(rest, graph).numpy())
        neighbours, valid = graph.neighbours.numpy(), graph.valid.numpy()
        frames = points.shape[0]
        energy, grad = np.zeros(frames), np.zeros(points.shape)
        for_tile_batches(lambda _, c: _arap_frames(rest_edges, neighbours, valid, points, int(c[0]), int(c[1]),
                                                   energy, grad), contiguous_chunks(frames, min(num_workers(), frames)))
        ctx.save_for_backward(torch.from_numpy(grad / max(frames, 1)).to(deformed.dtype))
        return deformed.new_tensor(energy.mean() if frames else 0.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, upstream: Tensor) -> tuple[Tensor, None]:
        (grad,) = ctx.saved_tensors
        return upstream * grad, None


def arap_energy_reference(rest: Tensor, deformed: Tensor, num_neighbours: int = 10) -> Tensor:
    """Plain-loop ARAP energy with brute-force neighbours (tests only; tiny sizes)."""
    count = rest.shape[0]
    total = torch.zeros((), dtype=deformed.dtype)
    for t in range(deformed.shape[0]):
        for i in range(count):
            dist = ((rest - rest[i]) ** 2).sum(-1)
            dist[i] = float("inf")
            nbrs = torch.argsort(dist)[:num_neighbours].tolist()
            cross = torch.zeros(3, 3, dtype=deformed.dtype)
            for j in nbrs:
                cross += torch.outer(deformed[t, i] - deformed[t, j], rest[i] - rest[j])
            u, _, vh = torch.linalg.svd(cross.detach())
            d = torch.linalg.det(u @ vh)
            rot = u @ torch.diag(torch.stack((torch.ones_like(d), torch.ones_like(d), d))) @ vh
            for j in nbrs:
                r = (deformed[t, i] - deformed[t, j]) - rot @ (rest[i] - rest[j])
                total = total + r @ r
    return total / deformed.shape[0]
