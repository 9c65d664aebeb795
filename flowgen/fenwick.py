"""Per-control-point deformation sequences stored in a Fenwick tree over time (DESIGN §4).

Frame 0 is the rest pose: identity, not stored, never optimised. For frames 1..T-1, node
``j`` stores a quaternion ``r[j]`` (wxyz) and a translation ``T[j]`` per control point and
covers the frames ``(j - lowbit(j), j]``. The deformation at frame ``t`` composes the nodes
on the Fenwick prefix path ``BIT(t) = (j_0 = t, j_1 = j_0 - lowbit(j_0), ..., j_m)``,
which ends when ``j_m - lowbit(j_m) == 0``:

    T_t = sum_{j in BIT(t)} T[j]
    q_t = normalise(r[j_0] ⊗ r[j_1] ⊗ ... ⊗ r[j_m])

Composition order (fixed): the node of the *latest* range is the left-most factor. Node
``j_i`` covers a later range of frames than ``j_{i+1}``, and the right-most factor of a
Hamilton product acts first, so the earliest range's rotation is applied first - the
same way a motion accumulates over time. Nodes need not be unit quaternions: since
``|a ⊗ b| = |a| |b|``, normalising the product once equals normalising every factor.
Translations are summed, not rotated by earlier nodes (paper Eq. 10-11), so ``(q_t, T_t)``
is the per-frame control deformation that skinning consumes, not an SE(3) product.

Nearby frames share nodes (frames 6 and 7 share node 6), which couples them and lets
late frames move before their own nodes have learned anything (the paper's argument).

``PerFrameStore`` is the paper's "w/o Fenwick tree" ablation: one independent
deformation per frame, behind the same functions.

Stores are frozen dataclasses of tensors. For optimisation, wrap the leaves with
:func:`as_parameters` (or pass ``requires_grad=True`` to the constructors) and hand
``store.quats, store.trans`` to the optimiser. :func:`split` returns a *new* store: copy it
into the live parameters under ``torch.no_grad()`` (and reset their optimiser state).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from flowgen.quat import quat_conjugate, quat_identity, quat_multiply, quat_normalize

__all__ = [
    "FenwickStore",
    "PerFrameStore",
    "DeformationStore",
    "lowbit",
    "fenwick_path",
    "fenwick_path_matrix",
    "fenwick_identity",
    "per_frame_identity",
    "from_per_frame",
    "per_frame_from_per_frame",
    "query_all",
    "naive_query",
    "split",
    "as_parameters",
]


@dataclass(frozen=True)
class FenwickStore:
    """Fenwick-tree nodes 1..T-1 for K control points.

    Attributes:
        quats: (T-1, K, 4) wxyz node rotations ``r[j]``; row ``j - 1`` is node ``j``.
            Need not be unit: queries normalise.
        trans: (T-1, K, 3) node translations ``T[j]``.
    """

    quats: Tensor
    trans: Tensor

    def __post_init__(self) -> None:
        _check_nodes(self.quats, self.trans)

    @property
    def num_frames(self) -> int:
        """T, including the rest frame 0."""
        return self.quats.shape[0] + 1

    @property
    def num_controls(self) -> int:
        """K."""
        return self.quats.shape[1]


@dataclass(frozen=True)
class PerFrameStore:
    """Independent per-frame deformations for frames 1..T-1 (the paper's ablation).

    Attributes:
        quats: (T-1, K, 4) wxyz rotation of frame ``t`` in row ``t - 1`` (need not be unit).
        trans: (T-1, K, 3) translation of frame ``t`` in row ``t - 1``.
    """

    quats: Tensor
    trans: Tensor

    def __post_init__(self) -> None:
        _check_nodes(self.quats, self.trans)

    @property
    def num_frames(self) -> int:
        """T, including the rest frame 0."""
        return self.quats.shape[0] + 1

    @property
    def num_controls(self) -> int:
        """K."""
        return self.quats.shape[1]


DeformationStore = FenwickStore | PerFrameStore


def _check_nodes(quats: Tensor, trans: Tensor) -> None:
    if quats.ndim != 3 or quats.shape[-1] != 4:
        raise ValueError(f"quats must be (T-1, K, 4), got {tuple(quats.shape)}")
    if trans.shape != (*quats.shape[:2], 3):
        raise ValueError(
            f"trans must be (T-1, K, 3) = {(*quats.shape[:2], 3)}, got {tuple(trans.shape)}"
        )


# --------------------------------------------------------------------------- index maths


def lowbit(j: int) -> int:
    """The lowest set bit of ``j`` (``j & -j``): node ``j`` covers ``lowbit(j)`` frames."""
    return j & -j


def fenwick_path(t: int) -> list[int]:
    """Nodes composed for frame ``t``, latest range first: ``[t, t - lowbit(t), ...]``."""
    path = []
    while t > 0:
        path.append(t)
        t -= lowbit(t)
    return path


@lru_cache(maxsize=64)
def _path_matrix_cpu(num_frames: int) -> Tensor:
    paths = [fenwick_path(t) for t in range(num_frames)]
    width = max(1, max(len(p) for p in paths))
    rows = [p + [0] * (width - len(p)) for p in paths]
    return torch.tensor(rows, dtype=torch.long)


def fenwick_path_matrix(num_frames: int, device: torch.device | str | None = None) -> Tensor:
    """(T, L) node indices of every frame's prefix path, padded with 0 (the identity).

    Row ``t`` is :func:`fenwick_path` ``(t)`` followed by zeros; ``L`` is the longest path
    (the largest popcount below T, at most ``ceil(log2 T)``). Cached per T.
    """
    return _path_matrix_cpu(num_frames).to(device)


def _parents(num_frames: int) -> Tensor:
    """(T-1,) ``j - lowbit(j)`` for nodes j = 1..T-1: the frame whose query node j extends."""
    return torch.tensor([j - lowbit(j) for j in range(1, num_frames)], dtype=torch.long)


# --------------------------------------------------------------------------- constructors


def fenwick_identity(
    num_frames: int,
    num_controls: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    requires_grad: bool = False,
) -> FenwickStore:
    """A Fenwick store whose every frame is the identity (the paper's initialisation)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 (frame 0 is the rest pose), got {num_frames}")
    quats = quat_identity(num_frames - 1, num_controls, dtype=dtype, device=device)
    trans = torch.zeros(num_frames - 1, num_controls, 3, dtype=dtype, device=device)
    return FenwickStore(quats.requires_grad_(requires_grad), trans.requires_grad_(requires_grad))


def per_frame_identity(
    num_frames: int,
    num_controls: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    requires_grad: bool = False,
) -> PerFrameStore:
    """A per-frame store whose every frame is the identity."""
    store = fenwick_identity(
        num_frames, num_controls, dtype=dtype, device=device, requires_grad=requires_grad
    )
    return PerFrameStore(store.quats, store.trans)


def _check_per_frame(quats: Tensor, trans: Tensor) -> None:
    if quats.ndim != 3 or quats.shape[-1] != 4 or trans.shape != (*quats.shape[:2], 3):
        raise ValueError(
            "per-frame deformations must be quats (T, K, 4) and trans (T, K, 3), got "
            f"{tuple(quats.shape)} and {tuple(trans.shape)}"
        )
    if quats.shape[0] < 1:
        raise ValueError("per-frame deformations need at least frame 0")
    identity = quat_identity(1, dtype=quats.dtype, device=quats.device)
    rest_rot_ok = torch.allclose(quat_normalize(quats[0]), identity.expand_as(quats[0]), atol=1e-5)
    if not rest_rot_ok or not torch.allclose(trans[0], torch.zeros_like(trans[0]), atol=1e-7):
        raise ValueError(
            "frame 0 is the rest pose and must be the identity (quat (1,0,0,0), translation 0); "
            "express the deformations relative to frame 0 first"
        )


def from_per_frame(quats: Tensor, trans: Tensor) -> FenwickStore:
    """Fenwick nodes whose queries reproduce the given per-frame deformations.

    Node ``j`` extends the query of its parent ``p = j - lowbit(j)``, so
    ``r[j] = q_j ⊗ conj(q_p)`` and ``T[j] = T_j - T_p`` with unit ``q``; then
    ``query(j) = r[j] ⊗ q_p = q_j`` exactly (up to rounding), with the sign of ``q_j`` kept.

    Args:
        quats: (T, K, 4) wxyz per-frame rotations; frame 0 must be the identity.
        trans: (T, K, 3) per-frame translations; frame 0 must be zero.

    Returns:
        A FenwickStore with (T-1, K, ·) nodes, differentiable w.r.t. the inputs.
    """
    _check_per_frame(quats, trans)
    num_frames = quats.shape[0]
    if num_frames == 1:
        return FenwickStore(quats[1:].clone(), trans[1:].clone())
    unit = quat_normalize(quats)
    parents = _parents(num_frames).to(quats.device)
    node_quats = quat_multiply(unit[1:], quat_conjugate(unit[parents]))
    node_trans = trans[1:] - trans[parents]
    return FenwickStore(node_quats, node_trans)


def per_frame_from_per_frame(quats: Tensor, trans: Tensor) -> PerFrameStore:
    """A PerFrameStore holding the given (T, K, 4) / (T, K, 3) deformations (frame 0 = identity)."""
    _check_per_frame(quats, trans)
    return PerFrameStore(quats[1:].clone(), trans[1:].clone())


def as_parameters(store: DeformationStore) -> DeformationStore:
    """The same store with its leaves wrapped as (new, detached) ``torch.nn.Parameter``s."""
    quats = torch.nn.Parameter(store.quats.detach().clone())
    trans = torch.nn.Parameter(store.trans.detach().clone())
    return type(store)(quats, trans)


# --------------------------------------------------------------------------- queries


def query_all(store: DeformationStore) -> tuple[Tensor, Tensor]:
    """Deformations of all T frames at once, differentiable w.r.t. the store.

    Fenwick: gathers every frame's padded prefix path (a (T, L) index matrix, cached),
    then reduces over the L path slots - L <= ceil(log2 T) products, no loop over frames.

    Returns:
        quats: (T, K, 4) unit wxyz rotations; ``quats[0]`` is the identity.
        trans: (T, K, 3) translations; ``trans[0]`` is zero.
    """
    match store:
        case FenwickStore():
            return _fenwick_query_all(store)
        case PerFrameStore():
            return _with_rest_frame(quat_normalize(store.quats), store.trans)
    raise TypeError(f"expected FenwickStore or PerFrameStore, got {type(store).__name__}")


def _with_rest_frame(quats: Tensor, trans: Tensor) -> tuple[Tensor, Tensor]:
    """Prepend the identity frame 0 to (T-1, K, ·) tensors."""
    rest_q = quat_identity(1, quats.shape[1], dtype=quats.dtype, device=quats.device)
    rest_t = torch.zeros(1, trans.shape[1], 3, dtype=trans.dtype, device=trans.device)
    return torch.cat((rest_q, quats), 0), torch.cat((rest_t, trans), 0)


def _fenwick_query_all(store: FenwickStore) -> tuple[Tensor, Tensor]:
    nodes_q, nodes_t = _with_rest_frame(store.quats, store.trans)  # node 0 = identity pad
    paths = fenwick_path_matrix(store.num_frames, device=nodes_q.device)  # (T, L)
    path_q = nodes_q[paths]  # (T, L, K, 4)
    trans = nodes_t[paths].sum(dim=1)  # (T, K, 3)
    quats = path_q[:, 0]
    for slot in range(1, paths.shape[1]):  # later range on the left, see module docstring
        quats = quat_multiply(quats, path_q[:, slot])
    return quat_normalize(quats), trans


def naive_query(store: DeformationStore, t: int) -> tuple[Tensor, Tensor]:
    """Reference query of one frame by walking the path in Python (tests only).

    Returns:
        quat: (K, 4) unit wxyz; trans: (K, 3).
    """
    if not 0 <= t < store.num_frames:
        raise IndexError(f"frame {t} outside 0..{store.num_frames - 1}")
    quat = quat_identity(store.num_controls, dtype=store.quats.dtype, device=store.quats.device)
    trans = torch.zeros(store.num_controls, 3, dtype=store.trans.dtype, device=store.trans.device)
    if t == 0:
        return quat, trans
    nodes = fenwick_path(t) if isinstance(store, FenwickStore) else [t]
    for j in nodes:  # latest range first: q = r[j0] ⊗ r[j1] ⊗ ...
        quat = quat_multiply(quat, store.quats[j - 1])
        trans = trans + store.trans[j - 1]
    return quat_normalize(quat), trans


# --------------------------------------------------------------------------- schedules


def split(store: DeformationStore, after_frame: int) -> DeformationStore:
    """The paper's split schedule: frames ``> after_frame`` take frame ``after_frame``'s value.

    Fenwick: the current queries are read (detached), frames after ``after_frame`` are
    overwritten with frame ``after_frame``, and nodes ``j > after_frame`` are rebuilt from
    those per-frame values (:func:`from_per_frame`; their parents' queries are the current
    ones). Nodes ``<= after_frame`` - hence every frame ``<= after_frame`` - stay bit-for-bit
    unchanged. Per-frame store: the later rows are overwritten with row ``after_frame``.

    Returns:
        A new store of plain tensors (no autograd history): copy it into the live
        parameters under ``torch.no_grad()`` and reset their optimiser state.
    """
    num_frames = store.num_frames
    if not 0 <= after_frame < num_frames:
        raise ValueError(f"after_frame must be in 0..{num_frames - 1}, got {after_frame}")
    with torch.no_grad():
        if isinstance(store, PerFrameStore):
            quats, trans = store.quats.detach().clone(), store.trans.detach().clone()
            if after_frame > 0:  # row t - 1 is frame t; frame 0 is the identity
                quats[after_frame:] = quats[after_frame - 1]
                trans[after_frame:] = trans[after_frame - 1]
            else:
                quats[:] = quat_identity(dtype=quats.dtype, device=quats.device)
                trans[:] = 0.0
            return PerFrameStore(quats, trans)
        quats, trans = query_all(store)
        quats, trans = quats.clone(), trans.clone()
        quats[after_frame + 1 :] = quats[after_frame]
        trans[after_frame + 1 :] = trans[after_frame]
        rebuilt = from_per_frame(quats, trans)
        keep = after_frame  # nodes 1..after_frame are rows 0..after_frame-1
        node_q = torch.cat((store.quats[:keep].detach(), rebuilt.quats[keep:]), 0)
        node_t = torch.cat((store.trans[:keep].detach(), rebuilt.trans[keep:]), 0)
        return FenwickStore(node_q.clone(), node_t.clone())
