"""Plain-loop linear blend skinning (`flowgen.skinning`'s tests only): frames, points and
neighbours in Python loops, each weight from the control's full covariance."""

from __future__ import annotations

import torch
from torch import Tensor

from flowgen.quat import quat_continuous, quat_multiply, quat_normalize, quat_to_matrix
from flowgen.skinning import Binding, ControlLevel, Deformed, HierarchyBinding, Motion


def lbs_reference(
    points: Tensor,
    level: ControlLevel,
    binding: Binding,
    motion: Motion,
    point_quats: Tensor | None = None,
) -> Deformed:
    """Plain-loop single-level LBS straight from the equations (tests only; tiny sizes)."""
    moved, rot = _reference_core(points, level, binding, motion, level.centres, points)
    return Deformed(moved, None if point_quats is None else quat_multiply(rot, point_quats))


def _reference_core(
    points: Tensor,
    level: ControlLevel,
    binding: Binding,
    motion: Motion,
    centres: Tensor,
    weight_points: Tensor,
) -> tuple[Tensor, Tensor]:
    """Loops over frames, points and neighbours.

    ``points`` (N, 3) or per-frame (T, N, 3) are deformed about ``centres`` (K, 3) or
    (T, K, 3); the weights are evaluated at ``weight_points`` (N, 3) against the rest
    centres. Returns (T, N, 3) positions and (T, N, 4) unit blended rotations.
    """
    quats, trans = motion
    num_frames = quats.shape[0]
    per_frame = points if points.ndim == 3 else points[None].expand(num_frames, -1, -1)
    centres = centres.expand(num_frames, -1, -1)
    scales = level.log_scales.exp()
    quats = quat_continuous(quat_normalize(quats), dim=0)
    out_points = torch.zeros(num_frames, per_frame.shape[1], 3, dtype=points.dtype)
    out_rots = torch.zeros(num_frames, per_frame.shape[1], 4, dtype=points.dtype)
    for n in range(per_frame.shape[1]):
        raw = {}
        for j in range(binding.index.shape[1]):
            if bool(binding.valid[n, j]):
                k = int(binding.index[n, j])
                rot_cov = torch.eye(3, dtype=points.dtype)
                if level.rotations is not None:
                    rot_cov = quat_to_matrix(level.rotations[k])
                var = scales[k] ** 2 if scales.ndim == 2 else scales[k].repeat(3) ** 2
                sigma = rot_cov @ torch.diag(var) @ rot_cov.T
                diff = weight_points[n] - level.centres[k]
                raw[k] = torch.exp(-0.5 * diff @ torch.linalg.inv(sigma) @ diff)
        total = sum(raw.values())
        for t in range(num_frames):
            for k, w in raw.items():
                rot = quat_to_matrix(quats[t, k])
                centre = centres[t, k]
                moved = rot @ (per_frame[t, n] - centre) + centre + trans[t, k]
                out_points[t, n] += (w / total) * moved
                out_rots[t, n] += (w / total) * quats[t, k]
    return out_points, quat_normalize(out_rots)


def deform_reference(
    points: Tensor,
    coarse: ControlLevel,
    coarse_motion: Motion,
    binding: HierarchyBinding,
    fine: ControlLevel | None = None,
    fine_motion: Motion | None = None,
    point_quats: Tensor | None = None,
) -> Deformed:
    """Plain-loop two-level skinning (tests only): coarse, carried centres, fine residual."""
    moved, rot = _reference_core(
        points, coarse, binding.coarse, coarse_motion, coarse.centres, points
    )
    if fine is not None:
        assert fine_motion is not None and binding.fine is not None
        assert binding.fine_centres is not None
        carried, _ = _reference_core(
            fine.centres, coarse, binding.fine_centres, coarse_motion, coarse.centres, fine.centres
        )
        moved, fine_rot = _reference_core(moved, fine, binding.fine, fine_motion, carried, points)
        rot = quat_multiply(fine_rot, rot)
    return Deformed(moved, None if point_quats is None else quat_multiply(rot, point_quats))
