"""Timing: time-optimal on a known case, and planned trajectories within the Panda's limits."""

from __future__ import annotations

import numpy as np
import pytest

from planning.robot import panda
from planning.timing import TimingConfig, time_segment

LIMITS = panda().limits.arrays()
VEL, ACC, JERK = LIMITS["velocity"], LIMITS["acceleration"], LIMITS["jerk"]


def test_single_joint_move_is_time_optimal():
    # Joint 1 moves 1 rad: bang-coast-bang with v = 0.9 * 2.175, a = 0.9 * 15.
    q = np.zeros((11, 7))
    q[:, 0] = np.linspace(0.0, 1.0, 11)
    seg = time_segment(q, VEL, ACC, JERK, TimingConfig(speed=1.0, limit_margin=0.9))
    v, a = 0.9 * VEL[0], 0.9 * ACC[0]
    optimal = 1.0 / v + v / a
    assert optimal * 0.99 < seg.times[-1] < optimal * 1.05
    assert np.all(np.diff(seg.times) > 0)


def test_speed_scale_stretches_time():
    rng = np.random.default_rng(0)
    q = np.cumsum(rng.normal(size=(15, 7)) * 0.05, 0)
    full = time_segment(q, VEL, ACC, JERK, TimingConfig(speed=1.0))
    half = time_segment(q, VEL, ACC, JERK, TimingConfig(speed=0.5))
    assert half.times[-1] / full.times[-1] == pytest.approx(2.0, rel=0.02)


def test_still_segment_gets_uniform_time():
    seg = time_segment(np.zeros((5, 7)), VEL, ACC, JERK)
    assert np.allclose(np.diff(seg.times), TimingConfig().still_dt)


@pytest.mark.parametrize("name", ("translation", "hinge", "arc"))
def test_planned_motion_respects_velocity_and_acceleration_limits(plans, planner, name):
    _, plan = plans[name]
    model = planner.model
    # The timed spline stays within the limits everywhere...
    assert plan.costs["peak_velocity_ratio"] <= 1.0
    assert plan.costs["peak_acceleration_ratio"] <= 1.0
    # ...and so do finite differences of the stored waypoints, segment by segment.
    for seg in ("approach", "manipulate", "retreat"):
        sl = plan.segment(seg)
        q, t = plan.joints[sl], plan.times[sl]
        vel = np.diff(q, axis=0) / np.diff(t)[:, None]
        assert np.all(np.abs(vel) <= model.velocity), (
            f"{seg}: {np.abs(vel).max(0) / model.velocity}"
        )
        mid = (t[1:] + t[:-1]) / 2
        acc = np.diff(vel, axis=0) / np.diff(mid)[:, None]
        assert np.all(np.abs(acc) <= model.acceleration), (
            f"{seg}: {np.abs(acc).max(0) / model.acceleration}"
        )
    assert np.all(np.diff(plan.times) > 0)
    # The gripper pauses are there.
    a_end = plan.segments["approach"][1]
    assert plan.times[a_end + 1] - plan.times[a_end] == pytest.approx(0.6, abs=1e-6)
    assert np.allclose(plan.joints[a_end], plan.joints[a_end + 1])


@pytest.mark.parametrize("name", ("translation", "hinge", "arc"))
def test_planned_curve_passes_the_hardware_safety_checks_at_full_speed(plans, name):
    # The curve the arm follows (chord_robot.trajectory) is what hardware checks; planning
    # verified its times on that curve, so at speed 1.0 every check passes, and the
    # dynamics stay within the planning speed's share of the limits (TOPP-RA's times alone
    # reach ~30% of the acceleration limit here, over the 25% of speed 0.5).
    from chord_robot.app.sim_arm import SimArm
    from hardware.runner import prepare

    _, plan = plans[name]
    report = prepare(plan, SimArm(plan.robot_base).info, 1.0).report
    assert report.ok, [f"{c.name}: {c.detail}" for c in report.failed]
    s = TimingConfig().speed
    for power, check in enumerate(("velocity", "acceleration", "jerk"), start=1):
        assert report.get(check).value <= 100.0 * s**power
