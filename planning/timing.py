"""Time parametrisation of joint waypoints with TOPP-RA under velocity and acceleration limits.

Each segment (approach, manipulate, retreat) is timed rest to rest: the arm stops while the
gripper closes or opens between them. The waypoints' path parameter is their cumulative joint
distance; TOPP-RA works on a cubic spline through them on a grid that contains every waypoint,
so the time at which the timed path passes each waypoint is read off its velocity profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot.errors import PlanningFailure


@dataclass(frozen=True)
class TimingConfig:
    """Limits and resolution of the time parametrisation."""

    speed: float = 0.5
    """Speed scale in (0, 1]: velocity limits times speed, acceleration limits times speed^2.
    Half speed by default: time-optimal at full speed is legal but harsh on a held object."""
    limit_margin: float = 0.9
    """Fraction of the (scaled) limits TOPP-RA may use; the rest absorbs discretisation error."""
    subdivisions: int = 8
    """Grid points per waypoint interval (the constraints hold at grid points)."""
    gripper_time: float = 0.6
    """Pause while the gripper closes or opens between segments, seconds."""
    still_dt: float = 0.05
    """Time step given to a segment that does not move, seconds."""


@dataclass(frozen=True)
class TimedSegment:
    """Times of one segment's waypoints.

    Attributes:
        times: (K,) seconds from the segment's start, strictly increasing.
        peak_velocity: largest |qd| / velocity limit along the timed spline.
        peak_acceleration: largest |qdd| / acceleration limit along the timed spline.
    """

    times: np.ndarray
    peak_velocity: float
    peak_acceleration: float


def path_parameter(q: np.ndarray, floor: float = 1e-5) -> np.ndarray:
    """(K,) cumulative joint-space distance of (K, dof) waypoints, each step at least ``floor``."""
    steps = np.maximum(np.linalg.norm(np.diff(q, axis=0), axis=1), floor)
    return np.concatenate([[0.0], np.cumsum(steps)])


def time_segment(
    q: np.ndarray,
    velocity: np.ndarray,
    acceleration: np.ndarray,
    config: TimingConfig | None = None,
) -> TimedSegment:
    """Time-optimal rest-to-rest timing of (K, dof) waypoints.

    Args:
        q: (K, dof) joint waypoints, K >= 2.
        velocity, acceleration: (dof,) limits (before speed scaling).
    Raises:
        PlanningFailure: TOPP-RA finds no feasible parametrisation.
    """
    import toppra

    config = config or TimingConfig()
    q = np.asarray(q, dtype=np.float64)
    assert q.ndim == 2 and len(q) >= 2 and q.shape[1] == len(velocity) == len(acceleration), q.shape
    assert 0 < config.speed <= 1, config.speed
    vlim = velocity * config.speed * config.limit_margin
    alim = acceleration * config.speed**2 * config.limit_margin
    if np.abs(q - q[0]).max() < 1e-6:
        return TimedSegment(np.arange(len(q)) * config.still_dt, 0.0, 0.0)

    ss = path_parameter(q)
    path = toppra.SplineInterpolator(ss, q, bc_type="not-a-knot")
    fine = np.linspace(0, 1, config.subdivisions + 1)[:-1]
    grid = np.concatenate([(ss[:-1, None] + np.diff(ss)[:, None] * fine).ravel(), ss[-1:]])
    instance = toppra.algorithm.TOPPRA(
        [
            toppra.constraint.JointVelocityConstraint(vlim),
            toppra.constraint.JointAccelerationConstraint(alim),
        ],
        path,
        gridpoints=grid,
        parametrizer="ParametrizeConstAccel",
    )
    traj = instance.compute_trajectory(0, 0)
    if traj is None:
        raise PlanningFailure("TOPP-RA found no timing within the velocity and acceleration limits")
    sd = np.asarray(instance.problem_data.sd_vec, dtype=np.float64)
    dt = 2 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-12)
    t_grid = np.concatenate([[0.0], np.cumsum(dt)])
    times = t_grid[:: config.subdivisions]
    assert len(times) == len(q)
    ts = np.linspace(0, traj.duration, max(200, 20 * len(q)))
    peak_v = float(np.max(np.abs(traj(ts, 1)) / velocity / config.speed))
    peak_a = float(np.max(np.abs(traj(ts, 2)) / acceleration / config.speed**2))
    return TimedSegment(times, peak_v, peak_a)
