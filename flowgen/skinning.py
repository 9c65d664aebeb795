"""Linear blend skinning by control points, one or two levels (DESIGN §4 "Skinning").

A point ``x`` bound to its nearest control points ``N(x)`` (found once, at rest) moves as

    w_k   = softmax_k( -1/2 (x - p_k)^T Sigma_k^-1 (x - p_k) )      over k in N(x)
    x^t   = sum_k w_k ( R_k^t (x - p_k) + p_k + T_k^t )
    q^t   = normalise( sum_k w_k r_k^t ) ⊗ q                           (Gaussian rotation)

with ``Sigma_k = R_k diag(s_k^2) R_k^T`` (``s_k = exp(log_scales)``, isotropic (K,) or
axis-aligned (K, 3); ``R_k`` the optional covariance rotation, identity by default). The
softmax is the normalised exponential of the equation, stable when every exp underflows.

A control point moved rigidly by ``(R, t)`` about the origin has ``R_k = R`` and
``T_k = (R - I) p_k + t`` (its centre goes to ``R p_k + t``); then every bound point moves
by exactly ``R x + t``, whatever the weights.

Hierarchy (coarse, then fine as a residual): the fine control centres are *carried* by the
coarse deformation, ``p_f^t = LBS_coarse(p_f)``, and the fine level is the same skinning
applied to the coarse-deformed point about the carried centres,

    dx_fine^t = sum_k w_fk ( (R_fk^t - I)(x_c^t - p_fk^t) + T_fk^t )
    x^t       = x_c^t + dx_fine^t,            q^t = q_fine^t ⊗ q_c^t,

so the fine rotations act in the world frame about where their centres are now, which
matches ``q_fine ⊗ q_coarse`` (fine applied after coarse). Identity fine motion adds exactly
nothing, and a rigid fine motion ``(R2, t2)`` written about the carried centres composes
exactly with a rigid coarse one. The fine weights ``w_fk`` are computed at rest (from
``x`` and ``p_f``), like any LBS binding: they equal the deformed-frame weights whenever the
coarse motion is locally rigid, need no per-frame neighbour search, and stay constant over
time.

Every level is evaluated in displacement form, ``x' = x + D x + e`` with per-control
``D_k = R_k - I`` and ``e_k = T_k - D_k p_k`` blended by the weights, so all T frames reduce
to one (N, K) x (K, T * 16) product over each point's k controls (`flowgen.blend`) and
identity motion is exact.

Quaternion signs: ``r`` and ``-r`` are the same rotation but blend differently, so each
control's sequence is put on the w >= 0 hemisphere at its first frame and then made
continuous over frames (:func:`flowgen.quat.quat_continuous`) before blending; neighbours
that start together at the identity (frame 0) then share a hemisphere, even through
rotations beyond 180 degrees (where a per-frame "w >= 0" rule would split them).

Connected components / parts: with a ``group`` id per control point and per point, a point
binds only to controls of its own group, which makes skinning of separate parts exact: a
moving lid does not drag the base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from flowgen.blend import blend_rows
from flowgen.quat import quat_continuous, quat_multiply, quat_normalize, quat_to_matrix
from flowgen.skin_weights import gaussian_weights, skinning_weights_torch

__all__ = [
    "Binding",
    "ControlLevel",
    "Deformed",
    "HierarchyBinding",
    "bind",
    "bind_hierarchy",
    "blend",
    "control_channels",
    "control_level",
    "deform",
    "lbs",
    "skinning_weights",
]

Motion = tuple[Tensor, Tensor]
"""Per-frame control deformations: quats (T, K, 4) wxyz and translations (T, K, 3)."""

_CHANNELS = 16  # per control and frame: D (9), e (3), r (4)


@dataclass(frozen=True)
class ControlLevel:
    """One level of control points at rest.

    Attributes:
        centres: (K, 3) control centres p_k; fixed during training (paper).
        log_scales: (K,) isotropic or (K, 3) per-axis log standard deviations; optimised.
        rotations: (K, 4) wxyz covariance rotations, or None for the identity; optimisable.
        group: (K,) int64 part / connected-component id, or None for a single part.
    """

    centres: Tensor
    log_scales: Tensor
    rotations: Tensor | None = None
    group: Tensor | None = None

    def __post_init__(self) -> None:
        num = self.centres.shape[0]
        if self.centres.shape != (num, 3):
            raise ValueError(f"centres must be (K, 3), got {tuple(self.centres.shape)}")
        if self.log_scales.shape not in ((num,), (num, 3)):
            raise ValueError(
                f"log_scales must be (K,) or (K, 3), got {tuple(self.log_scales.shape)}"
            )
        if self.rotations is not None and self.rotations.shape != (num, 4):
            raise ValueError(f"rotations must be (K, 4), got {tuple(self.rotations.shape)}")
        if self.group is not None and self.group.shape != (num,):
            raise ValueError(f"group must be (K,), got {tuple(self.group.shape)}")

    @property
    def num_controls(self) -> int:
        """K."""
        return self.centres.shape[0]


def control_level(
    centres: np.ndarray | Tensor,
    scales: np.ndarray | Tensor,
    group: np.ndarray | Tensor | None = None,
    *,
    anisotropic: bool = False,
    dtype: torch.dtype = torch.float32,
) -> ControlLevel:
    """A ControlLevel from (K, 3) centres and (K,) scales (e.g. :mod:`flowgen.control`).

    ``anisotropic=True`` stores (K, 3) log-scales, all three initialised to ``log(scale)``.
    """
    centres_t = torch.as_tensor(np.asarray(centres), dtype=dtype)
    log_scales = torch.log(torch.as_tensor(np.asarray(scales), dtype=dtype))
    if anisotropic:
        log_scales = log_scales[:, None].repeat(1, 3)
    group_t = None if group is None else torch.as_tensor(np.asarray(group), dtype=torch.long)
    return ControlLevel(centres_t, log_scales, None, group_t)


@dataclass(frozen=True)
class Binding:
    """Points bound to their nearest control points of one level (at rest).

    Attributes:
        index: (N, k) int64 control indices, nearest first.
        valid: (N, k) bool; False marks padding where a point's group has < k controls.
    """

    index: Tensor
    valid: Tensor


@dataclass(frozen=True)
class HierarchyBinding:
    """Bindings for two-level skinning.

    Attributes:
        coarse: points -> coarse controls.
        fine: points -> fine controls, or None without a fine level.
        fine_centres: fine centres -> coarse controls (to carry them), or None.
    """

    coarse: Binding
    fine: Binding | None = None
    fine_centres: Binding | None = None


@dataclass(frozen=True)
class Deformed:
    """Points (and optionally Gaussian rotations) over time.

    Attributes:
        points: (T, N, 3) deformed positions.
        quats: (T, N, 4) wxyz deformed rotations (norm of the input quats), or None.
    """

    points: Tensor
    quats: Tensor | None = None


# --------------------------------------------------------------------------- binding


def bind(
    points: Tensor,
    level: ControlLevel,
    num_neighbours: int,
    point_group: Tensor | None = None,
) -> Binding:
    """Bind (N, 3) rest points to their ``num_neighbours`` nearest controls of ``level``.

    With ``point_group`` (N,) and ``level.group`` set, a point only binds to controls of
    its own group. Without ``point_group`` the groups are ignored.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
    if num_neighbours < 1:
        raise ValueError(f"num_neighbours must be >= 1, got {num_neighbours}")
    pts = points.detach().cpu().double().numpy()
    centres = level.centres.detach().cpu().double().numpy()
    num_points, k = pts.shape[0], min(num_neighbours, level.num_controls)
    index = np.zeros((num_points, k), dtype=np.int64)
    valid = np.zeros((num_points, k), dtype=bool)
    if point_group is None or level.group is None:
        index[:], valid[:] = _knn(centres, pts, k), True
    else:
        if point_group.shape != (num_points,):
            raise ValueError(
                f"point_group must be (N,) = ({num_points},), got {tuple(point_group.shape)}"
            )
        point_ids = point_group.detach().cpu().numpy()
        control_ids = level.group.detach().cpu().numpy()
        for gid in np.unique(point_ids):
            members = np.flatnonzero(control_ids == gid)
            if members.size == 0:
                raise ValueError(
                    f"points of group {gid} have no control point of that group; "
                    "label points with the groups returned by flowgen.control"
                )
            rows = np.flatnonzero(point_ids == gid)
            kg = min(k, members.size)
            index[rows, :kg] = members[_knn(centres[members], pts[rows], kg)]
            index[rows, kg:] = index[rows, :1]
            valid[rows, :kg] = True
    device = level.centres.device
    return Binding(torch.from_numpy(index).to(device), torch.from_numpy(valid).to(device))


