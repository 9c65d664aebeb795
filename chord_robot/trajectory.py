"""The curve a plan's joints are followed along: the contract between planning, sim and hardware.

A `Plan` gives joint waypoints and times. What every executor follows (the simulator, every
real arm) and what every check measures (the planner's limit verification, the hardware
safety layer) is one function of time built from them here:

1. The plan is cut into *motions* at every *rest* -- two consecutive steps with the same
   joints (within `REST_TOLERANCE`) -- and at every gripper change (the gripper only acts
   while the arm rests). Between two motions the arm holds still.
2. A motion is the C2 cubic spline through its steps' joints at their times, with zero
   velocity at both ends (scipy's ``CubicSpline(bc_type="clamped")``). `JointTrajectory`
   stores it as knots with positions and velocities: the cubic Hermite curve through the
   exact spline derivatives is the same curve, and backends that stream waypoints with
   velocities (Franka) get them directly.
3. Speed scaling by s in (0, 1] stretches time by 1/s: velocities scale by s, accelerations
   by s^2 and jerks by s^3.

So a plan whose curve is within a robot's limits at speed 1 is within them at every s <= 1.
Layer 0: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline

REST_TOLERANCE = 1e-9
"""Two consecutive steps whose joints differ by at most this (max abs, rad) are a rest."""


@dataclass(frozen=True)
class JointTrajectory:
    """One motion: the cubic Hermite curve through its knots.

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
    def end_time(self) -> float:
        """(Speed-scaled) plan time of the last knot, seconds."""
        return self.start_time + self.duration

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
    """(K, dof) knot velocities of the C2 cubic spline through ``positions`` (K, dof) at
    ``times`` (K,) that starts and ends at rest."""
    if len(times) == 2:
        return np.zeros_like(positions)  # a clamped cubic through two points: rest to rest
    return CubicSpline(times, positions, axis=0, bc_type="clamped")(times, 1)


def timed_segment(
    times: np.ndarray, positions: np.ndarray, speed: float, first_step: int
) -> JointTrajectory:
    """The motion through plan steps ``first_step ..`` at speed scale ``speed``.

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


def pieces(joints: np.ndarray, gripper: np.ndarray) -> list[tuple[int, int]]:
    """The plan's steps cut at every rest and every gripper change.

    Args:
        joints: (T, dof) plan joints; gripper: (T,) plan gripper commands.
    Returns:
        Consecutive half-open step ranges [a, b) covering 0..T; a range of two or more steps
        whose joints move is a motion, anything else is the arm holding still.
    """
    joints = np.asarray(joints, dtype=np.float64)
    gripper = np.asarray(gripper, dtype=np.float64)
    assert joints.ndim == 2 and gripper.shape == (len(joints),), (joints.shape, gripper.shape)
    rest = np.abs(np.diff(joints, axis=0)).max(1) <= REST_TOLERANCE
    grip = np.abs(np.diff(gripper)) > 1e-9
    cuts = np.flatnonzero(rest | grip) + 1
    bounds = [0, *cuts.tolist(), len(joints)]
    return list(pairwise(bounds))


def is_motion(joints: np.ndarray, a: int, b: int) -> bool:
    """Whether steps [a, b) of ``joints`` (T, dof) are a motion (see `pieces`)."""
    return b - a >= 2 and float(np.abs(joints[a:b] - joints[a]).max()) > REST_TOLERANCE


def plan_motions(
    times: np.ndarray, joints: np.ndarray, gripper: np.ndarray, speed: float = 1.0
) -> list[JointTrajectory]:
    """Every motion of a plan, in order, at speed scale ``speed``.

    Args:
        times: (T,) plan times; joints: (T, dof); gripper: (T,).
    """
    times = np.asarray(times, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    return [
        timed_segment(times[a:b], joints[a:b], speed, a)
        for a, b in pieces(joints, gripper)
        if is_motion(joints, a, b)
    ]


def follow(
    motions: list[JointTrajectory], start: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of the whole plan at (speed-scaled) plan times ``t`` (S,).

    Before the first motion the arm is at ``start`` (dof,); between motions and after the last
    it holds where the previous motion ended.

    Returns:
        q (S, dof), qd (S, dof).
    """
    t = np.asarray(t, dtype=np.float64)
    start = np.asarray(start, dtype=np.float64)
    q = np.broadcast_to(start, (len(t), len(start))).copy()
    qd = np.zeros_like(q)
    for m in motions:
        during = (t >= m.start_time) & (t <= m.end_time)
        after = t > m.end_time
        q[after] = m.positions[-1]
        if during.any():
            c = m.curve()
            local = t[during] - m.start_time
            q[during], qd[during] = c(local), c(local, 1)
    return q, qd


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


def interval_peaks(
    trajectory: JointTrajectory,
    velocity: np.ndarray,
    acceleration: np.ndarray,
    jerk: np.ndarray,
    samples: int = 8,
) -> np.ndarray:
    """(K - 1, 3) largest |qd| / velocity, |qdd| / acceleration and |qddd| / jerk over each
    knot interval, the worst joint (limits (dof,) each).

    Acceleration is linear and jerk constant on an interval, so their ends are exact; the
    velocity (quadratic) is sampled at ``samples`` + 1 points per interval and its vertex.
    """
    c = trajectory.curve()
    t0, t1 = trajectory.times[:-1], trajectory.times[1:]
    s = np.linspace(0.0, 1.0, samples + 1)
    grid = t0[:, None] + (t1 - t0)[:, None] * s  # (K-1, S)
    v = np.abs(c(grid.ravel(), 1)).reshape(*grid.shape, -1).max(1)  # (K-1, dof)
    a = np.maximum(np.abs(c(t0, 2)), np.abs(c(t1, 2)))
    # the velocity's extreme inside an interval is where the (linear) acceleration is zero
    a0, a1 = c(t0, 2), c(t1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(np.abs(a1 - a0) > 1e-12, a0 / (a0 - a1), -1.0)
    inside = (frac > 0) & (frac < 1)
    tv = t0[:, None] + (t1 - t0)[:, None] * np.clip(frac, 0, 1)
    vv = np.abs(np.stack([c(tv[:, j], 1)[:, j] for j in range(tv.shape[1])], 1))
    v = np.maximum(v, np.where(inside, vv, 0.0))
    j = np.abs(c((t0 + t1) / 2, 3))
    return np.stack([(v / velocity).max(1), (a / acceleration).max(1), (j / jerk).max(1)], axis=1)
