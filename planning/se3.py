"""Rigid transforms in numpy: 4x4 matrices, wxyz_xyz poses, weighted Kabsch.

The planner's host-side geometry (grasp frames, flow fits, base placement) works in 4x4
matrices; the optimiser and the Plan store poses as wxyz_xyz (jaxlie's layout).
"""

from __future__ import annotations

import numpy as np

from chord_robot.flow import matrix_to_quat, quat_to_matrix


def to_matrix(pose: np.ndarray) -> np.ndarray:
    """(..., 7) wxyz_xyz -> (..., 4, 4)."""
    pose = np.asarray(pose, dtype=np.float64)
    assert pose.shape[-1] == 7, pose.shape
    out = np.zeros(pose.shape[:-1] + (4, 4))
    out[..., :3, :3] = quat_to_matrix(pose[..., :4])
    out[..., :3, 3] = pose[..., 4:]
    out[..., 3, 3] = 1.0
    return out


def to_wxyz_xyz(matrix: np.ndarray) -> np.ndarray:
    """(..., 4, 4) -> (..., 7) wxyz_xyz with w >= 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    assert matrix.shape[-2:] == (4, 4), matrix.shape
    return np.concatenate([matrix_to_quat(matrix[..., :3, :3]), matrix[..., :3, 3]], -1)


def make(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) and (..., 3) -> (..., 4, 4)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1]) + (4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of (..., 4, 4) rigid transforms."""
    r = np.swapaxes(matrix[..., :3, :3], -1, -2)
    return make(r, -np.einsum("...ij,...j->...i", r, matrix[..., :3, 3]))


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (..., 4, 4) to (..., N, 3) points."""
    return np.einsum("...ij,...nj->...ni", matrix[..., :3, :3], points) + matrix[..., None, :3, 3]


def rotation_about(axis: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rodrigues: rotation(s) by ``angle`` (scalar or (T,)) about the unit ``axis`` (3,)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    angle = np.asarray(angle, dtype=np.float64)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def yaw_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """(4, 4) pose at (x, y, z) rotated by ``yaw`` about world z."""
    return make(rotation_about(np.array([0.0, 0.0, 1.0]), yaw), np.array([x, y, z]))


def kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares rigid transform(s) mapping ``source`` onto ``target``.

    Args:
        source: (N, 3) points.
        target: (N, 3) or (T, N, 3) points.
        weights: (N,) non-negative weights, or None for uniform.
    Returns:
        (4, 4) or (T, 4, 4) transforms M minimising sum_i w_i |M source_i - target_i|^2.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    assert source.ndim == 2 and source.shape[1] == 3, source.shape
    assert target.shape[-2:] == source.shape, (target.shape, source.shape)
    w = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    cs = (w[:, None] * source).sum(0)
    ct = np.einsum("n,...ni->...i", w, target)
    h = np.einsum("n,ni,...nj->...ij", w, source - cs, target - ct[..., None, :])
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(h.shape[:-2] + (3,))
    fix[..., 2] = d
    r = np.swapaxes(vt, -1, -2) @ (fix[..., :, None] * np.swapaxes(u, -1, -2))
    return make(r, ct - np.einsum("...ij,j->...i", r, cs))


def frame_from_axes(approach: np.ndarray, closing: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """(..., 4, 4) gripper frames: z = ``approach``, y = ``closing`` (made orthogonal), x = y cross z."""
    z = approach / np.linalg.norm(approach, axis=-1, keepdims=True)
    y = closing - (closing * z).sum(-1, keepdims=True) * z
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x = np.cross(y, z)
    return make(np.stack([x, y, z], -1), origin)


def rotation_angle(matrix: np.ndarray) -> np.ndarray:
    """(...,) rotation angle of (..., 4, 4) or (..., 3, 3) transforms, radians."""
    r = matrix[..., :3, :3]
    c = (np.trace(r, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(c, -1.0, 1.0))
