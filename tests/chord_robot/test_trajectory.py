"""The curve every executor follows through a plan (chord_robot.trajectory), held to plain
references: derivatives against finite differences, the per-interval peaks against dense
sampling, the cuts at rests and gripper changes, and the hold between motions."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.trajectory import (
    derivatives,
    follow,
    interval_peaks,
    pieces,
    plan_motions,
    timed_segment,
)


def test_curve_derivatives_match_finite_differences_and_pass_through_the_knots():
    rng = np.random.default_rng(1)
    times = np.cumsum(np.r_[0.0, rng.uniform(0.05, 0.2, 12)])
    q = np.cumsum(rng.normal(0, 0.05, (13, 3)), axis=0)
    traj = timed_segment(times, q, speed=0.5, first_step=7)
    assert traj.duration == pytest.approx(times[-1] / 0.5) and traj.first_step == 7
    c = traj.curve()
    np.testing.assert_allclose(c(traj.times), q, atol=1e-12)
    np.testing.assert_allclose(traj.velocities[[0, -1]], 0.0, atol=1e-12)  # rest to rest
    h = 1e-5
    t = np.linspace(0.01, traj.duration - 0.01, 57)
    _, qd, qdd, _ = derivatives(traj, t)
    np.testing.assert_allclose((c(t + h) - c(t - h)) / (2 * h), qd, atol=1e-6)
    np.testing.assert_allclose((c(t + h, 1) - c(t - h, 1)) / (2 * h), qdd, atol=1e-4)
    assert traj.step_at(0.0) == 7 and traj.step_at(traj.duration) == 19


def test_speed_scaling_stretches_time_exactly():
    times = np.linspace(0, 1.0, 11)
    q = np.sin(np.linspace(0, 2, 11))[:, None] * [1.0, -0.5]
    full, half = timed_segment(times, q, 1.0, 0), timed_segment(times, q, 0.5, 0)
    t = np.linspace(0, 1.0, 23)
    for n in range(4):
        np.testing.assert_allclose(half.curve()(2 * t, n), full.curve()(t, n) * 0.5**n, atol=1e-9)


def test_sample_ends_exactly_at_the_end():
    traj = timed_segment(np.array([0.0, 0.3, 1.0]), np.array([[0.0], [0.2], [1.0]]), 1.0, 0)
    t, q, v = traj.sample(0.008)
    assert t[0] == 0 and t[-1] == pytest.approx(1.0) and np.all(np.diff(t) > 0)
    assert q[-1, 0] == pytest.approx(1.0) and v[-1, 0] == pytest.approx(0.0, abs=1e-12)


def test_plan_is_cut_at_rests_and_gripper_changes():
    q = np.array([[0.0], [0.1], [0.3], [0.3], [0.3], [0.5], [0.6], [0.6], [0.4], [0.2]])
    g = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0.0])
    # rest 2-3, gripper 3->4 (at rest too), rest 6-7
    assert pieces(q, g) == [(0, 3), (3, 4), (4, 7), (7, 10)]
    times = np.arange(10) * 0.1
    motions = plan_motions(times, q, g, speed=0.5)
    assert [(m.first_step, m.last_step) for m in motions] == [(0, 2), (4, 6), (7, 9)]
    assert motions[1].start_time == pytest.approx(0.8)  # speed-scaled plan time of step 4
    for m in motions:
        np.testing.assert_allclose(m.velocities[[0, -1]], 0.0, atol=1e-12)


def test_follow_passes_the_knots_and_holds_between_motions():
    q = np.array([[0.0], [0.2], [0.5], [0.5], [0.1], [0.0]])
    g = np.zeros(6)
    times = np.array([0.0, 0.4, 1.0, 1.6, 2.0, 2.5])
    motions = plan_motions(times, q, g)
    pos, vel = follow(motions, q[0], times)
    np.testing.assert_allclose(pos, q, atol=1e-12)
    hold = np.linspace(1.0, 1.6, 7)  # the rest between the two motions
    pos, vel = follow(motions, q[0], hold)
    np.testing.assert_allclose(pos, 0.5, atol=1e-12)
    np.testing.assert_allclose(vel, 0.0, atol=1e-12)
    pos, vel = follow(motions, q[0], np.array([3.0]))  # after the end
    assert pos[0, 0] == pytest.approx(0.0) and vel[0, 0] == 0.0


def test_interval_peaks_match_dense_sampling():
    rng = np.random.default_rng(3)
    times = np.cumsum(np.r_[0.0, rng.uniform(0.05, 0.3, 9)])
    q = np.cumsum(rng.normal(0, 0.2, (10, 4)), axis=0)
    traj = timed_segment(times, q, 1.0, 0)
    limits = (np.array([1.0, 2.0, 1.5, 3.0]), np.array([5.0, 8.0, 4.0, 6.0]), np.full(4, 100.0))
    peaks = interval_peaks(traj, *limits)
    for k in range(len(times) - 1):
        t = np.linspace(traj.times[k], traj.times[k + 1], 2001)
        _, qd, qdd, _ = derivatives(traj, t)
        qddd = derivatives(traj, t[:-1])[3]  # from the right: this interval's own jerk
        dense = [(np.abs(x) / lim).max() for x, lim in zip((qd, qdd, qddd), limits)]
        np.testing.assert_allclose(peaks[k, :2], dense[:2], rtol=1e-6)
        np.testing.assert_allclose(peaks[k, 2], dense[2], rtol=1e-9)
