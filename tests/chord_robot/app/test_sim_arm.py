"""The PyBullet backend end to end: a real executor behind the same protocol and safety layer."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.app.sim_arm import SimArm
from chord_robot.errors import ExecutionFault
from chord_robot.geometry import matrix_to_pose, pose_to_matrix
from hardware.arm import Arm
from hardware.kinematics import kinematics_for
from hardware.robots import PANDA
from hardware.runner import prepare, run
from tests.hardware.plans import HOME, REACH, grasp_plan, move_plan


def test_sim_arm_is_an_arm():
    assert isinstance(SimArm(), Arm)


def test_plan_executes_to_its_last_configuration():
    plan = move_plan(HOME, REACH, duration=2.0)
    arm = SimArm(joints=plan.joints[0])
    result = run(arm, prepare(plan, arm.info, 1.0))
    assert result.moved and result.stopped
    assert result.final_error < 0.02
    np.testing.assert_allclose(result.final_state.joints, REACH, atol=0.02)
    assert result.progress.step == plan.num_steps - 1
    assert result.progress.time == pytest.approx(2.0)
    assert arm.commands == ["gripper", "follow", "stop"]


def test_state_is_in_the_robot_base_frame():
    """The simulated TCP, reported in the base frame, is forward kinematics of the joints, and
    in the world it is where the plan's robot_base puts it, wherever the base stands."""
    from sim.world import tcp_pose

    yaw = 0.7
    base = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2), 0.4, -0.3, 0.0])
    arm = SimArm(base_pose=base, joints=REACH)
    arm.connect()
    try:
        state = arm.state()
        world_tcp = pose_to_matrix(tcp_pose(arm.world, arm.panda))
    finally:
        arm.disconnect()
    fk = kinematics_for(PANDA).link_poses(state.joints[None], [PANDA.tcp_link])[PANDA.tcp_link][0]
    np.testing.assert_allclose(pose_to_matrix(state.ee_pose), fk, atol=1e-5)
    np.testing.assert_allclose(world_tcp, pose_to_matrix(base) @ fk, atol=1e-5)
    np.testing.assert_allclose(
        move_plan(REACH, REACH + 0.1, robot_base=base).ee_poses[0],
        matrix_to_pose(pose_to_matrix(base) @ fk),
        atol=1e-4,
    )


def test_grasp_plan_alternates_gripper_actions_and_motions():
    plan = grasp_plan()
    arm = SimArm(joints=plan.joints[0])
    result = run(arm, prepare(plan, arm.info, 0.8))
    assert arm.commands == ["gripper", "follow", "gripper", "follow", "stop"]
    assert result.final_error < 0.02
    assert result.progress.gripper_commands == 2
    assert result.final_state.gripper_width < 0.01  # closed on nothing


@pytest.mark.parametrize(
    "fault", [RuntimeError("encoder glitch"), KeyboardInterrupt()], ids=["exception", "ctrl-c"]
)
def test_fault_mid_trajectory_stops_the_arm_and_reports_how_far_it_got(fault):
    plan = move_plan(HOME, REACH, duration=2.0, steps=41)
    seen = []

    def inject(t: float) -> None:
        if t >= 0.5:
            seen.append(t)
            raise fault

    arm = SimArm(joints=plan.joints[0], on_step=inject)
    with pytest.raises(ExecutionFault) as info:
        run(arm, prepare(plan, arm.info, 1.0))
    message = str(info.value)
    assert arm.stop_calls == 1 and arm.commands[-1] == "stop"
    assert "the arm was sent a stop command" in message
    # 0.5 s into a 2 s plan of 41 steps: step 10 of 40
    assert "stopped at step 10 of 40 (approach), t = 0.50 s of 2.00 s" in message
    cause = (
        "interrupted by Ctrl-C"
        if isinstance(fault, KeyboardInterrupt)
        else "RuntimeError: encoder glitch"
    )
    assert cause in message
    assert info.value.exit_code == 1
    assert arm.world is None  # disconnected
    assert len(seen) == 1
