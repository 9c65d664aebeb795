import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from chord_robot.errors import SchemaError
from chord_robot.flow import (
    ObjectFlow,
    ObjectMotion,
    interpolate_trajectories,
    lbs_numpy,
    matrix_to_quat,
    quat_to_matrix,
)


def _random_motion(rng, t, n, k, colors=True, static=False):
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    traj = np.concatenate([pts[None], pts[None] + rng.normal(size=(t - 1, n, 3)).astype(np.float32)])
    quats = rng.normal(size=(t, k, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    return ObjectMotion(
        pts, traj, rng.normal(size=(k, 3)), quats, rng.normal(size=(t, k, 3)),
        colors=rng.random((n, 3)) if colors else None, static=static, source="gaussians",
    )


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 12), n=st.integers(1, 50), k=st.integers(1, 9), n_obj=st.integers(1, 3), seed=st.integers(0, 999))
def test_flow_round_trip(tmp_path_factory, t, n, k, n_obj, seed):
    rng = np.random.default_rng(seed)
    objects = {f"obj_{i}": _random_motion(rng, t, n + i, k, colors=i % 2 == 0, static=i == 1) for i in range(n_obj)}
    flow = ObjectFlow(objects, task="lower the lamp", fps=12.5, prior="video", config={"iters": 3, "lr": [0.1, 0.01]})
    path = tmp_path_factory.mktemp("flow") / "f.zarr"
    flow.save(path)
    back = ObjectFlow.load(path)
    assert (back.task, back.fps, back.prior, back.num_frames) == ("lower the lamp", 12.5, "video", t)
    assert back.config == {"iters": 3, "lr": [0.1, 0.01]}
    assert set(back.objects) == set(objects)
    for name, m in objects.items():
        b = back.objects[name]
        for field in ("points", "trajectories", "centers", "quats", "translations"):
            np.testing.assert_array_equal(getattr(b, field), getattr(m, field))
        assert (b.colors is None) == (m.colors is None)
        assert b.static == m.static and b.source == "gaussians"
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    assert attrs["schema"] == "chord-robot/object-flow" and attrs["version"] == 1 and attrs["units"] == "m"


def test_rigid_motion_is_reproduced_by_its_skinning():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.1, 0.1, (200, 3))
    poses = np.tile(np.eye(4), (9, 1, 1))
    for i in range(9):
        poses[i, :3, :3] = _rot_z(0.1 * i)
        poses[i, :3, 3] = [0.02 * i, 0, 0.01 * i]
    m = ObjectMotion.rigid(pts, poses)
    np.testing.assert_allclose(m.trajectories[-1], pts @ _rot_z(0.8).T + [0.16, 0, 0.08], atol=1e-6)
    query = rng.uniform(-0.1, 0.1, (30, 3))
    np.testing.assert_allclose(m.evaluate(query)[-1], query @ _rot_z(0.8).T + [0.16, 0, 0.08], atol=1e-5)


def test_lbs_blends_two_translations():
    centers = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    quats = np.tile([1.0, 0, 0, 0], (2, 2, 1))
    trans = np.zeros((2, 2, 3))
    trans[1, 0] = [0, 0, 1.0]  # only the first control point moves up by 1
    out = lbs_numpy(np.array([[0.5, 0, 0], [0.0, 0, 0]]), centers, quats, trans, np.array([0.5, 0.5]), k=2)
    assert out[1, 0, 2] == pytest.approx(0.5, abs=1e-6)  # equidistant: half the motion
    assert out[1, 1, 2] == pytest.approx(1 / (1 + np.exp(-2)), abs=1e-5)  # weight exp(0) vs exp(-2)


def test_quaternion_matrix_round_trip():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-9)
    # half turns (w = 0) take the other branches; q and -q are the same rotation
    for axis in np.eye(3):
        half = np.r_[0.0, axis]
        back = matrix_to_quat(quat_to_matrix(half))
        assert min(np.abs(back - half).max(), np.abs(back + half).max()) < 1e-9


def test_rejects_inconsistent_shapes():
    rng = np.random.default_rng(0)
    m = _random_motion(rng, 4, 10, 3)
    with pytest.raises(SchemaError, match="trajectories must be"):
        ObjectMotion(m.points, m.trajectories[:, :5], m.centers, m.quats, m.translations)
    with pytest.raises(SchemaError, match="control/quats must be"):
        ObjectMotion(m.points, m.trajectories, m.centers, m.quats[:3], m.translations)
    with pytest.raises(SchemaError, match=r"trajectories\[0\] must equal points"):
        ObjectMotion(m.points + 1, m.trajectories, m.centers, m.quats, m.translations)
    with pytest.raises(SchemaError, match="same frame count"):
        ObjectFlow({"a": m, "b": _random_motion(rng, 5, 10, 3)}, task="x")


