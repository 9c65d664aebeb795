import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from chord_robot.errors import SchemaError
from chord_robot.plans import Plan


def _plan(rng, t=10, dof=7, mode="grasp", **kw):
    q = rng.normal(size=(t, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ee = np.concatenate([q, rng.normal(size=(t, 3))], 1)
    a, b = t // 3, 2 * t // 3
    args = dict(
        robot="panda", robot_urdf="pybullet_data:franka_panda/panda.urdf", object="lid", mode=mode,
        grasp_pose=ee[a], grasp_width=0.03, ee_poses=ee, joints=rng.normal(size=(t, dof)),
        times=np.cumsum(rng.uniform(0.01, 0.2, t)) - 0.0, gripper=rng.random(t),
        segments={"approach": [0, a], "manipulate": [a, b], "retreat": [b, t - 1]}, dt=0.1,
        costs={"flow": 1e-4, "smooth": 0.2}, joint_names=[f"j{i}" for i in range(dof)],
    )
    args["times"] = args["times"] - args["times"][0]
    args.update(kw)
    return Plan(**args)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(3, 60), dof=st.integers(1, 9), seed=st.integers(0, 999), mode=st.sampled_from(["grasp", "push"]))
def test_plan_round_trip(tmp_path_factory, t, dof, seed, mode):
    p = _plan(np.random.default_rng(seed), t, dof, mode)
    path = tmp_path_factory.mktemp("plan") / "p.zarr"
    p.save(path)
    b = Plan.load(path)
    for f in ("grasp_pose", "ee_poses", "joints", "times", "gripper", "robot_base"):
        np.testing.assert_array_equal(getattr(b, f), getattr(p, f))
    assert (b.robot, b.robot_urdf, b.object, b.mode, b.dt, b.grasp_width) == (
        p.robot, p.robot_urdf, p.object, p.mode, p.dt, p.grasp_width)
    assert b.segments == p.segments and b.costs == p.costs and b.joint_names == p.joint_names
    assert b.joints[b.segment("manipulate")].shape[0] == p.segments["manipulate"][1] - p.segments["manipulate"][0] + 1


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"mode": "throw"}, "mode must be one of"),
        ({"times": np.zeros(10)}, "times must start at 0 and increase strictly"),
        ({"gripper": np.full(10, 1.5)}, r"gripper commands must lie in \[0, 1\]"),
        ({"ee_poses": np.zeros((9, 7))}, r"ee_poses must be \(10, 7\)"),
        ({"segments": {"approach": [0, 3], "manipulate": [2, 11], "retreat": [11, 11]}}, "segment manipulate"),
        ({"segments": {"approach": [0, 3], "manipulate": [3, 6]}}, "segments must be exactly"),
        ({"joint_names": ["a"]}, "1 joint names for 7 joints"),
    ],
)
def test_inconsistent_plans_are_rejected(kw, message):
    with pytest.raises(SchemaError, match=message):
        _plan(np.random.default_rng(0), **kw)


def test_tampered_store_is_rejected(tmp_path):
    path = tmp_path / "p.zarr"
    _plan(np.random.default_rng(0)).save(path)
    g = zarr.open_group(str(path), mode="r+")
    del g["joints"]
    g.create_array("joints", data=np.zeros((4, 7)))
    with pytest.raises(SchemaError, match=r"ee_poses must be \(4, 7\), got \(10, 7\)"):
        Plan.load(path)
    g.attrs["schema"] = "chord-robot/object-flow"
    with pytest.raises(SchemaError, match="expected 'chord-robot/plan'"):
        Plan.load(path)
