"""The PyBullet Panda as a `hardware.arm.Arm`: the rehearsal and test backend (layer 2).

It implements the hardware layer's protocol on top of the sim package's `World` and `Panda`
(imported when it connects), so a plan goes through exactly the safety layer and runner a real
arm would, and the simulated arm is driven like one: a fresh headless world with the table and
the Panda at ``base_pose``, joint position control at the sim rate tracking the trajectory's
curve (with its velocities fed forward), the fingers as the gripper, and `stop` holding the
current configuration. The world holds only the table, so a grasp closes the fingers but is
not verified (a real gripper reports a grasp that finds nothing as a fault).

``on_step(t)`` is called after every physics step with the trajectory time; tests use it to
inject a fault mid-trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chord_robot.geometry import invert, matrix_to_pose, pose_to_matrix
from chord_robot.trajectory import JointTrajectory
from hardware.arm import ArmInfo, ArmState, GripperCommand, Progress
from hardware.robots import PANDA

PANDA_HOME = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)


@dataclass(frozen=True)
class SimArmConfig:
    """How the simulated arm is driven."""

    position_gain: float = 0.3
    """PyBullet POSITION_CONTROL position gain of the arm joints."""
    velocity_gain: float = 1.0
    """PyBullet POSITION_CONTROL velocity gain."""
    settle_steps: int = 120
    """Physics steps holding the end of a trajectory after it (the arm catches up)."""
    finger_force: float = 40.0
    """Force of each finger motor for a plain move, N (a grasp uses the command's force)."""
    gripper_steps: int = 240
    """Most physics steps a gripper action may take."""


class SimArm:
    """A simulated Panda (see the module docstring).

    Args:
        base_pose: (7,) wxyz_xyz pose of the robot base in the simulated world (None: origin).
        joints: (7,) configuration the arm starts in.
        opening: initial finger opening, metres.
        config: control settings.
        on_step: called with the trajectory's local time after every physics step.
    """

    def __init__(
        self,
        base_pose: np.ndarray | None = None,
        joints: np.ndarray | tuple[float, ...] = PANDA_HOME,
        opening: float = PANDA.gripper_max_width,
        config: SimArmConfig | None = None,
        on_step: Callable[[float], None] | None = None,
    ) -> None:
        self.info = ArmInfo(
            "sim", "panda", PANDA.joint_names, PANDA.gripper_max_width, False, "sim"
        )
        self.base_pose = (
            np.array([1.0, 0, 0, 0, 0, 0, 0]) if base_pose is None else np.asarray(base_pose, float)
        )
        self.initial_joints = np.asarray(joints, dtype=np.float64)
        self.initial_opening = float(opening)
        self.config = config or SimArmConfig()
        self.on_step = on_step
        self.world = None
        self.panda = None
        self.stop_calls = 0
        self.commands: list[str] = []

    def connect(self) -> None:
        from sim.world import create, load_panda

        self.world = create(direct=True)
        self.panda = load_panda(
            self.world, self.base_pose, self.initial_joints, self.initial_opening
        )

    def state(self) -> ArmState:
        from sim.world import panda_joints, panda_opening, tcp_pose

        base_from_world = invert(pose_to_matrix(self.base_pose))
        tcp = matrix_to_pose(base_from_world @ pose_to_matrix(tcp_pose(self.world, self.panda)))
        return ArmState(
            panda_joints(self.world, self.panda), tcp, panda_opening(self.world, self.panda)
        )

    def _command(self, q: np.ndarray, qd: np.ndarray) -> None:
        import pybullet as pb

        p = self.panda
        pb.setJointMotorControlArray(
            p.body,
            list(p.arm_joints),
            pb.POSITION_CONTROL,
            targetPositions=q.tolist(),
            targetVelocities=qd.tolist(),
            forces=p.max_force.tolist(),
            positionGains=[self.config.position_gain] * 7,
            velocityGains=[self.config.velocity_gain] * 7,
            physicsClientId=self.world.client,
        )

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        self.commands.append("follow")
        dt = self.world.time_step
        curve = trajectory.curve()
        n = int(np.ceil(trajectory.duration / dt))
        for k in range(1, n + self.config.settle_steps + 1):
            t = min(k * dt, trajectory.duration)
            self._command(curve(t), curve(t, 1) if k <= n else np.zeros(7))
            self.world.step(1)
            progress.advance(trajectory, t)
            if self.on_step is not None:
                self.on_step(k * dt)

    def gripper(self, command: GripperCommand) -> None:
        import pybullet as pb

        from sim.world import panda_opening

        self.commands.append("gripper")
        p, c = self.panda, self.world.client
        # a grasp closes the fingers with the command's force until they stop (on an object,
        # or shut: the rehearsal world holds no objects, so grasps are not verified here)
        force = command.force if command.is_grasp else self.config.finger_force
        target = 0.0 if command.is_grasp else command.width / 2
        pb.setJointMotorControlArray(
            p.body,
            list(p.finger_joints),
            pb.POSITION_CONTROL,
            targetPositions=[target] * 2,
            forces=[force] * 2,
            physicsClientId=c,
        )
        last = panda_opening(self.world, p)
        for _ in range(self.config.gripper_steps // 8):
            self.world.step(8)
            now = panda_opening(self.world, p)
            if abs(now - last) < 1e-5:
                break
            last = now

    def stop(self) -> None:
        self.stop_calls += 1
        self.commands.append("stop")
        if self.world is None or self.panda is None:
            return
        from sim.world import panda_joints

        q = panda_joints(self.world, self.panda)
        self._command(q, np.zeros(7))
        self.world.step(1)

    def disconnect(self) -> None:
        if self.world is not None:
            self.world.close()
        self.world = self.panda = None