def _knn(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) indices of the k nearest reference points, nearest first."""
    _, idx = cKDTree(reference).query(queries, k=k)
    return np.asarray(idx, dtype=np.int64).reshape(len(queries), k)


def bind_hierarchy(
    points: Tensor,
    coarse: ControlLevel,
    fine: ControlLevel | None = None,
    num_neighbours: int = 8,
    point_group: Tensor | None = None,
) -> HierarchyBinding:
    """Bindings of (N, 3) rest points to both levels, and of the fine centres to the coarse."""
    if fine is None:
        return HierarchyBinding(bind(points, coarse, num_neighbours, point_group))
    return HierarchyBinding(
        coarse=bind(points, coarse, num_neighbours, point_group),
        fine=bind(points, fine, num_neighbours, point_group),
        fine_centres=bind(fine.centres, coarse, num_neighbours, fine.group),
    )


# --------------------------------------------------------------------------- skinning


def skinning_weights(points: Tensor, level: ControlLevel, binding: Binding) -> Tensor:
    """(N, k) normalised Gaussian weights of (N, 3) rest points; padding gets 0.

    Differentiable w.r.t. ``level.log_scales`` and ``level.rotations`` (and the points and
    centres, which are fixed in training). On a CPU one numba
    pass (`flowgen.skin_weights.gaussian_weights`); elsewhere, and as its reference,
    `flowgen.skin_weights.skinning_weights_torch`.
    """
    if points.device.type == "cpu":
        rot = None if level.rotations is None else quat_to_matrix(level.rotations)
        inv_scales = (-level.log_scales).exp()
        if inv_scales.ndim == 1:
            inv_scales = inv_scales[:, None].expand(-1, 3)
        return gaussian_weights(points, level.centres, binding.index, binding.valid, rot, inv_scales)
    return skinning_weights_torch(points, level, binding)


def control_channels(quats: Tensor, trans: Tensor, centres: Tensor) -> Tensor:
    """(T, K, 16) per-control blend channels ``[D = R - I (9), e = T - D p (3), r (4)]``.

    Args:
        quats: (T, K, 4) wxyz control rotations.
        trans: (T, K, 3) control translations.
        centres: (K, 3) rest centres, or (T, K, 3) carried centres (fine level).
    """
    num_frames, num_controls = quats.shape[:2]
    rot_minus_eye = quat_to_matrix(quats) - torch.eye(3, dtype=quats.dtype, device=quats.device)
    centres = centres.expand(num_frames, num_controls, 3)
    offset = trans - (rot_minus_eye @ centres[..., None])[..., 0]
    rot_q = quat_continuous(quat_normalize(quats), dim=0)
    return torch.cat((rot_minus_eye.reshape(num_frames, num_controls, 9), offset, rot_q), -1)


def blend(weights: Tensor, binding: Binding, channels: Tensor) -> Tensor:
    """Weighted sums over each point's controls for all frames: (T, N, C).

    One (N, K) x (K, T * C) product with N k nonzeros (`flowgen.blend.blend_rows`): cost and
    memory O(N k T C), no (T, N, k, C) intermediate, and gradients flow to both the weights
    and the channels. The result is a (T, N, C) view of point-major (N, T, C) storage.

    Args:
        weights: (N, k) from :func:`skinning_weights`.
        binding: the (N, k) binding the weights belong to.
        channels: (T, K, C) per-control values.
    """
    return _blend_point_major(weights, binding, channels).transpose(0, 1)


def _blend_point_major(weights: Tensor, binding: Binding, channels: Tensor) -> Tensor:
    """:func:`blend` in point-major (N, T, C) layout, the layout every later step uses."""
    num_points = weights.shape[0]
    num_frames, num_controls, num_channels = channels.shape
    dense = channels.transpose(0, 1).reshape(num_controls, num_frames * num_channels)
    return blend_rows(weights, binding.index, dense).reshape(num_points, num_frames, num_channels)


def _apply(blended: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Deform points by blended channels, point-major.

    Args:
        blended: (N, T, 16) from :func:`_blend_point_major`.
        points: (N, 3) rest points or (N, T, 3) per-frame points.

    Returns:
        (N, T, 3) positions and (N, T, 4) unit blended rotations.
    """
    num_points, num_frames = blended.shape[:2]
    rot_minus_eye, offset, rot = blended.split((9, 3, 4), dim=-1)
    rot_minus_eye = rot_minus_eye.reshape(num_points, num_frames, 3, 3)
    if points.ndim == 2:
        moved = points[:, None, :] + torch.einsum("ntij,nj->nti", rot_minus_eye, points) + offset
    else:
        moved = points + torch.einsum("ntij,ntj->nti", rot_minus_eye, points) + offset
    return moved, quat_normalize(rot)


