"""Best rotations of 3x3 cross-covariances (orthogonal Procrustes), for ARAP's local step.

``R`` maximising ``trace(R^T C)``: on a CPU by Horn's quaternion method - the top eigenvector of
a 4x4 symmetric matrix built from ``C``, by Newton's method on its characteristic polynomial
and the adjugate (as Theobald's QCP), or Jacobi sweeps where that is ill-conditioned - in numba,
on the worker threads; elsewhere the SVD ``U diag(1, 1, det(U V^T)) V^T``. The two agree to
float32 rounding (tests/flowgen/test_arap.py); timings in docs/performance.md.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import torch
from torch import Tensor

__all__ = ["PARALLEL_MIN", "contiguous_chunks", "horn_rotation", "horn_rotations", "procrustes_rotations", "svd_rotations"]


@numba.njit(cache=True)
def horn_rotation(c: np.ndarray, n: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
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
        horn_rotation(cross[i], n, v, out[i])


PARALLEL_MIN = 4096
"""Matrices below which `horn_rotations` stays on one thread (a thread hand-off costs more)."""


def contiguous_chunks(count: int, workers: int) -> list[np.ndarray]:
    """``workers`` contiguous (start, stop) ranges covering ``range(count)``."""
    bounds = np.linspace(0, count, max(workers, 1) + 1).astype(np.int64)
    return [np.array(pair) for pair in itertools.pairwise(bounds)]


def horn_rotations(cross: np.ndarray) -> np.ndarray:
    """(K, 3, 3) float64 -> (K, 3, 3) rotations, one per matrix (`horn_rotation`), in
    contiguous chunks on the rasteriser's worker threads (`num_workers`): each matrix's result
    is the same whichever thread computes it."""
    from flowgen.raster.tiling import for_tile_batches, num_workers

    out = np.empty(cross.shape)
    workers = num_workers()
    if workers == 1 or len(cross) < PARALLEL_MIN:
        _horn_range(cross, out, 0, len(cross))
        return out
    for_tile_batches(lambda _, chunk: _horn_range(cross, out, int(chunk[0]), int(chunk[1])),
                     contiguous_chunks(len(cross), workers))
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
