"""The joint path franky runs for a `JointWaypointMotion`, computed before anything is sent.

franky (src/motion/joint_waypoint_motion.cpp, include/franky/motion/waypoint_motion.hpp)
follows waypoints with Ruckig's online generator at the 1 kHz control rate: from the arm's
commanded state it heads for one waypoint's position and velocity with zero acceleration, under
the robot's joint velocity, acceleration and jerk limits times the motion's dynamics factor,
time-synchronised over all joints and taking at least the waypoint's ``minimum_time``; the step
after Ruckig reports the waypoint reached, the next one starts. Every command it sends is that
generator's new position. `waypoint_path` runs the same generator (the `ruckig` package, the
library franky links) through the same steps, so the safety layer can check the path the arm
will run, not only the curve the waypoints were taken from.
"""

from __future__ import annotations

import numpy as np

from chord_robot.errors import SafetyError
from chord_robot.trajectory import JointTrajectory
from hardware.arm import ExecutedPath

CONTROL_PERIOD = 0.001
"""franky's control period (libfranka's 1 kHz), seconds."""


def waypoints(trajectory: JointTrajectory) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(position, velocity, minimum time) of the waypoint for every knot after the first: what
    `hardware.backends.franka.FrankaArm.follow` sends."""
    dts = np.diff(trajectory.times)
    return list(zip(trajectory.positions[1:], trajectory.velocities[1:], [float(d) for d in dts]))


def waypoint_path(
    trajectory: JointTrajectory,
    velocity: np.ndarray,
    acceleration: np.ndarray,
    jerk: np.ndarray,
    factor: float,
) -> ExecutedPath:
    """What franky commands for ``trajectory``'s waypoints, from rest at its first knot.

    Args:
        velocity, acceleration, jerk: (dof,) the robot's joint limits as franky holds them
            (``robot.joint_velocity_limit.get()`` ...).
        factor: the motion's relative dynamics factor (times the robot's, which the backend
            keeps at 1).
    Raises:
        SafetyError: Ruckig cannot plan a waypoint (the arm would stop with an error).
    """
    import ruckig

    dof = trajectory.positions.shape[1]
    otg = ruckig.Ruckig(dof, CONTROL_PERIOD)
    inp, out = ruckig.InputParameter(dof), ruckig.OutputParameter(dof)
    inp.current_position = trajectory.positions[0].tolist()
    inp.current_velocity = [0.0] * dof
    inp.current_acceleration = [0.0] * dof
    inp.max_velocity = (factor * np.asarray(velocity, float)).tolist()
    inp.max_acceleration = (factor * np.asarray(acceleration, float)).tolist()
    inp.max_jerk = (factor * np.asarray(jerk, float)).tolist()
    inp.synchronization = ruckig.Synchronization.Time
    states = [(trajectory.positions[0], np.zeros(dof), np.zeros(dof))]
    for k, (q, v, dt) in enumerate(waypoints(trajectory)):
        inp.target_position, inp.target_velocity = q.tolist(), v.tolist()
        inp.target_acceleration = [0.0] * dof
        inp.minimum_duration = dt
        while True:
            result = otg.update(inp, out)
            if result not in (ruckig.Result.Working, ruckig.Result.Finished):
                raise SafetyError(
                    f"refused, nothing moved: franky's motion generator cannot reach waypoint {k + 1} "
                    f"of a motion ({result}); re-time the plan"
                )
            out.pass_to_input(inp)
            states.append(tuple(np.array(x) for x in (out.new_position, out.new_velocity, out.new_acceleration)))
            if result == ruckig.Result.Finished:
                break
    positions, velocities, accelerations = (np.array(x) for x in zip(*states))
    return ExecutedPath(np.arange(len(positions)) * CONTROL_PERIOD, positions, velocities, accelerations)
