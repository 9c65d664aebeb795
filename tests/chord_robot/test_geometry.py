"""chord_robot.geometry against scipy's Rotation (an independent reference) and known answers."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from chord_robot import geometry


def _random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 7) wxyz_xyz poses with random unit quaternions (w >= 0) and translations."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return np.concatenate([q, rng.uniform(-1, 1, (n, 3))], 1)


def test_quaternions_match_scipy():
    rng = np.random.default_rng(0)
    pose = _random_poses(rng, 64)
    reference = Rotation.from_quat(pose[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(geometry.quat_to_matrix(pose[:, :4]), reference, atol=1e-12)
    np.testing.assert_allclose(geometry.quat_to_matrix(3.0 * pose[:, :4]), reference, atol=1e-12)
    np.testing.assert_allclose(geometry.matrix_to_quat(reference), pose[:, :4], atol=1e-12)


def test_pose_matrix_round_trip_and_batching():
    rng = np.random.default_rng(1)
    pose = _random_poses(rng, 24).reshape(2, 3, 4, 7)
    m = geometry.pose_to_matrix(pose)
    assert m.shape == (2, 3, 4, 4, 4)
    flat = m.reshape(-1, 4, 4)
    reference = Rotation.from_quat(pose.reshape(-1, 7)[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(flat[:, :3, :3], reference, atol=1e-12)
    np.testing.assert_allclose(flat[:, 3], np.tile([0, 0, 0, 1.0], (24, 1)))
    np.testing.assert_allclose(geometry.matrix_to_pose(m), pose, atol=1e-12)
    # q and -q are one rotation; the pose comes back with w >= 0
    flipped = pose[0, 0, 0].copy()
    flipped[:4] *= -1
    back = geometry.matrix_to_pose(geometry.pose_to_matrix(flipped))
    np.testing.assert_allclose(back, pose[0, 0, 0], atol=1e-12)


def test_pybullet_pairs_round_trip():
    rng = np.random.default_rng(2)
    for pose in _random_poses(rng, 8):
        xyzw = pose[[1, 2, 3, 0]]
        m = geometry.xyzw_to_matrix(pose[4:], xyzw)
        np.testing.assert_allclose(m[:3, :3], Rotation.from_quat(xyzw).as_matrix(), atol=1e-12)
        pos, orn = geometry.matrix_to_xyzw(m)
        np.testing.assert_allclose(pos, pose[4:], atol=1e-12)
        np.testing.assert_allclose(orn, xyzw, atol=1e-12)


def test_known_answers():
    # 90 degrees about z: x -> y; translation (1, 2, 3)
    c = np.sqrt(0.5)
    m = geometry.pose_to_matrix(np.array([c, 0, 0, c, 1.0, 2.0, 3.0]))
    moved = geometry.transform_points(m, np.array([[1.0, 0, 0]]))
    np.testing.assert_allclose(moved, [[1.0, 3.0, 3.0]], atol=1e-12)
    np.testing.assert_allclose(geometry.yaw_pose(1.0, 2.0, 3.0, np.pi / 2), m, atol=1e-12)
    assert np.isclose(geometry.rotation_angle(m), np.pi / 2)
    half_turn = geometry.rotation_about(np.array([1.0, 0, 0]), np.pi)
    np.testing.assert_allclose(half_turn, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    frame = geometry.frame_from_axes(np.array([0, 0, -1.0]), np.array([0, 1.0, 0.5]), np.zeros(3))
    np.testing.assert_allclose(frame[:3, :3], np.diag([-1.0, 1.0, -1.0]), atol=1e-12)


def test_invert_and_compose_match_scipy():
    rng = np.random.default_rng(3)
    pose = _random_poses(rng, 16)
    m = geometry.pose_to_matrix(pose)
    identity = np.broadcast_to(np.eye(4), m.shape)
    np.testing.assert_allclose(geometry.invert(m) @ m, identity, atol=1e-12)
    rot = Rotation.from_quat(pose[:, [1, 2, 3, 0]])
    inv_t = -rot.inv().apply(pose[:, 4:])
    np.testing.assert_allclose(geometry.invert(m)[:, :3, 3], inv_t, atol=1e-12)
    angle = np.linalg.norm((rot[:8].inv() * rot[8:]).as_rotvec(), axis=1)
    relative = geometry.invert(m[:8]) @ m[8:]
    np.testing.assert_allclose(geometry.rotation_angle(relative), angle, atol=1e-6)
    np.testing.assert_allclose(geometry.make_transform(rot.as_matrix(), pose[:, 4:]), m, atol=1e-12)


def test_kabsch_recovers_a_known_motion():
    rng = np.random.default_rng(4)
    source = rng.uniform(-0.1, 0.1, (50, 3))
    truth = geometry.pose_to_matrix(_random_poses(rng, 5))
    target = geometry.transform_points(truth, source)  # (5, 50, 3)
    np.testing.assert_allclose(geometry.kabsch(source, target), truth, atol=1e-10)
    weights = np.zeros(50)
    weights[:10] = 1.0
    noisy = target.copy()
    noisy[:, 10:] += 1.0  # points of zero weight do not count
    np.testing.assert_allclose(geometry.kabsch(source, noisy, weights), truth, atol=1e-10)
