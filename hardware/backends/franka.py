"""Franka Emika Panda through franky-control (``import franky``; chord-robot[franka]).

Conventions (franky README and python/bind_robot.cpp): joint positions rad, velocities rad/s,
gripper widths metres, speeds m/s, forces N. A trajectory becomes one `JointWaypointMotion`:
a `JointWaypoint` per knot after the first, holding `JointState(position, velocity)` (the
knot velocities of the checked curve) and ``minimum_time`` = the knot interval, so Ruckig
(franky's online generator) reaches each waypoint no earlier than the plan says. The speed
scale, already in the knot times, is also passed as the motion's
``relative_dynamics_factor`` (times `FrankaConfig.dynamics_factor`): franky then caps velocity,
acceleration and jerk at that fraction of the robot's limits.

franky re-plans between the waypoints with Ruckig (zero acceleration at every waypoint, under
the robot's limits times that factor), so the path the arm runs is not the checked curve:
`executed_path` computes it exactly as franky will (`hardware.backends.franky_path`, from the
limits the connected robot holds; the robot's own dynamics factor is set to 1 on connecting),
and the runner checks it before the first motion (`hardware.safety_paths.check_executed`).

The motion runs asynchronously (``robot.move(motion, asynchronous=True)``) while this thread
polls ``join_motion(timeout)`` and records progress; `stop` calls ``robot.stop()``. The gripper
is not stopped on a fault: stopping a grasp would drop what it holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from chord_robot.errors import ConfigError, quote
from chord_robot.trajectory import JointTrajectory
from hardware.arm import ArmInfo, ArmState, ExecutedPath, GripperCommand, Progress
from hardware.backends import import_sdk
from hardware.backends.franky_path import waypoint_path
from hardware.backends.franky_path import waypoints as franky_waypoints
from hardware.robots import PANDA


@dataclass(frozen=True)
class FrankaConfig:
    """Settings of the Franka backend."""

    model: Literal["panda"] = "panda"
    """Robot model; only the Panda (Franka Emika Robot) is in the limits table."""
    poll_period: float = 0.02
    """Seconds between progress polls while a motion runs."""
    timeout_factor: float = 2.0
    """A motion taking longer than this times its duration, plus `timeout_margin`, is a fault."""
    timeout_margin: float = 5.0
    """Seconds added to that bound."""
    dynamics_factor: float = 1.0
    """franky's relative dynamics factor for every motion, times the speed scale: between
    waypoints franky's profiles run at the robot's limits times this (the runner checks that
    against the site's ``limit_fraction``; set the two alike)."""


class FrankaArm:
    """A Franka Panda driven through franky (see the module docstring)."""

    def __init__(self, host: str, config: FrankaConfig | None = None) -> None:
        self.config = config or FrankaConfig()
        if self.config.model != "panda":
            raise ConfigError(
                "model", f"franka {{field}} {quote(self.config.model)}: only 'panda' has known limits"
            )
        if not 0.0 < self.config.dynamics_factor <= 1.0:
            raise ConfigError(
                "dynamics_factor", f"franka {{field}} = {quote(self.config.dynamics_factor)} must be in (0, 1]"
            )
        self.host = host
        self.info = ArmInfo(
            "franka", "panda", PANDA.joint_names, PANDA.gripper_max_width, True, f"franka://{host}"
        )
        self._franky = None
        self._robot = None
        self._gripper = None

    def connect(self) -> None:
        self._franky = import_sdk("franky", "franka")
        self._robot = self._franky.Robot(self.host)
        self._robot.relative_dynamics_factor = 1.0  # each motion carries its own factor
        self._gripper = self._franky.Gripper(self.host)

    def state(self) -> ArmState:
        q = np.asarray(self._robot.current_joint_state.position, dtype=np.float64)
        ee = self._robot.current_cartesian_state.pose.end_effector_pose
        x, y, z, w = np.asarray(ee.quaternion, dtype=np.float64)  # Eigen/scipy order: xyzw
        pose = np.array([w, x, y, z, *np.asarray(ee.translation, dtype=np.float64)])
        return ArmState(q, pose, float(self._gripper.width))

    def executed_path(self, trajectory: JointTrajectory) -> ExecutedPath:
        """The path franky will command for ``trajectory`` (needs a connection: the limits are
        the robot's)."""
        r = self._robot
        limits = (np.asarray(x.get(), dtype=np.float64) for x in
                  (r.joint_velocity_limit, r.joint_acceleration_limit, r.joint_jerk_limit))
        return waypoint_path(trajectory, *limits, factor=self._factor(trajectory))

    def _factor(self, trajectory: JointTrajectory) -> float:
        return float(trajectory.speed) * self.config.dynamics_factor

    def follow(self, trajectory: JointTrajectory, progress: Progress) -> None:
        f = self._franky
        waypoints = [
            f.JointWaypoint(f.JointState(position=q.tolist(), velocity=v.tolist()), minimum_time=dt)
            for q, v, dt in franky_waypoints(trajectory)
        ]
        motion = f.JointWaypointMotion(waypoints, relative_dynamics_factor=self._factor(trajectory))
        bound = self.config.timeout_factor * trajectory.duration + self.config.timeout_margin
        t0 = time.monotonic()
        self._robot.move(motion, asynchronous=True)
        while not self._robot.join_motion(timeout=self.config.poll_period):
            elapsed = time.monotonic() - t0
            progress.advance(trajectory, elapsed)
            if elapsed > bound:
                raise TimeoutError(
                    f"the Franka motion did not finish within {bound:.1f} s "
                    f"(planned {trajectory.duration:.1f} s)"
                )
        progress.advance(trajectory, trajectory.duration)

    def gripper(self, command: GripperCommand) -> None:
        if command.is_grasp:
            ok = self._gripper.grasp(
                command.width,
                command.speed,
                command.force,
                epsilon_inner=command.tolerance,
                epsilon_outer=command.tolerance,
            )
            if not ok:
                raise RuntimeError(
                    f"Franka gripper: grasp failed, no object of width {command.width:.3f} "
                    f"+- {command.tolerance:.3f} m between the fingers"
                )
        elif not self._gripper.move(command.width, command.speed):
            raise RuntimeError(f"Franka gripper: could not move to {command.width:.3f} m")

    def stop(self) -> None:
        if self._robot is not None:
            self._robot.stop()

    def disconnect(self) -> None:
        self._robot = None
        self._gripper = None
        self._franky = None
