"""Time parametrisation of joint waypoints: TOPP-RA, then verified on the curve arms follow.

Each segment (approach, manipulate, retreat) is timed rest to rest: the arm stops while the
gripper closes or opens between them.

1. TOPP-RA proposes the times. The waypoints' path parameter is their cumulative joint
   distance; TOPP-RA works on a cubic spline through them (in that parameter) on a grid that
   contains every waypoint, so the time at which the timed path passes each waypoint is read
   off its velocity profile.
2. What an arm follows, though, is not TOPP-RA's spline but the contract curve of
   `chord_robot.trajectory`: the C2 cubic in *time* through the waypoints, at rest at both
   ends. Its velocity, acceleration and jerk differ from TOPP-RA's (most near the ends and
   where waypoints are unevenly spaced), so the times are checked on that curve against the
   same limits, and every knot interval that is over (with its neighbours, which the spline
   couples to it) is stretched until none is; a uniform stretch, exact for this curve
   (velocity / c, acceleration / c^2, jerk / c^3), finishes the job and bounds the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot.errors import PlanningFailure
from chord_robot.trajectory import interval_peaks, is_motion, pieces, timed_segment


@dataclass(frozen=True)
class TimingConfig:
    """Limits and resolution of the time parametrisation."""

    speed: float = 0.5
    """Speed scale in (0, 1]: velocity limits times speed, acceleration limits times speed^2,
    jerk limits times speed^3. Half speed by default: time-optimal at full speed is legal but
    harsh on a held object."""
    limit_margin: float = 0.9
    """Fraction of the (scaled) limits the timed curve may use."""
    subdivisions: int = 8
    """Grid points per waypoint interval (TOPP-RA's constraints hold at grid points)."""
    stretch_iterations: int = 12
    """Rounds of local stretching of over-limit intervals before a uniform stretch."""
    gripper_time: float = 0.6
    """Pause while the gripper closes or opens between segments, seconds."""
    still_dt: float = 0.05
    """Time step given to a segment that does not move, seconds."""


@dataclass(frozen=True)
class TimedSegment:
    """Times of one segment's waypoints.

    Attributes:
        times: (S,) seconds from the segment's start, strictly increasing.
        peak_velocity: largest |qd| / (velocity limit x speed) along the contract curve.
        peak_acceleration: largest |qdd| / (acceleration limit x speed^2) along it.
        peak_jerk: largest |qddd| / (jerk limit x speed^3) along it.
        stretch: how much verification on the curve lengthened TOPP-RA's duration (>= 1).
    """

    times: np.ndarray
    peak_velocity: float
    peak_acceleration: float
    peak_jerk: float = 0.0
    stretch: float = 1.0


def path_parameter(q: np.ndarray, floor: float = 1e-5) -> np.ndarray:
    """(S,) cumulative joint-space distance of (S, dof) waypoints, each step at least ``floor``."""
    steps = np.maximum(np.linalg.norm(np.diff(q, axis=0), axis=1), floor)
    return np.concatenate([[0.0], np.cumsum(steps)])


def toppra_times(
    q: np.ndarray, vlim: np.ndarray, alim: np.ndarray, subdivisions: int
) -> np.ndarray:
    """(S,) time-optimal rest-to-rest waypoint times of (S, dof) waypoints under |qd| <= vlim,
    |qdd| <= alim (dof,) on TOPP-RA's path spline.

    Raises:
        PlanningFailure: TOPP-RA finds no feasible parametrisation.
    """
    import toppra

    ss = path_parameter(q)
    path = toppra.SplineInterpolator(ss, q, bc_type="not-a-knot")
    fine = np.linspace(0, 1, subdivisions + 1)[:-1]
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
    if instance.compute_trajectory(0, 0) is None:
        raise PlanningFailure("TOPP-RA found no timing within the velocity and acceleration limits")
    sd = np.asarray(instance.problem_data.sd_vec, dtype=np.float64)
    dt = 2 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-12)
    times = np.concatenate([[0.0], np.cumsum(dt)])[::subdivisions]
    assert len(times) == len(q)
    return times


