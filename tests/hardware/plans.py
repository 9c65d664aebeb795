"""Small hand-made plans with known motion (the hardware tests' inputs)."""

from __future__ import annotations

import numpy as np

from chord_robot.geometry import matrix_to_pose, pose_to_matrix
from chord_robot.plans import Plan
from hardware.kinematics import kinematics_for
from hardware.robots import PANDA, RobotSpec

HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
REACH = np.array([0.3, -0.2, 0.2, -2.0, 0.1, 1.9, 0.9])
IDENTITY = np.array([1.0, 0, 0, 0, 0, 0, 0])


def min_jerk(
    q0: np.ndarray, q1: np.ndarray, duration: float, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Times (steps,) and joints (steps, dof) of a minimum-jerk move q0 -> q1 (rest to rest)."""
    t = np.linspace(0.0, duration, steps)
    s = t / duration
    blend = 10 * s**3 - 15 * s**4 + 6 * s**5
    return t, q0 + blend[:, None] * (q1 - q0)


def robot_plan(
    spec: RobotSpec,
    times: np.ndarray,
    joints: np.ndarray,
    gripper: np.ndarray | None = None,
    robot_base: np.ndarray = IDENTITY,
    mode: str = "grasp",
    grasp_width: float = 0.04,
    urdf: str | None = None,
) -> Plan:
    """A plan for ``spec`` whose ee_poses are forward kinematics of ``joints`` (world frame)."""
    n = len(times)
    kin = kinematics_for(spec, urdf)
    base_tcp = kin.link_poses(joints, [spec.tcp_link])[spec.tcp_link]
    ee = matrix_to_pose(pose_to_matrix(robot_base) @ base_tcp)
    third = max(n // 3, 1)
    return Plan(
        robot=spec.name,
        robot_urdf=urdf or spec.urdf,
        object="thing",
        mode=mode,
        grasp_pose=ee[n // 2],
        grasp_width=grasp_width,
        ee_poses=ee,
        joints=joints,
        times=times,
        gripper=np.ones(n) if gripper is None else gripper,
        segments={
            "approach": [0, third - 1],
            "manipulate": [third, 2 * third - 1],
            "retreat": [2 * third, n - 1],
        },
        dt=float(times[1] - times[0]),
        joint_names=list(spec.joint_names),
        robot_base=robot_base,
    )


def panda_plan(
    times: np.ndarray, joints: np.ndarray, gripper: np.ndarray | None = None, **kw
) -> Plan:
    """A Panda plan (see `robot_plan`)."""
    return robot_plan(PANDA, times, joints, gripper, **kw)


def two_move_plan(
    spec: RobotSpec, q0, q1, duration: float = 1.0, steps: int = 21, urdf: str | None = None
) -> Plan:
    """q0 -> q1, close the gripper at rest, q1 -> q0, for any robot."""
    t1, a = min_jerk(np.asarray(q0, float), np.asarray(q1, float), duration, steps)
    t2, b = min_jerk(np.asarray(q1, float), np.asarray(q0, float), duration, steps)
    times = np.concatenate([t1, t2 + t1[-1] + 0.5])
    gripper = np.concatenate([np.ones(steps), np.zeros(steps)])
    return robot_plan(spec, times, np.concatenate([a, b]), gripper, urdf=urdf)


# A kinematic stand-in for a UR5e (no UR URDF ships with the project): the joint layout of
# Universal Robots' ur_description with the UR5e's published link lengths.
UR5E_URDF = """<?xml version="1.0"?>
<robot name="ur5e_standin">
  <link name="base_link"/><link name="shoulder_link"/><link name="upper_arm_link"/>
  <link name="forearm_link"/><link name="wrist_1_link"/><link name="wrist_2_link"/>
  <link name="wrist_3_link"/><link name="tool0"/>
  <joint name="shoulder_pan_joint" type="revolute"><parent link="base_link"/><child link="shoulder_link"/>
    <origin xyz="0 0 0.1625" rpy="0 0 0"/><axis xyz="0 0 1"/><limit lower="-6.28" upper="6.28" effort="150" velocity="3.14"/></joint>
  <joint name="shoulder_lift_joint" type="revolute"><parent link="shoulder_link"/><child link="upper_arm_link"/>
    <origin xyz="0 0 0" rpy="1.570796327 0 0"/><axis xyz="0 0 1"/><limit lower="-6.28" upper="6.28" effort="150" velocity="3.14"/></joint>
  <joint name="elbow_joint" type="revolute"><parent link="upper_arm_link"/><child link="forearm_link"/>
    <origin xyz="-0.425 0 0" rpy="0 0 0"/><axis xyz="0 0 1"/><limit lower="-3.14" upper="3.14" effort="150" velocity="3.14"/></joint>
  <joint name="wrist_1_joint" type="revolute"><parent link="forearm_link"/><child link="wrist_1_link"/>
    <origin xyz="-0.3922 0 0.1333" rpy="0 0 0"/><axis xyz="0 0 1"/><limit lower="-6.28" upper="6.28" effort="28" velocity="3.14"/></joint>
  <joint name="wrist_2_joint" type="revolute"><parent link="wrist_1_link"/><child link="wrist_2_link"/>
    <origin xyz="0 -0.0997 0" rpy="1.570796327 0 0"/><axis xyz="0 0 1"/><limit lower="-6.28" upper="6.28" effort="28" velocity="3.14"/></joint>
  <joint name="wrist_3_joint" type="revolute"><parent link="wrist_2_link"/><child link="wrist_3_link"/>
    <origin xyz="0 0.0996 0" rpy="1.570796327 3.141592654 3.141592654"/><axis xyz="0 0 1"/><limit lower="-6.28" upper="6.28" effort="28" velocity="3.14"/></joint>
  <joint name="tool0_joint" type="fixed"><parent link="wrist_3_link"/><child link="tool0"/>
    <origin xyz="0 0 0" rpy="0 0 0"/></joint>
</robot>
"""


def move_plan(q0=HOME, q1=REACH, duration: float = 2.0, steps: int = 41, **kw) -> Plan:
    """A smooth Panda move between two configurations."""
    t, q = min_jerk(np.asarray(q0, float), np.asarray(q1, float), duration, steps)
    return panda_plan(t, q, **kw)


def grasp_plan(duration: float = 1.5, steps: int = 31, pause: float = 0.5) -> Plan:
    """HOME -> REACH, close the gripper at rest, REACH -> HOME (the planner's layout)."""
    t1, q1 = min_jerk(HOME, REACH, duration, steps)
    t2, q2 = min_jerk(REACH, HOME, duration, steps)
    times = np.concatenate([t1, t2 + t1[-1] + pause])
    joints = np.concatenate([q1, q2])
    gripper = np.concatenate([np.ones(steps), np.zeros(steps)])
    return panda_plan(times, joints, gripper)