def test_rejects_a_store_with_a_wrong_schema_or_tampered_arrays(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.zarr"
    ObjectFlow({"lid": _random_motion(rng, 4, 10, 3)}, task="close").save(path)
    g = zarr.open_group(str(path), mode="r+")
    g.attrs["schema"] = "something-else"
    with pytest.raises(SchemaError, match="has schema 'something-else'"):
        ObjectFlow.load(path)
    g.attrs["schema"] = "chord-robot/object-flow"
    g.attrs["version"] = 99
    with pytest.raises(SchemaError, match="version 99"):
        ObjectFlow.load(path)
    g.attrs["version"] = 1
    del g["objects/lid/control/translations"]
    g.create_array("objects/lid/control/translations", data=np.zeros((4, 2, 3), np.float32))
    with pytest.raises(SchemaError, match=r"object 'lid': control/translations must be \(4, 3, 3\)"):
        ObjectFlow.load(path)
    g.attrs["num_frames"] = 7
    with pytest.raises(SchemaError):
        ObjectFlow.load(path)
    with pytest.raises(SchemaError, match="does not exist"):
        ObjectFlow.load(tmp_path / "missing.zarr")


def test_failed_write_leaves_previous_store(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.zarr"
    ObjectFlow({"lid": _random_motion(rng, 4, 10, 3)}, task="first").save(path)
    bad = ObjectFlow({"lid": _random_motion(rng, 4, 10, 3)}, task="second")
    object.__setattr__(bad, "config", {"not": object()})  # not JSON-serialisable: fails mid-write
    with pytest.raises(TypeError):
        bad.save(path)
    assert ObjectFlow.load(path).task == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["f.zarr"]  # no temporary left behind



def _tracker_store(path, points, trajectories, task="close the laptop"):
    """A flow as another tool writes it: zarr by hand, points and trajectories only."""
    g = zarr.open_group(str(path), mode="w")
    g.attrs.update({"schema": "chord-robot/object-flow", "version": 1, "task": task, "num_frames": len(trajectories),
                    "fps": 10.0, "prior": "tracker", "units": "m", "frame": "world"})
    g.create_array("objects/lid/points", data=points.astype(np.float32))
    g.create_array("objects/lid/trajectories", data=trajectories.astype(np.float32))
    return path


def test_a_flow_of_points_and_trajectories_only_loads_and_interpolates(tmp_path):
    rng = np.random.default_rng(3)
    pts = rng.uniform(-0.1, 0.1, (400, 3))
    poses = np.tile(np.eye(4), (6, 1, 1))
    for i in range(6):
        poses[i, :3, :3] = _rot_z(0.1 * i)
        poses[i, :3, 3] = [0.02 * i, 0, 0.01 * i]
    truth = ObjectMotion.rigid(pts, poses)
    flow = ObjectFlow.load(_tracker_store(tmp_path / "t.zarr", pts, truth.trajectories))
    m = flow.objects["lid"]
    assert not m.has_controls and m.centers is None and flow.prior == "tracker"
    np.testing.assert_allclose(m.evaluate(pts[:20]), truth.trajectories[:, :20], atol=1e-6)  # given points: exact
    query = rng.uniform(-0.08, 0.08, (50, 3))  # between the given points: a rigid motion is followed
    err = np.linalg.norm(m.evaluate(query) - truth.evaluate(query), axis=-1)  # (inverse-distance
    assert err.max() < 1e-5, err.max()  # averaging of displacements was 7 mm off here)
    _, turned = interpolate_trajectories(query, pts, truth.trajectories, rotations=True)  # and each turns with it
    np.testing.assert_allclose(turned, np.broadcast_to(poses[:, None, :3, :3], turned.shape), atol=1e-5)
    flow.save(tmp_path / "again.zarr")  # written back without a control group
    back = ObjectFlow.load(tmp_path / "again.zarr")
    assert not back.objects["lid"].has_controls
    assert "control" not in zarr.open_group(str(tmp_path / "again.zarr"), mode="r")["objects/lid"]
    with pytest.raises(SchemaError, match="need centers, quats and translations; got only centers"):
        ObjectMotion(pts, truth.trajectories, centers=truth.centers)
