"""Timed joint trajectories as every arm executes them, and the speed scaling.

A plan gives joint waypoints and times. What an arm is asked to follow is one smooth curve
through them: per motion segment (the arm rests while the gripper acts between segments), the
C2 cubic spline through the waypoints with zero velocity at both ends. `JointTrajectory`
stores it as knots with positions and velocities (a cubic Hermite curve through exact spline
derivatives is the same curve), so the safety checks, the plots and every backend sample one
and the same function of time.

Speed scaling by s in (0, 1]: times are stretched by 1/s, so velocities scale by s,
accelerations by s^2 and jerks by s^3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline


@dataclass(frozen=True)
class JointTrajectory:
    """A timed joint trajectory: the cubic Hermite curve through its knots.

    Attributes:
        times: (K,) seconds from the start of this motion, times[0] == 0, strictly increasing.
        positions: (K, dof) joint positions at the knots, rad.
        velocities: (K, dof) joint velocities at the knots, rad/s (zero at both ends).
        speed: the speed scale already applied to ``times``.
        start_time: (speed-scaled) plan time of the first knot, seconds.
        first_step: plan step of the first knot; knot k is plan step first_step + k.
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    speed: float = 1.0
    start_time: float = 0.0
    first_step: int = 0

    def __post_init__(self) -> None:
        for name in ("times", "positions", "velocities"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        k = self.times.shape[0]
        assert self.times.ndim == 1 and k >= 2, self.times.shape
        assert self.positions.ndim == 2 and self.positions.shape[0] == k, self.positions.shape
        assert self.velocities.shape == self.positions.shape, self.velocities.shape
        assert abs(self.times[0]) < 1e-12 and np.all(np.diff(self.times) > 0)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def dof(self) -> int:
        return int(self.positions.shape[1])

    @property
    def last_step(self) -> int:
        return self.first_step + len(self.times) - 1

    def curve(self) -> CubicHermiteSpline:
        """The trajectory as a function of local time (derivatives via ``curve(t, nu)``)."""
        return CubicHermiteSpline(self.times, self.positions, self.velocities, axis=0)

    def sample(self, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Samples every ``dt`` seconds, the end included.

        Returns:
            times (S,), positions (S, dof), velocities (S, dof).
        """
        n = max(int(np.ceil(self.duration / dt - 1e-9)), 1)
        t = np.minimum(np.arange(1, n + 1) * dt, self.duration)
        t = np.concatenate([[0.0], t])
        c = self.curve()
        return t, c(t), c(t, 1)

    def step_at(self, t: float) -> int:
        """The last plan step whose knot has been reached at local time ``t``."""
        k = int(np.searchsorted(self.times, t + 1e-9, side="right")) - 1
        return self.first_step + max(k, 0)


def spline_velocities(times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(K, dof) knot velocities of the C2 cubic spline through ``positions`` at ``times``
    that starts and ends at rest."""
    if len(times) == 2:
        return np.zeros_like(positions)  # a clamped cubic through two points: rest to rest
    return CubicSpline(times, positions, axis=0, bc_type="clamped")(times, 1)


def timed_segment(
    times: np.ndarray, positions: np.ndarray, speed: float, first_step: int
) -> JointTrajectory:
    """The trajectory an arm follows for plan steps ``first_step ..`` at speed scale ``speed``.

    Args:
        times: (K,) plan times of the steps, seconds (unscaled).
        positions: (K, dof) joint positions of the steps.
        speed: speed scale in (0, 1].
        first_step: plan step of ``times[0]``.
    """
    times = np.asarray(times, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    assert times.ndim == 1 and positions.shape[0] == times.shape[0] >= 2, (
        times.shape,
        positions.shape,
    )
    assert speed > 0
    local = (times - times[0]) / speed
    return JointTrajectory(
        times=local,
        positions=positions,
        velocities=spline_velocities(local, positions),
        speed=speed,
        start_time=float(times[0] / speed),
        first_step=first_step,
    )


def evaluation_times(trajectory: JointTrajectory, dt: float) -> np.ndarray:
    """Local times at which to check a trajectory: every ``dt``, every knot and every knot
    interval's midpoint (the jerk of a cubic is constant on each interval, its acceleration
    linear, so knots and midpoints catch their extremes exactly)."""
    t = trajectory.times
    grid = np.arange(0.0, trajectory.duration, dt)
    mids = (t[1:] + t[:-1]) / 2
    return np.unique(np.concatenate([grid, t, mids]))


def derivatives(trajectory: JointTrajectory, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Position, velocity, acceleration and jerk (each (S, dof)) at local times ``t`` (S,).

    Jerk is evaluated from the right at knots (the interval that starts there)."""
    c = trajectory.curve()
    return c(t), c(t, 1), c(t, 2), c(t, 3)
