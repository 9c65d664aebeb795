"""The safety layer refuses, with the right reason and without moving the arm."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.errors import SafetyError
from chord_robot.geometry import invert, matrix_to_pose, pose_to_matrix
from hardware.kinematics import kinematics_for
from hardware.robots import PANDA
from hardware.runner import ExecuteConfig, prepare, run
from hardware.safety import Refusal
from hardware.safety_config import SafetyConfig
from tests.hardware.conftest import RecordingArm
from tests.hardware.plans import HOME, REACH, grasp_plan, min_jerk, move_plan, panda_plan

BELOW_TABLE = np.array([0.0, 1.2, 0.0, -1.2, 0.0, 2.6, 0.8])  # TCP at z = -0.047 m


def refuse(plan, speed=1.0, config=None, registration=None, arm=None):
    """Run ``plan`` on a recording arm; return the Refusal and the arm (which must not move)."""
    arm = arm or RecordingArm(plan.joints[0])
    with pytest.raises(Refusal) as info:
        run(arm, prepare(plan, arm.info, speed, config, registration), config)
    assert not arm.moved
    return info.value, arm


def test_smooth_plan_passes_every_check_and_runs():
    plan = grasp_plan()
    arm = RecordingArm(plan.joints[0])
    prepared = prepare(plan, arm.info, 1.0)
    assert prepared.report.ok, prepared.report.failed
    result = run(arm, prepared)
    assert arm.calls == [
        "connect",
        "state",
        "gripper",
        "follow",
        "gripper",
        "follow",
        "state",
        "stop",
        "disconnect",
    ]
    assert result.final_error < 1e-12 and result.progress.step == plan.num_steps - 1
    assert result.report.get("start").ok


def test_joint_beyond_its_limit_is_refused():
    # panda_joint4 must stay below -0.0698 rad (Franka's limit; the URDF allows 0.0)
    target = REACH.copy()
    target[3] = -0.03
    refusal, arm = refuse(move_plan(HOME, target, duration=3.0))
    assert refusal.names == ["joint_limits"]
    assert "panda_joint4" in str(refusal) and "above its upper limit -0.0698" in str(refusal)
    assert str(refusal).startswith("refused, nothing moved")
    assert arm.calls == []  # refused before connecting
    assert isinstance(refusal, SafetyError) and refusal.exit_code == 2


def test_velocity_over_the_limit_becomes_legal_at_a_lower_speed():
    # joint 1 sweeps 3 rad in 2 s: min-jerk peak 1.875 * 3 / 2 = 2.81 rad/s > 2.175 rad/s
    q1 = HOME.copy()
    q1[0] = 1.5
    q0 = HOME.copy()
    q0[0] = -1.5
    plan = move_plan(q0, q1, duration=2.0, steps=81)
    refusal, _ = refuse(plan, speed=1.0)
    assert refusal.names == ["velocity"]
    assert "panda_joint1" in str(refusal) and "lower the speed scale" in str(refusal)

    fast = prepare(plan, RecordingArm(q0).info, 1.0).report
    slow_arm = RecordingArm(q0)
    slow = prepare(plan, slow_arm.info, 0.7).report
    assert slow.ok, slow.failed
    run(slow_arm, prepare(plan, slow_arm.info, 0.7))
    assert "follow" in slow_arm.calls
    # time scaling by 1/s: velocity x s, acceleration x s^2, jerk x s^3
    for name, power in (("velocity", 1), ("acceleration", 2), ("jerk", 3)):
        assert slow.get(name).value == pytest.approx(fast.get(name).value * 0.7**power, rel=1e-9)
    assert fast.get("velocity").value == pytest.approx(100 * 1.875 * 3.0 / 2.0 / 2.175, rel=0.02)


def test_end_effector_below_the_table_is_refused():
    refusal, _ = refuse(move_plan(HOME, BELOW_TABLE, duration=3.0))
    assert refusal.names == ["table"]
    assert "below the table" in str(refusal) and "z = +0.000 m" in str(refusal)
    # the same motion is legal with the table plane 10 cm lower
    cfg = ExecuteConfig(safety=SafetyConfig(table_z=-0.1))
    assert prepare(
        move_plan(HOME, BELOW_TABLE, duration=3.0), RecordingArm(HOME).info, 1.0, cfg
    ).report.ok


def test_leaving_the_workspace_box_is_refused():
    cfg = ExecuteConfig(safety=SafetyConfig(workspace_upper=(0.5, 0.8, 1.3), table_z=-0.1))
    refusal, _ = refuse(move_plan(HOME, BELOW_TABLE, duration=3.0), config=cfg)
    assert refusal.names == ["workspace"] and "upper x = +0.500 m" in str(refusal)


def test_start_far_from_the_current_state_is_refused_after_reading_it():
    plan = move_plan()
    current = plan.joints[0].copy()
    current[1] += 0.3
    refusal, arm = refuse(plan, arm=RecordingArm(current))
    assert refusal.names == ["start"]
    assert "0.300 rad away" in str(refusal) and "panda_joint2" in str(refusal)
    assert arm.calls == ["connect", "state", "stop", "disconnect"]


def test_gripper_acting_while_the_arm_moves_is_refused():
    t, q = min_jerk(HOME, REACH, 2.0, 41)
    gripper = np.where(np.arange(41) < 20, 1.0, 0.0)  # closes at step 20, mid-motion
    refusal, _ = refuse(panda_plan(t, q, gripper))
    # (stopping there to let the gripper act would also be a jolt the acceleration check sees)
    assert "gripper" in refusal.names and "between steps 19 and 20" in str(refusal)


def test_speed_above_the_site_maximum_is_refused():
    cfg = ExecuteConfig(safety=SafetyConfig(max_speed=0.5))
    refusal, arm = refuse(move_plan(), speed=0.8, config=cfg)
    assert refusal.names == ["speed"] and arm.calls == []


def test_registration_maps_the_plans_base_onto_the_robot():
    yaw = np.pi / 2
    base = np.array(
        [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2), 0.5, 0.2, 0.0]
    )  # robot in the scan frame
    plan = move_plan(robot_base=base)
    arm = RecordingArm(plan.joints[0])
    robot_from_scan = invert(pose_to_matrix(base))
    prepared = prepare(plan, arm.info, 1.0, None, robot_from_scan)
    assert prepared.report.ok, prepared.report.failed
    assert prepared.report.get("base").value < 1e-9 and prepared.report.get("tcp").value < 1e-9
    # a registration 5 cm off: the plan was made for a robot elsewhere
    shifted = pose_to_matrix(np.array([1.0, 0, 0, 0, 0.05, 0, 0])) @ robot_from_scan
    refusal, _ = refuse(plan, registration=shifted)
    assert refusal.names == ["base", "tcp"] and "0.050 m" in str(refusal)


def test_plan_whose_poses_disagree_with_its_joints_is_refused():
    import dataclasses

    plan = move_plan()
    bad_ee = plan.ee_poses.copy()
    bad_ee[:, 6] += 0.03  # poses 3 cm higher than the joints put the TCP
    refusal, _ = refuse(dataclasses.replace(plan, ee_poses=bad_ee))
    assert refusal.names == ["tcp"] and "panda_grasptarget" in str(refusal)


def test_unknown_robot_is_refused():
    import dataclasses

    plan = dataclasses.replace(move_plan(), robot="kuka_iiwa")
    with pytest.raises(SafetyError, match="no limits are known for robot 'kuka_iiwa'"):
        prepare(plan, RecordingArm(HOME).info, 1.0)


def test_checked_points_follow_the_plan_frames():
    """The TCP from forward kinematics, mapped by the plan's base, is the plan's ee pose."""
    base = np.array([1.0, 0, 0, 0, 0.1, -0.2, 0.05])
    plan = move_plan(robot_base=base)
    kin = kinematics_for(PANDA)
    tcp = kin.link_poses(plan.joints, [PANDA.tcp_link])[PANDA.tcp_link]
    np.testing.assert_allclose(matrix_to_pose(pose_to_matrix(base) @ tcp), plan.ee_poses, atol=1e-9)


# --------------------------------------------------------------------------- limits only tighten

LOOSER = [  # (field, a value looser than the built-in limits)
    ("max_speed", 20.0), ("max_speed", 1.01), ("max_speed", 0.0), ("max_speed", -1.0),
    ("limit_fraction", 4.0), ("limit_fraction", 1.0001), ("limit_fraction", 0.0),
    ("position_margin", -0.01), ("position_margin", 1.0),
    ("table_clearance", -0.01), ("table_clearance", 0.0), ("table_clearance", 0.004),
    ("start_tolerance", 0.5), ("start_tolerance", 0.0101), ("start_tolerance", 0.0),
    ("base_tolerance", 0.1), ("base_angle_tolerance", 0.2), ("tcp_tolerance", 0.05),
    ("rest_tolerance", 0.01), ("max_duration", 3600.0), ("check_dt", 0.02), ("check_dt", 0.0),
    ("max_speed", float("nan")), ("limit_fraction", float("inf")), ("max_speed", True), ("max_speed", "fast"),
    ("workspace_lower", (-0.5, -0.8, -0.1)), ("workspace_upper", (1.0, 0.8, 2.0)),
    ("workspace_upper", (1.0, 0.9, 1.3)),
    ("workspace_upper", (-0.4, 0.8, 1.3)), ("workspace_lower", (-0.3, -0.8)), ("workspace_upper", (1.0, 0.8, float("nan"))),
    ("table_z", -0.5), ("table_z", 1.3), ("table_z", float("nan")),
]
TIGHTER = [
    ("max_speed", 0.5), ("max_speed", 1.0), ("limit_fraction", 0.8), ("position_margin", 0.05),
    ("table_clearance", 0.02), ("start_tolerance", 0.005), ("base_tolerance", 0.005),
    ("base_angle_tolerance", 0.01), ("tcp_tolerance", 0.002), ("rest_tolerance", 1e-4), ("max_duration", 60.0),
    ("check_dt", 0.002), ("workspace_lower", (-0.2, -0.5, 0.0)), ("workspace_upper", (0.8, 0.5, 1.0)),
    ("table_z", -0.05), ("table_z", 0.1),
]


@pytest.mark.parametrize("field, value", LOOSER)
def test_a_config_cannot_loosen_a_safety_limit(field, value):
    from chord_robot.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        SafetyConfig(**{field: value})
    assert info.value.field in (field, "workspace_lower"), info.value.field
    assert "allowed range" in str(info.value) or "built-in" in str(info.value) or "must" in str(info.value)


@pytest.mark.parametrize("field, value", TIGHTER)
def test_a_config_can_tighten_every_safety_limit(field, value):
    assert getattr(SafetyConfig(**{field: value}), field) == value


def test_the_reported_loosening_config_is_refused_with_the_field_and_its_range(tmp_path):
    """The issue's case: `[safety] max_speed = 20, limit_fraction = 4` let the demo's plan at
    --speed 2.5 pass a dry run at 107% of joint 2's velocity limit."""
    from chord_robot.errors import InputError
    from hardware.config import load_config

    path = tmp_path / "site.toml"
    path.write_text('robot = "sim"\n[safety]\nmax_speed = 20\nlimit_fraction = 4\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    message = str(info.value)
    assert message == (f"{path} [safety]: max_speed = 20 is outside its allowed range (0, 1]: a config can only "
                       "tighten the built-in safety limits")
    path.write_text('robot = "sim"\n[safety]\nmax_speed = 0.5\nlimit_fraction = 0.9\ntable_clearance = 0.01\n')
    safety = load_config(path).execute.safety
    assert (safety.max_speed, safety.limit_fraction, safety.table_clearance) == (0.5, 0.9, 0.01)
