"""The real-arm backends at their SDK boundary: recording doubles of franky, ur-rtde and the
xArm SDK (none installed) show that the joint trajectory, the speed scale and the gripper
commands reaching each SDK are what the plan asks, in that SDK's units and conventions.

None of this has been run against a physical arm."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from chord_robot.errors import ExecutionFault, InputError
from hardware.arm import Arm
from hardware.backends import open_arm, parse_robot_address
from hardware.backends.franka import FrankaArm
from hardware.backends.ur import URArm, URConfig
from hardware.backends.xarm import XArm, XArmConfig, pulse_to_width, width_to_pulse
from hardware.robots import UR5E, XARM6
from hardware.runner import Motion, prepare, run
from hardware.safety import Refusal
from tests.hardware.conftest import Log, fake_franky, fake_ur, fake_xarm
from tests.hardware.plans import UR5E_URDF, grasp_plan, two_move_plan

UR_Q0 = np.array([np.pi, -1.57, 1.57, -1.57, -1.57, 0.0])
UR_Q1 = np.array([np.pi + 0.3, -1.37, 1.37, -1.47, -1.57, 0.2])
XARM_Q0 = np.array([0.0, -0.5, -0.5, 0.0, 1.0, 0.0])
XARM_Q1 = np.array([0.3, -0.2, -1.0, 0.0, 1.2, 0.4])


@pytest.fixture
def ur_urdf(tmp_path):
    path = tmp_path / "ur5e.urdf"
    path.write_text(UR5E_URDF)
    return str(path)


def test_addresses():
    a = parse_robot_address("xarm://192.168.1.185?model=xarm7")
    assert (a.kind, a.host, a.options) == ("xarm", "192.168.1.185", {"model": "xarm7"})
    assert parse_robot_address("sim").kind == "sim"
    assert str(parse_robot_address("franka://172.16.0.2")) == "franka://172.16.0.2"
    for bad in ("kuka://1.2.3.4", "franka://", "ur://h?port=1", "192.168.0.2"):
        with pytest.raises(InputError):
            parse_robot_address(bad)
    assert open_arm(parse_robot_address("xarm://h?model=xarm7")).info.robot == "xarm7"
    with pytest.raises(InputError, match="known models"):
        open_arm(parse_robot_address("xarm://h?model=xarm9"))


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", None)  # import fails as if not installed
    arm = FrankaArm("172.16.0.2")
    with pytest.raises(InputError, match=r"pip install 'chord-robot\[franka\]'"):
        run(arm, prepare(grasp_plan(), arm.info, 0.5))


# --------------------------------------------------------------------------- Franka


def test_franka_gets_waypoints_speed_and_gripper_in_franky_units(sdk):
    plan = grasp_plan()
    log = Log()
    sdk({"franky": fake_franky(log, plan.joints[0])})
    arm = FrankaArm("172.16.0.2")
    assert isinstance(arm, Arm) and arm.info.real
    prepared = prepare(plan, arm.info, 0.5)
    result = run(arm, prepared)
    assert result.final_error < 1e-9
    assert [c[0] for c in log if c[0] in ("Robot", "Gripper")] == ["Robot", "Gripper"]
    assert log.named("Robot")[0][1] == ("172.16.0.2",)

    moves = [c[1][0] for c in log.named("move")]
    assert len(moves) == 2 and all(c[2] == {"asynchronous": True} for c in log.named("move"))
    motions = [item.trajectory for item in prepared.program if isinstance(item, Motion)]
    n = 31  # steps per motion in grasp_plan
    for motion, traj, first in zip(moves, motions, (0, n)):
        assert motion.relative_dynamics_factor == 0.5  # the speed scale, as franky's factor
        targets = np.array([w.target.position for w in motion.waypoints])
        np.testing.assert_allclose(
            targets, plan.joints[first + 1 : first + n], atol=1e-12
        )  # radians
        times = np.array([w.minimum_time for w in motion.waypoints])
        np.testing.assert_allclose(times, np.diff(plan.times[first : first + n]) / 0.5, atol=1e-12)
        np.testing.assert_allclose(motion.waypoints[-1].target.velocity, 0.0, atol=1e-12)
        np.testing.assert_allclose(
            [w.target.velocity for w in motion.waypoints], traj.velocities[1:]
        )
    assert sum(times) == pytest.approx(1.5 / 0.5)  # seconds, stretched by 1/speed

    grip = [c for c in log if c[0].startswith("gripper.")]
    assert grip[0] == ("gripper.move", (0.08, 0.05), {})  # open: metres, m/s
    assert grip[1] == (
        "gripper.grasp",
        (0.04, 0.05, 20.0),
        {"epsilon_inner": 0.02, "epsilon_outer": 0.02},
    )
    order = [c[0] for c in log if c[0] in ("move", "gripper.move", "gripper.grasp", "stop")]
    assert order == ["gripper.move", "move", "gripper.grasp", "move", "stop"]


def test_franka_fault_during_motion_sends_stop(sdk):
    plan = grasp_plan()
    log = Log()
    sdk({"franky": fake_franky(log, plan.joints[0], join_error=RuntimeError("cartesian_reflex"))})
    arm = FrankaArm("172.16.0.2")
    with pytest.raises(
        ExecutionFault, match="RuntimeError: cartesian_reflex.*stop command.*stopped at step 0"
    ):
        run(arm, prepare(plan, arm.info, 0.5))
    assert log.named("stop") and [c[0] for c in log][-1] == "stop"
    assert not log.named("gripper.stop")  # a grasp is never released by a fault


def test_franka_failed_grasp_is_a_fault(sdk):
    plan = grasp_plan()
    log = Log()
    sdk({"franky": fake_franky(log, plan.joints[0], grasp_ok=False)})
    arm = FrankaArm("172.16.0.2")
    with pytest.raises(ExecutionFault, match="grasp failed.*stopped at step 30 of 61"):
        run(arm, prepare(plan, arm.info, 0.5))
    assert len(log.named("move")) == 1 and log.named("stop")


def test_franka_dry_run_reads_but_never_commands(sdk):
    plan = grasp_plan()
    log = Log()
    sdk({"franky": fake_franky(log, plan.joints[0])})
    arm = FrankaArm("172.16.0.2")
    result = run(arm, prepare(plan, arm.info, 0.5), dry_run=True)
    assert not result.moved and result.report.get("start").ok
    assert not [c for c in log if c[0] in ("move", "gripper.move", "gripper.grasp")]


# --------------------------------------------------------------------------- UR


def test_ur_streams_servoj_at_the_scaled_timing(sdk, ur_urdf):
    plan = two_move_plan(UR5E, UR_Q0, UR_Q1, duration=1.0, steps=21, urdf=ur_urdf)
    log = Log()
    sdk(fake_ur(log, plan.joints[0]))
    arm = URArm("10.0.0.2", URConfig(rate_hz=125.0, gripper_digital_out=3), sleep=lambda s: None)
    prepared = prepare(plan, arm.info, 0.5)
    result = run(arm, prepared)
    assert result.final_error < 1e-9

    servo = log.named("servoJ")
    dt = 1 / 125
    # each 1 s move lasts 2 s at speed 0.5: 250 periods of 8 ms, per move
    assert len(servo) == 2 * 250
    assert {c[1][3] for c in servo} == {dt}
    assert {(c[1][4], c[1][5]) for c in servo} == {(0.1, 300.0)}  # lookahead time, gain
    first = np.array([c[1][0] for c in servo[:250]])
    traj = prepared.trajectories[0]
    t = np.arange(1, 251) * dt
    np.testing.assert_allclose(
        first, traj.curve()(np.minimum(t, traj.duration)), atol=1e-12
    )  # radians
    np.testing.assert_allclose(first[-1], UR_Q1, atol=1e-12)
    np.testing.assert_allclose(first[124], traj.curve()(1.0), atol=1e-12)  # plan time 0.5 s
    assert len(log.named("initPeriod")) == len(log.named("waitPeriod")) == 500
    assert len(log.named("servoStop")) == 2
    assert log.named("setStandardDigitalOut") == [
        ("setStandardDigitalOut", (3, False), {}),
        ("setStandardDigitalOut", (3, True), {}),
    ]
    tail = [c[0] for c in log][-5:]
    assert tail == [
        "stopJ",
        "stopScript",
        "control.disconnect",
        "receive.disconnect",
        "io.disconnect",
    ]


def test_ur_refuses_a_panda_plan(sdk):
    arm = URArm("10.0.0.2")
    with pytest.raises(Refusal, match=r"is for a 'panda' \(7 joints\).*is a 'ur5e' \(6 joints\)"):
        prepare(grasp_plan(), arm.info, 0.5)


def test_ur_without_a_gripper_refuses_a_plan_that_grasps(sdk, ur_urdf):
    plan = two_move_plan(UR5E, UR_Q0, UR_Q1, urdf=ur_urdf)
    arm = URArm("10.0.0.2")
    refusal = prepare(plan, arm.info, 0.5).report.failed
    assert [c.name for c in refusal] == ["gripper"] and "no gripper" in refusal[0].detail


def test_ur_fault_mid_stream_sends_servo_stop(sdk, ur_urdf):
    plan = two_move_plan(UR5E, UR_Q0, UR_Q1, urdf=ur_urdf)
    log = Log()
    sdk(fake_ur(log, plan.joints[0], fail_at=100))
    arm = URArm("10.0.0.2", URConfig(rate_hz=125.0, gripper_digital_out=0), sleep=lambda s: None)
    with pytest.raises(ExecutionFault, match="RTDE connection lost.*stopped at step 7 of 41"):
        run(arm, prepare(plan, arm.info, 0.5))
    # 99 periods of 8 ms = 0.792 s at speed 0.5 = plan time 0.396 s: step 7 of the first move
    assert len(log.named("servoJ")) == 100
    assert [c[0] for c in log].index("servoStop") > [c[0] for c in log].index("servoJ")


# --------------------------------------------------------------------------- xArm


def test_xarm_pulses_and_radians(sdk):
    assert width_to_pulse(0.085) == 850 and width_to_pulse(0.0) == 0 and width_to_pulse(0.2) == 850
    assert pulse_to_width(425) == pytest.approx(0.0425)
    plan = two_move_plan(XARM6, XARM_Q0, XARM_Q1, duration=1.0, steps=21)
    log = Log()
    sdk(fake_xarm(log, plan.joints[0], object_width=0.04))
    arm = XArm("192.168.1.185", XArmConfig(rate_hz=50.0), sleep=lambda s: None, clock=lambda: 0.0)
    prepared = prepare(plan, arm.info, 0.5)
    result = run(arm, prepared)
    assert result.final_error < 1e-9
    assert log.named("XArmAPI")[0][2] == {"is_radian": True}
    # servo mode is set up before the first streamed angle, once
    names = [c[0] for c in log]
    assert names.index("motion_enable") < names.index("set_mode") < names.index("set_servo_angle_j")
    assert log.named("set_mode")[0][1] == (1,) and log.named("set_state")[0][1] == (0,)
    servo = log.named("set_servo_angle_j")
    assert len(servo) == 2 * 100  # 2 s per move at speed 0.5, every 20 ms
    assert all(c[2] == {"is_radian": True} for c in servo)
    angles = np.array([c[1][0] for c in servo])
    assert np.abs(angles).max() < 1.3  # radians, not degrees
    traj = prepared.trajectories[0]
    np.testing.assert_allclose(angles[:100], traj.curve()(np.arange(1, 101) * 0.02), atol=1e-12)
    grips = [c[1][0] for c in log.named("set_gripper_position")]
    assert grips[0] == 850.0  # open: gripper command 1 = the xArm Gripper's full 85 mm, in pulses
    assert grips[1] == 0.0  # grasp: close to width - 2 x tolerance = 0 m; stops on the 40 mm object
    assert all(c[2]["wait"] for c in log.named("set_gripper_position"))
    assert log.named("set_state")[-1][1] == (4,)  # stop at the end


def test_xarm_error_code_is_a_fault_and_stops(sdk):
    plan = two_move_plan(XARM6, XARM_Q0, XARM_Q1, duration=1.0, steps=21)
    log = Log()
    sdk(fake_xarm(log, plan.joints[0], fail_at=30))
    arm = XArm("192.168.1.185", XArmConfig(rate_hz=50.0), sleep=lambda s: None, clock=lambda: 0.0)
    with pytest.raises(ExecutionFault, match="set_servo_angle_j returned code 1"):
        run(arm, prepare(plan, arm.info, 0.5))
    assert log.named("set_state")[-1][1] == (4,)


def test_xarm_grasp_on_nothing_is_a_fault(sdk):
    plan = two_move_plan(XARM6, XARM_Q0, XARM_Q1, duration=1.0, steps=21)
    log = Log()
    sdk(fake_xarm(log, plan.joints[0], object_width=None))
    arm = XArm("192.168.1.185", XArmConfig(rate_hz=50.0), sleep=lambda s: None, clock=lambda: 0.0)
    with pytest.raises(ExecutionFault, match="grasp failed, the fingers stopped at 0.0 mm"):
        run(arm, prepare(plan, arm.info, 0.5))
