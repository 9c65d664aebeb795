import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chord_robot.camera import Camera, frame_points, load_cameras, save_cameras
from chord_robot.errors import CameraError


def _random_camera(seed: int, width: int, height: int) -> Camera:
    rng = np.random.default_rng(seed)
    eye = rng.uniform(-2, 2, 3) + np.array([0, 0, 3.0])
    target = rng.uniform(-0.3, 0.3, 3)
    return Camera.look_at(eye, target, width, height, fov_y_deg=float(rng.uniform(30, 80)))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.integers(1, 4000), height=st.integers(1, 4000), n=st.integers(1, 4))
def test_camera_json_round_trip(tmp_path_factory, seed, width, height, n):
    cams = [_random_camera(seed + i, width, height) for i in range(n)]
    path = tmp_path_factory.mktemp("cam") / "cams.json"
    save_cameras(path, cams if n > 1 else cams[0])
    back = load_cameras(path)
    assert len(back) == n
    for a, b in zip(cams, back):
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_allclose(a.K, b.K)
        np.testing.assert_allclose(a.world_from_camera, b.world_from_camera, atol=1e-12)


def test_projection_known_answer():
    cam = Camera.look_at([1.0, 0.0, 0.0], [0.0, 0.0, 0.0], 64, 48, fov_y_deg=90)
    uv, z = cam.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5], [0.0, -0.5, 0.0], [2.0, 0, 0]]))
    # focal = 24 px for a 90 degree vertical fov at height 48
    np.testing.assert_allclose(uv[0], [32, 24])
    np.testing.assert_allclose(uv[1], [32, 24 - 24 * 0.5])  # world up is image up (v decreases)
    np.testing.assert_allclose(uv[2], [32 - 24 * 0.5, 24])  # facing -x with z up, world +y is image right
    np.testing.assert_allclose(z[:3], [1.0, 1.0, 1.0])
    assert z[3] < 0  # behind the camera


def test_view_matrix_inverts_pose():
    cam = _random_camera(3, 320, 240)
    np.testing.assert_allclose(cam.camera_from_world @ cam.world_from_camera, np.eye(4), atol=1e-12)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"world_from_camera": np.diag([2.0, 1, 1, 1]).tolist()}, "not a rigid transform"),
        ({"world_from_camera": [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}, "not a rigid transform"),
        ({"world_from_camera": np.diag([1.0, 1, -1, 1]).tolist()}, "not a rigid transform"),
        ({"world_from_camera": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}, "must be 4x4"),
        ({"fx": -3}, "focal lengths must be positive"),
        ({"width": 0}, "size must be positive"),
    ],
)
def test_bad_cameras_are_rejected(tmp_path, patch, message):
    d = _random_camera(0, 64, 48).to_dict()
    d.update(patch)
    path = tmp_path / "cam.json"
    path.write_text(json.dumps(d))
    with pytest.raises(CameraError, match=message):
        load_cameras(path)


def test_missing_fields_and_bad_json(tmp_path):
    path = tmp_path / "cam.json"
    path.write_text(json.dumps({"width": 4}))
    with pytest.raises(CameraError, match="missing height"):
        load_cameras(path)
    path.write_text("{not json")
    with pytest.raises(CameraError, match="not valid JSON"):
        load_cameras(path)


def test_frame_points_keeps_everything_in_view():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.4, -0.3, 0.0], [0.5, 0.3, 0.4], (500, 3))
    for az in (-120, -60, 0, 90):
        cam = frame_points(pts, 320, 240, azimuth_deg=az)
        uv, z = cam.project(pts)
        assert np.all(z > 0)
        assert uv[:, 0].min() >= 0 and uv[:, 0].max() <= 320 and uv[:, 1].min() >= 0 and uv[:, 1].max() <= 240
        # not absurdly far: the points fill a good part of the frame
        assert np.ptp(uv[:, 0]) > 0.4 * 320 or np.ptp(uv[:, 1]) > 0.4 * 240
