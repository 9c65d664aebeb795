"""As-rigid-as-possible energy on the near-surface point set S (paper Eq. 13).

For rest points ``x_i`` (the voxel centres S from :mod:`flowgen.control`), their 10
nearest neighbours ``N_i`` found once at rest, and the same points deformed by the
skinning, ``x'_i = x_i^t``:

    r_ij^t = (x'_i - x'_j) - R_i^t (x_i - x_j)
    E      = 1/T sum_t sum_i sum_{j in N_i} ||r_ij^t||^2

``R_i^t`` is the best local rotation (orthogonal Procrustes of the neighbour edges: on a CPU
by Horn's quaternion method - the top eigenvector of a 4x4 symmetric matrix, in numba by
Newton's method on its characteristic polynomial, or Jacobi sweeps where that is
ill-conditioned; elsewhere a 3x3 SVD with the reflection fixed; the two agree to float32
rounding, tested; timings in docs/performance.md). It is computed without gradient, as in the
local step of Sorkine & Alexa's local/global ARAP: because ``R_i`` minimises E over rotations, the
partial derivative through ``R_i`` vanishes at it (envelope theorem), so the gradient with
``R`` held fixed *is* the gradient of E - and no SVD backward (unstable for repeated
singular values) is ever taken.

E is zero for any rigid motion and grows with shear or stretch. :func:`arap_residuals`
gives the per-edge residuals for least-squares use; ``graph.num_edges`` normalises E to a
per-edge mean when a loss weight calls for it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numba
import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "ArapGraph",
    "arap_energy",
    "arap_energy_reference",
    "arap_energy_torch",
    "arap_graph",
    "arap_residuals",
    "local_rotations",
    "procrustes_rotations",
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


@numba.njit(cache=True)
def _horn_rotation(c: np.ndarray, n: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """The rotation R maximising trace(R^T c) for one 3x3 ``c`` (Horn 1987): the unit
    quaternion of the largest eigenvalue of the 4x4 symmetric matrix ``n`` built from ``c``
    (`_top_eigenvector`), written into ``out`` (3x3); ``n``, ``v``: 4x4 scratch."""
    sxx, sxy, sxz = c[0, 0], c[1, 0], c[2, 0]  # s = c^T
    syx, syy, syz = c[0, 1], c[1, 1], c[2, 1]
    szx, szy, szz = c[0, 2], c[1, 2], c[2, 2]
    n[0, 0], n[1, 1] = sxx + syy + szz, sxx - syy - szz
    n[2, 2], n[3, 3] = -sxx + syy - szz, -sxx - syy + szz
    n[0, 1] = n[1, 0] = syz - szy
    n[0, 2] = n[2, 0] = szx - sxz
    n[0, 3] = n[3, 0] = sxy - syx
    n[1, 2] = n[2, 1] = sxy + syx
    n[1, 3] = n[3, 1] = szx + sxz
    n[2, 3] = n[3, 2] = syz + szy
    q = np.empty(4)
    if not _top_eigenvector(n, v, q):
        _top_eigenvector_jacobi(n, v, q)
    w, x, y, z = q[0], q[1], q[2], q[3]
    out[0, 0], out[0, 1], out[0, 2] = w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)
    out[1, 0], out[1, 1], out[1, 2] = 2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)
    out[2, 0], out[2, 1], out[2, 2] = 2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z


@numba.njit(cache=True, inline="always")
def _det3(a: float, b: float, c: float, d: float, e: float, f: float, g: float, h: float, i: float) -> float:
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
"""Row r: the indices of a 4x4 matrix other than r (for its 3x3 minors)."""


@numba.njit(cache=True)
def _adjugate_column(a: np.ndarray, k: int, out: np.ndarray) -> float:
    """Column ``k`` of the adjugate of the 4x4 ``a`` into ``out`` (4,); returns its squared norm.
    ``adj(a)[r, k] = (-1)^(r + k) det(a without row k and column r)``."""
    rows = _OTHERS[k]
    norm = 0.0
    for r in range(4):
        cols = _OTHERS[r]
        cof = _det3(a[rows[0], cols[0]], a[rows[0], cols[1]], a[rows[0], cols[2]],
                    a[rows[1], cols[0]], a[rows[1], cols[1]], a[rows[1], cols[2]],
                    a[rows[2], cols[0]], a[rows[2], cols[1]], a[rows[2], cols[2]])
        out[r] = cof if (r + k) % 2 == 0 else -cof
        norm += out[r] * out[r]
    return norm


@numba.njit(cache=True, inline="always")
def _row_pair_minors(n: np.ndarray, a: int, b: int) -> tuple[float, float, float, float, float, float]:
    """The six 2x2 minors of rows ``a``, ``b`` of the 4x4 ``n``: columns 01, 02, 03, 12, 13, 23."""
    return (n[a, 0] * n[b, 1] - n[a, 1] * n[b, 0], n[a, 0] * n[b, 2] - n[a, 2] * n[b, 0],
            n[a, 0] * n[b, 3] - n[a, 3] * n[b, 0], n[a, 1] * n[b, 2] - n[a, 2] * n[b, 1],
            n[a, 1] * n[b, 3] - n[a, 3] * n[b, 1], n[a, 2] * n[b, 3] - n[a, 3] * n[b, 2])


@numba.njit(cache=True)
def _top_eigenvector(n: np.ndarray, a: np.ndarray, q: np.ndarray) -> bool:
    """The unit eigenvector ``q`` of the largest eigenvalue of the traceless symmetric 4x4
    ``n`` (Horn's matrix), as in Theobald's QCP: the eigenvalue by Newton's method on the
    characteristic polynomial ``l^4 + c2 l^2 + c1 l + c0`` from an upper bound (all its roots
    are real, so from above Newton descends monotonically onto the largest), the vector as the
    largest column of the adjugate of ``n - l I`` (``a``: 4x4 scratch). False when that column
    is too small to be trusted (the largest eigenvalue repeated or nearly, a zero matrix): the
    caller then diagonalises by Jacobi sweeps, which cost several times as much."""
    sq = 0.0
    for r in range(4):
        for k in range(4):
            sq += n[r, k] * n[r, k]
    if sq == 0.0:
        return False
    c2 = -0.5 * sq
    cube = 0.0  # trace(n^3)
    for r in range(4):
        for k in range(4):
            row = 0.0
            for m in range(4):
                row += n[r, m] * n[m, k]
            cube += row * n[k, r]
    c1 = -cube / 3.0
    m01, m02, m03, m12, m13, m23 = _row_pair_minors(n, 0, 1)
    p01, p02, p03, p12, p13, p23 = _row_pair_minors(n, 2, 3)
    c0 = m01 * p23 - m02 * p13 + m03 * p12 + m12 * p03 - m13 * p02 + m23 * p01  # det(n), Laplace by row pairs
    scale = np.sqrt(sq)
    lam = scale  # >= the largest eigenvalue (the Frobenius norm bounds every one)
    for _ in range(60):
        l2 = lam * lam
        value = (l2 + c2) * l2 + c1 * lam + c0
        slope = 4.0 * l2 * lam + 2.0 * c2 * lam + c1
        if slope <= 0.0:
            break
        step = value / slope
        lam -= step
        if abs(step) <= 1e-15 * scale:
            break
    for r in range(4):
        for k in range(4):
            a[r, k] = n[r, k] - (lam if r == k else 0.0)
    best, best_norm = -1, 0.0
    for k in range(4):  # column k of the adjugate (a is symmetric)
        norm = _adjugate_column(a, k, q)
        if norm > best_norm:
            best, best_norm = k, norm
    # adj(n - l I) = prod_k (l_k - l) v v^T: its largest column's norm is at least half the
    # product P of the gaps to the other eigenvalues. The polynomial's rounding (eps s^4) moves
    # the root by eps s^4 / P, and the vector by that over the smallest gap (>= P / s^2): an
    # error up to eps (s^3 / P)^2, kept below ~1e-8 by trusting only P >= 1e-4 s^3 (a nearly
    # collinear neighbourhood falls back; tested against the SVD there)
    if best < 0 or np.sqrt(best_norm) < 1e-4 * scale * scale * scale:
        return False
    norm = np.sqrt(_adjugate_column(a, best, q))
    for r in range(4):
        q[r] /= norm
    return True


@numba.njit(cache=True)
def _top_eigenvector_jacobi(n: np.ndarray, v: np.ndarray, vec: np.ndarray) -> None:
    """`_top_eigenvector` by cyclic Jacobi sweeps (``n`` is overwritten; ``v``: 4x4
    scratch): robust whatever the eigenvalues' multiplicity; the identity for a zero ``n``."""
    for a in range(4):
        for b in range(4):
            v[a, b] = 1.0 if a == b else 0.0
    for _ in range(12):
        off, diag = 0.0, 0.0
        for p in range(4):
            diag += n[p, p] * n[p, p]
            for q in range(p + 1, 4):
                off += n[p, q] * n[p, q]
        if off <= 1e-26 * (diag + off):
            break
        for p in range(3):
            for q in range(p + 1, 4):
                if n[p, q] == 0.0:
                    continue
                theta = (n[q, q] - n[p, p]) / (2.0 * n[p, q])
                t = (1.0 if theta >= 0.0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1.0))
                cs = 1.0 / np.sqrt(t * t + 1.0)
                sn = t * cs
                for k in range(4):
                    a, b = n[k, p], n[k, q]
                    n[k, p], n[k, q] = cs * a - sn * b, sn * a + cs * b
                for k in range(4):
                    a, b = n[p, k], n[q, k]
                    n[p, k], n[q, k] = cs * a - sn * b, sn * a + cs * b
                for k in range(4):
                    a, b = v[k, p], v[k, q]
                    v[k, p], v[k, q] = cs * a - sn * b, sn * a + cs * b
    best = 0
    for k in range(1, 4):
        if n[k, k] > n[best, best]:
            best = k
    vec[0], vec[1], vec[2], vec[3] = v[0, best], v[1, best], v[2, best], v[3, best]