def _curve_ratios(
    times: np.ndarray, q: np.ndarray, limits: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """(S - 1, 3) velocity, acceleration and jerk ratios per knot interval of the contract
    curve through (S, dof) ``q`` at ``times``; zero on intervals that are rests."""
    out = np.zeros((len(q) - 1, 3))
    for a, b in pieces(q, np.zeros(len(q))):
        if is_motion(q, a, b):
            out[a : b - 1] = interval_peaks(timed_segment(times[a:b], q[a:b], 1.0, a), *limits)
    return out


def _stretch_factors(ratios: np.ndarray) -> np.ndarray:
    """(S - 1,) time factor per interval that brings its ratios to 1 if it were alone."""
    return np.maximum.reduce(
        [np.ones(len(ratios)), ratios[:, 0], np.sqrt(ratios[:, 1]), np.cbrt(ratios[:, 2])]
    )


def _uniform(dt: np.ndarray, q: np.ndarray, limits) -> np.ndarray:
    """``dt`` scaled by the one factor that brings the whole curve within ``limits``."""
    k = _stretch_factors(_curve_ratios(np.concatenate([[0.0], np.cumsum(dt)]), q, limits))
    return dt * max(float(k.max()), 1.0) * (1.0 + 1e-6)


def fit_to_curve(
    times: np.ndarray,
    q: np.ndarray,
    limits: tuple[np.ndarray, np.ndarray, np.ndarray],
    iterations: int = 12,
) -> np.ndarray:
    """Waypoint times, no shorter than ``times`` (S,), at which the contract curve through
    ``q`` (S, dof) stays within ``limits`` (velocity, acceleration, jerk; (dof,) each).

    Over-limit intervals and their two neighbours are stretched by the factor that would fix
    them alone, for up to ``iterations`` rounds, and what is left over is stretched uniformly
    (exact for this curve). A uniform stretch of the whole segment is the fallback: the
    shorter of the two is returned.
    """
    dt0 = np.diff(times)
    dt = dt0.copy()
    for _ in range(iterations):
        k = _stretch_factors(_curve_ratios(np.concatenate([[0.0], np.cumsum(dt)]), q, limits))
        if k.max() <= 1.0 + 1e-9:
            break
        grow = np.maximum.reduce([k, np.r_[1.0, k[:-1]], np.r_[k[1:], 1.0]])
        dt = dt * np.where(grow > 1.0, grow * 1.02, 1.0)
    local, uniform = _uniform(dt, q, limits), _uniform(dt0, q, limits)
    best = local if local.sum() <= uniform.sum() else uniform
    return np.concatenate([[0.0], np.cumsum(best)])


def time_segment(
    q: np.ndarray,
    velocity: np.ndarray,
    acceleration: np.ndarray,
    jerk: np.ndarray,
    config: TimingConfig | None = None,
) -> TimedSegment:
    """Rest-to-rest timing of (S, dof) waypoints: TOPP-RA, verified on the contract curve.

    Args:
        q: (S, dof) joint waypoints, S >= 2.
        velocity, acceleration, jerk: (dof,) limits (before speed scaling and margin).
    Raises:
        PlanningFailure: TOPP-RA finds no feasible parametrisation.
    """
    config = config or TimingConfig()
    q = np.asarray(q, dtype=np.float64)
    assert q.ndim == 2 and len(q) >= 2, q.shape
    assert q.shape[1] == len(velocity) == len(acceleration) == len(jerk), q.shape
    assert 0 < config.speed <= 1, config.speed
    s, m = config.speed, config.limit_margin
    if np.abs(q - q[0]).max() < 1e-6:
        return TimedSegment(np.arange(len(q)) * config.still_dt, 0.0, 0.0)
    limits = (velocity * s * m, acceleration * s**2 * m, jerk * s**3 * m)
    proposed = toppra_times(q, limits[0], limits[1], config.subdivisions)
    times = fit_to_curve(proposed, q, limits, config.stretch_iterations)
    peaks = _curve_ratios(times, q, (velocity * s, acceleration * s**2, jerk * s**3)).max(0)
    return TimedSegment(
        times, float(peaks[0]), float(peaks[1]), float(peaks[2]), float(times[-1] / proposed[-1])
    )
