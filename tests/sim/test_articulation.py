"""Measuring a joint's turn in a flow: the tasks' oracle flows measure their true angles, a
lid lifted off its hinge or stretched shows in the gap and rigidity figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import articulation as art
from sim.tasks.close_laptop import CloseLaptop
from sim.tasks.lower_lamp import LowerLamp


def test_twist_ignores_the_swing():
    from scipy.spatial.transform import Rotation

    axis = np.array([0.0, 1.0, 0.0])
    turn = Rotation.from_rotvec(np.radians(40.0) * axis).as_matrix()
    tilt = Rotation.from_rotvec(np.radians(25.0) * np.array([1.0, 0.0, 0.0])).as_matrix()
    assert art.twist_deg(turn, axis) == pytest.approx(40.0, abs=1e-6)
    assert art.twist_deg(turn.T, axis) == pytest.approx(-40.0, abs=1e-6)
    assert art.twist_deg(tilt, axis) == pytest.approx(0.0, abs=1e-6)
    assert art.twist_deg(tilt @ turn, axis) == pytest.approx(40.0, abs=2.0)  # swing of 25 deg barely leaks


def test_laptop_oracle_flow_measures_the_lid_closing_with_a_still_base(world):
    task = CloseLaptop(world)
    task.reset(3)
    start = task.lid_angle()
    flow = task.oracle_flow(num_frames=9, points_per_object=1500)
    a = art.articulation("laptop", task.spec, task.base_pose, (start,))
    m = art.measure(flow.objects["laptop"].trajectories, a)
    truth = math.degrees(task.oracle_angle(1.0) - start)
    assert truth < -30
    assert m["final_deg"] == pytest.approx(truth, abs=1.0)
    assert all(b <= a + 0.5 for a, b in zip(m["angle_deg"], m["angle_deg"][1:]))  # monotone closing
    assert m["base_drift_max_mm"] < 0.5 and max(m["joint_gap_mm"]) < 0.5
    assert max(m["rigidity_mm"].values()) < 0.5
    assert min(m["points"].values()) > 300

    # the same flow with the lid lifted 3 cm and stretched along its length: caught
    traj = flow.objects["laptop"].trajectories.copy()
    lid = m["points"]["lid"]
    tree_lid = art.cKDTree(a.samples[1])
    tree_base = art.cKDTree(a.samples[0])
    owner = tree_lid.query(traj[0])[0] < tree_base.query(traj[0])[0]
    assert owner.sum() == lid
    ramp = np.linspace(0, 1, len(traj))[:, None]
    traj[:, owner, 2] += 0.03 * ramp
    centre = traj[:, owner].mean(1, keepdims=True)
    traj[:, owner] = centre + (traj[:, owner] - centre) * (1 + 0.3 * ramp[..., None])
    bad = art.measure(traj, a)
    assert max(bad["joint_gap_mm"]) > 20 and bad["rigidity_mm"]["lid"] > 10
    assert bad["base_drift_max_mm"] < 0.5


def test_lamp_oracle_flow_measures_the_head_lowering(world):
    task = LowerLamp(world)
    task.reset(5)
    q0 = task.joints()
    flow = task.oracle_flow(num_frames=9, points_per_object=1500)
    a = art.articulation("lamp", task.spec, task.base_pose, tuple(q0))
    m = art.measure(flow.objects["lamp"].trajectories, a)
    q1 = task.oracle_joints(1.0)
    truth = math.degrees(sum(q1) - sum(q0))
    assert abs(truth) > 20
    assert m["final_deg"] == pytest.approx(truth, abs=1.5)
    assert m["base_drift_max_mm"] < 0.5 and max(m["joint_gap_mm"]) < 0.5
    assert m["overlap_mm"] < 3.0 and m["overlap_points"] == 0  # the links keep out of each other (a joint: 2 mm)


def test_a_lamp_head_turned_into_its_own_arm_shows_as_overlap(world):
    """Turned 57 degrees and more about its joint (from 16), the closed shade takes in the arm."""
    from sim import assets
    from sim.tasks import motion

    task = LowerLamp(world)
    task.reset(5)
    q0 = task.joints()
    a = art.articulation("lamp", task.spec, task.base_pose, tuple(q0))
    for head_turn in (1.0, 1.3):
        path = [(q0[0], q0[1] + s * head_turn) for s in np.linspace(0.0, 1.0, 9)]
        fk = [assets.lamp_link_poses(task.spec, arm, head) for arm, head in path]
        poses = {name: np.stack([task.base_pose @ f[name] for f in fk]) for name in ("base", "arm", "head")}
        lamp = motion.articulated_motion(task.object_links()["lamp"], poses, 1500, np.random.default_rng(0))
        m = art.measure(lamp.trajectories, a)
        assert m["overlap_mm"] > 15.0 and m["overlap_points"] > 50, (head_turn, m["overlap_mm"], m["overlap_points"])


def test_unknown_kind_and_too_few_points_are_errors(world):
    task = CloseLaptop(world)
    task.reset(0)
    with pytest.raises(ValueError, match="unknown articulated kind"):
        art.articulation("drawer", task.spec, task.base_pose, (0.5,))
    a = art.articulation("laptop", task.spec, task.base_pose, (task.lid_angle(),))
    far = np.full((3, 2, 3), 5.0)
    with pytest.raises(ValueError, match="too few points"):
        art.measure(far, a)
