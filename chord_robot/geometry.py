"""Rigid transforms in numpy: quaternions, poses, 4x4 matrices, frames (layer 0).

One copy of the conversions every package needs. Conventions:

- a *pose* is a 7-vector ``wxyz_xyz`` (quaternion w, x, y, z, then translation), the layout
  of the Plan contract (`chord_robot.plans`), the ObjectFlow's control quaternions and jaxlie;
- PyBullet speaks (position, ``xyzw`` quaternion) pairs: `xyzw_to_matrix`/`matrix_to_xyzw`;
- host-side geometry (grasp frames, flow fits, registrations) works in (4, 4) matrices that
  map points of the child frame into the parent frame: ``p_parent = M @ p_child``.

Quaternions returned here have w >= 0 (q and -q are the same rotation). Leading axes batch:
``(..., 7)`` poses go with ``(..., 4, 4)`` matrices. Layer 0: numpy only.
"""

from __future__ import annotations

import numpy as np

# -- quaternions ---------------------------------------------------------------------------------


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz quaternions (normalised here) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) wxyz quaternions with w >= 0 (vectorised)."""
    r = np.asarray(r, dtype=np.float64)
    m = r.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    # Shepperd: take the largest of 4w^2, 4x^2, 4y^2, 4z^2 for stability
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], 1)
    best = np.argmax(cand, 1)
    s = 2 * np.sqrt(np.maximum(cand[np.arange(len(m)), best], 1e-12))
    d21, d02, d10 = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    s01, s02, s12 = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1]
    q = np.select(
        [best[:, None] == 0, best[:, None] == 1, best[:, None] == 2],
        [np.stack([s / 4, d21 / s, d02 / s, d10 / s], 1), np.stack([d21 / s, s / 4, s01 / s, s02 / s], 1),
         np.stack([d02 / s, s01 / s, s / 4, s12 / s], 1)],
        np.stack([d10 / s, s02 / s, s12 / s, s / 4], 1),
    )
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).reshape(r.shape[:-2] + (4,))


# -- poses <-> matrices --------------------------------------------------------------------------


def pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    """(..., 7) wxyz_xyz -> (..., 4, 4) (the quaternion is normalised)."""
    pose = np.asarray(pose, dtype=np.float64)
    assert pose.shape[-1] == 7, pose.shape
    return make_transform(quat_to_matrix(pose[..., :4]), pose[..., 4:])


def matrix_to_pose(matrix: np.ndarray) -> np.ndarray:
    """(..., 4, 4) -> (..., 7) wxyz_xyz with w >= 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    assert matrix.shape[-2:] == (4, 4), matrix.shape
    return np.concatenate([matrix_to_quat(matrix[..., :3, :3]), matrix[..., :3, 3]], -1)


def xyzw_to_matrix(position, xyzw) -> np.ndarray:
    """A PyBullet (position (3,), xyzw quaternion (4,)) pair -> (4, 4)."""
    x, y, z, w = xyzw
    return pose_to_matrix(np.array([w, x, y, z, *position], dtype=np.float64))


def matrix_to_xyzw(matrix: np.ndarray) -> tuple[list[float], list[float]]:
    """(4, 4) -> a PyBullet (position, xyzw quaternion) pair of lists."""
    p = matrix_to_pose(matrix)
    return p[4:].tolist(), [p[1], p[2], p[3], p[0]]


# -- transforms ----------------------------------------------------------------------------------


def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) and (..., 3) -> (..., 4, 4)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1]) + (4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of (..., 4, 4) rigid transforms."""
    matrix = np.asarray(matrix, dtype=np.float64)
    r = np.swapaxes(matrix[..., :3, :3], -1, -2)
    return make_transform(r, -np.einsum("...ij,...j->...i", r, matrix[..., :3, 3]))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (..., 4, 4) to (..., N, 3) points."""
    matrix = np.asarray(matrix)
    return points @ np.swapaxes(matrix[..., :3, :3], -1, -2) + matrix[..., None, :3, 3]


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
    return make_transform(rotation_about(np.array([0.0, 0.0, 1.0]), yaw), np.array([x, y, z]))


def twist(rotation: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(...,) twist of (..., 3, 3) rotations about ``axis`` (3,) (swing-twist decomposition: a
    tilt about another axis does not count), radians in (-pi, pi]."""
    q = matrix_to_quat(rotation)  # wxyz, w >= 0
    axis = np.asarray(axis, dtype=np.float64)
    return 2.0 * np.arctan2(q[..., 1:] @ (axis / np.linalg.norm(axis)), q[..., 0])


def rotation_angle(matrix: np.ndarray) -> np.ndarray:
    """(...,) rotation angle of (..., 4, 4) or (..., 3, 3) transforms, radians."""
    r = np.asarray(matrix)[..., :3, :3]
    c = (np.trace(r, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(c, -1.0, 1.0))


def frame_from_axes(approach: np.ndarray, closing: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """(..., 4, 4) gripper frames: z = ``approach``, y = ``closing`` (made orthogonal), x = y cross z."""
    z = approach / np.linalg.norm(approach, axis=-1, keepdims=True)
    y = closing - (closing * z).sum(-1, keepdims=True) * z
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x = np.cross(y, z)
    return make_transform(np.stack([x, y, z], -1), origin)


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
    cs = w @ source
    ct = w @ target  # (..., 3)
    h = ((source - cs) * w[:, None]).T @ (target - ct[..., None, :])  # (..., 3, 3)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(h.shape[:-2] + (3,))
    fix[..., 2] = d
    r = np.swapaxes(vt, -1, -2) @ (fix[..., :, None] * np.swapaxes(u, -1, -2))
    return make_transform(r, ct - np.einsum("...ij,j->...i", r, cs))