@numba.njit(cache=True, nogil=True)
def _horn_range(cross: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    """Rotations of matrices ``start:stop`` of (K, 3, 3) float64 ``cross`` into ``out``."""
    n, v = np.empty((4, 4)), np.empty((4, 4))
    for i in range(start, stop):
        _horn_rotation(cross[i], n, v, out[i])


PARALLEL_MIN = 4096
"""Matrices below which `horn_rotations` stays on one thread (a thread hand-off costs more)."""


def _chunks(count: int, workers: int) -> list[np.ndarray]:
    """``workers`` contiguous (start, stop) ranges covering ``range(count)``."""
    bounds = np.linspace(0, count, max(workers, 1) + 1).astype(np.int64)
    return [np.array(pair) for pair in itertools.pairwise(bounds)]


def horn_rotations(cross: np.ndarray) -> np.ndarray:
    """(K, 3, 3) float64 -> (K, 3, 3) rotations, one per matrix (`_horn_rotation`), in
    contiguous chunks on the rasteriser's worker threads (`num_workers`): each matrix's result
    is the same whichever thread computes it."""
    from flowgen.raster.tiling import for_tile_batches, num_workers

    out = np.empty(cross.shape)
    workers = num_workers()
    if workers == 1 or len(cross) < PARALLEL_MIN:
        _horn_range(cross, out, 0, len(cross))
        return out
    for_tile_batches(lambda _, chunk: _horn_range(cross, out, int(chunk[0]), int(chunk[1])),
                     _chunks(len(cross), workers))
    return out


def procrustes_rotations(cross: Tensor) -> Tensor:
    """(..., 3, 3) rotations R maximising trace(R^T C) for cross-covariances C (..., 3, 3):
    Horn's method on a CPU, the SVD ``U diag(1, 1, det(U V^T)) V^T`` elsewhere."""
    if cross.device.type == "cpu":
        flat = np.ascontiguousarray(cross.detach().reshape(-1, 3, 3).double().numpy())
        return torch.from_numpy(horn_rotations(flat)).to(cross.dtype).reshape(cross.shape)
    return svd_rotations(cross)


def svd_rotations(cross: Tensor) -> Tensor:
    """`procrustes_rotations` by the SVD ``U diag(1, 1, det(U V^T)) V^T`` on any device."""
    u, _, vh = torch.linalg.svd(cross)
    fix = torch.ones_like(u[..., 0, :])
    fix[..., 2] = torch.linalg.det(u @ vh)
    return (u * fix[..., None, :]) @ vh


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
            _horn_rotation(cross, n4, v4, rot)
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
                                                   energy, grad), _chunks(frames, min(num_workers(), frames)))
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