def _check_motion(motion: Motion, num_controls: int) -> tuple[Tensor, Tensor]:
    quats, trans = motion
    if quats.ndim != 3 or quats.shape[1:] != (num_controls, 4):
        raise ValueError(
            f"motion quats must be (T, K={num_controls}, 4), got {tuple(quats.shape)}; "
            "pass the (quats, trans) pair from flowgen.fenwick.query_all of this level's store"
        )
    if trans.shape != (*quats.shape[:2], 3):
        raise ValueError(
            f"motion trans must be (T, K, 3) = {(*quats.shape[:2], 3)}, got {tuple(trans.shape)}"
        )
    return quats, trans


def lbs(
    points: Tensor,
    level: ControlLevel,
    binding: Binding,
    motion: Motion,
    point_quats: Tensor | None = None,
) -> Deformed:
    """Single-level skinning of (N, 3) rest points (and (N, 4) rotations) over T frames."""
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be (N, 3), not {points.shape}"
    quats, trans = _check_motion(motion, level.num_controls)
    weights = skinning_weights(points, level, binding)
    channels = control_channels(quats, trans, level.centres)
    moved, rot = _apply(_blend_point_major(weights, binding, channels), points)
    return _time_major(moved, rot, point_quats)


def deform(
    points: Tensor,
    coarse: ControlLevel,
    coarse_motion: Motion,
    binding: HierarchyBinding,
    fine: ControlLevel | None = None,
    fine_motion: Motion | None = None,
    point_quats: Tensor | None = None,
) -> Deformed:
    """Two-level skinning (coarse, then the fine residual; see the module docstring).

    Args:
        points: (N, 3) rest positions (Gaussian means, mesh vertices, ARAP points...).
        coarse: the coarse ControlLevel; coarse_motion its (T, Kc, 4), (T, Kc, 3) motion.
        binding: from :func:`bind_hierarchy` on the same points and levels.
        fine: the fine ControlLevel, or None (coarse only); fine_motion its motion.
        point_quats: optional (N, 4) wxyz rest rotations (Gaussians).

    Returns:
        Deformed with (T, N, 3) points and (T, N, 4) quats when point_quats is given.
    """
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be (N, 3), not {points.shape}"
    assert point_quats is None or point_quats.shape == (points.shape[0], 4)
    coarse_q, coarse_t = _check_motion(coarse_motion, coarse.num_controls)
    coarse_channels = control_channels(coarse_q, coarse_t, coarse.centres)
    weights = skinning_weights(points, coarse, binding.coarse)
    moved, rot = _apply(_blend_point_major(weights, binding.coarse, coarse_channels), points)
    if fine is not None:
        if fine_motion is None or binding.fine is None or binding.fine_centres is None:
            raise ValueError(
                "a fine level needs fine_motion and a binding from bind_hierarchy(..., fine)"
            )
        fine_q, fine_t = _check_motion(fine_motion, fine.num_controls)
        if fine_q.shape[0] != coarse_q.shape[0]:
            raise ValueError(
                f"coarse and fine motions differ in T: {coarse_q.shape[0]} vs {fine_q.shape[0]}"
            )
        carry_w = skinning_weights(fine.centres, coarse, binding.fine_centres)
        carry = _blend_point_major(carry_w, binding.fine_centres, coarse_channels)
        carried = _apply(carry, fine.centres)[0].transpose(0, 1)  # (T, Kf, 3)
        fine_w = skinning_weights(points, fine, binding.fine)  # at rest, see module docstring
        fine_channels = control_channels(fine_q, fine_t, carried)
        moved, fine_rot = _apply(_blend_point_major(fine_w, binding.fine, fine_channels), moved)
        rot = quat_multiply(fine_rot, rot)
    return _time_major(moved, rot, point_quats)


def _time_major(moved: Tensor, rot: Tensor, point_quats: Tensor | None) -> Deformed:
    """Deformed (T, N, ·) views of point-major (N, T, ·) positions and rotations."""
    out_quats = None if point_quats is None else quat_multiply(rot, point_quats[:, None, :])
    quats = None if out_quats is None else out_quats.transpose(0, 1)
    return Deformed(moved.transpose(0, 1), quats)
