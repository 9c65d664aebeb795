"""The path franky will run: `waypoint_path` replays franky's Ruckig loop over what the Franka
backend sends, and the runner checks that path before the first motion."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.errors import ConfigError
from chord_robot.trajectory import JointTrajectory
from hardware.backends.franka import FrankaArm, FrankaConfig
from hardware.backends.franky_path import CONTROL_PERIOD, waypoint_path, waypoints
from hardware.robots import PANDA
from hardware.runner import ExecuteConfig, Motion, prepare, run
from hardware.safety import Refusal
from hardware.safety_config import SafetyConfig
from tests.hardware.conftest import Log, fake_franky
from tests.hardware.plans import HOME, REACH, grasp_plan, min_jerk

LIMITS = tuple(np.asarray(getattr(PANDA.limits, k), float) for k in ("velocity", "acceleration", "jerk"))


def test_the_generator_reaches_every_waypoint_no_sooner_than_its_time_within_the_limits():
    t, q = min_jerk(HOME, REACH, 1.0, 11)
    velocities = np.gradient(q, t, axis=0)
    velocities[[0, -1]] = 0.0
    traj = JointTrajectory(t, q, velocities)
    path = waypoint_path(traj, *LIMITS, factor=0.5)
    np.testing.assert_array_equal(path.positions[0], q[0])
    # every waypoint is met exactly (position and velocity, acceleration 0) at some control step,
    # in order, each no sooner than its minimum time after the previous one
    hits = []
    for qk, vk, _ in waypoints(traj):
        match = np.flatnonzero(np.all(np.abs(path.positions - qk) < 1e-9, axis=1)
                               & np.all(np.abs(path.velocities - vk) < 1e-9, axis=1))
        assert len(match) >= 1
        hits.append(int(match[0]))
    steps = np.diff([0, *hits]) * CONTROL_PERIOD
    assert np.all(steps >= np.diff(t) - 1e-9) and np.all(steps <= np.diff(t) + 2 * CONTROL_PERIOD)
    assert np.abs(path.accelerations[hits]).max() < 1e-9 and hits[-1] == len(path.times) - 1
    # within half the limits (the factor), and it does use them: jerk-limited between knots
    for values, limit in ((path.velocities, LIMITS[0]), (path.accelerations, LIMITS[1]),
                          (np.diff(path.accelerations, axis=0) / CONTROL_PERIOD, LIMITS[2])):
        assert (np.abs(values) / limit).max() <= 0.5 + 1e-9
    assert (np.abs(np.diff(path.accelerations, axis=0)) / CONTROL_PERIOD / LIMITS[2]).max() > 0.49


def _run_franka(sdk, log: Log, config: ExecuteConfig | None = None, limit_scale: float = 1.0,
                franka: FrankaConfig | None = None):
    plan = grasp_plan()
    sdk({"franky": fake_franky(log, plan.joints[0], limit_scale=limit_scale)})
    arm = FrankaArm("172.16.0.2", franka)
    prepared = prepare(plan, arm.info, 1.0, config)
    return prepared, run(arm, prepared, config)


def test_franka_runs_the_checked_path_to_a_tenth_of_a_milliradian(sdk):
    """The grasp plan on the franky double: the path franky will command stays within 0.1 mrad
    of the checked curve (measured 0.08), inside the limits, the workspace and above the table;
    the motions franky receives are those waypoints."""
    log = Log()
    prepared, result = _run_franka(sdk, log)
    checks = {c.name: c for c in result.report.checks}
    assert checks["executed path"].ok and checks["executed path"].value < 1e-4, checks["executed path"]
    assert checks["executed dynamics"].ok and 99.0 < checks["executed dynamics"].value <= 100.0 + 1e-6
    assert checks["executed workspace"].ok and checks["executed table"].ok
    # the executed table margin is the checked one to within what 0.1 mrad moves the body
    assert abs(checks["executed table"].value - prepared.report.get("table").value) < 2e-4
    moves = [c[1][0] for c in log.named("move")]
    motions = [item.trajectory for item in prepared.program if isinstance(item, Motion)]
    for motion, traj in zip(moves, motions):
        sent = [(np.array(w.target.position), w.minimum_time) for w in motion.waypoints]
        assert [(q.tolist(), dt) for q, _, dt in waypoints(traj)] == [(q.tolist(), dt) for q, dt in sent]


@pytest.mark.parametrize(("limit_scale", "config", "refused"), [
    (2.0, None, "executed dynamics"),  # franky allowed twice the published limits
    (1.0, ExecuteConfig(safety=SafetyConfig(limit_fraction=0.6)), "executed dynamics"),
    (1.0, ExecuteConfig(safety=SafetyConfig(path_tolerance=5e-5)), "executed path"),
])
def test_a_franka_path_outside_the_checks_is_refused_before_it_moves(sdk, limit_scale, config, refused):
    """A franky that would run the curve at its own (higher) limits, a site's limit fraction
    that the checked curve meets (its peaks are a fifth of the limits) but franky's profiles
    between waypoints do not, and a path tolerance below the 0.08 mrad franky adds: refused
    after connecting, before any motion command."""
    log = Log()
    with pytest.raises(Refusal) as refusal:
        _run_franka(sdk, log, config, limit_scale)
    assert refusal.value.names == [refused], refusal.value
    assert log.named("Robot") and not log.named("move") and not [c for c in log if c[0].startswith("gripper")]


def test_a_site_limit_fraction_is_met_with_the_matching_franka_dynamics_factor(sdk):
    """The refused case above (limit fraction 0.6) runs with ``[franka] dynamics_factor =
    0.6``: franky's profiles then peak at 60% of the limits, still within 0.2 mrad of the curve
    (measured 0.13); franky receives that factor. The factor must lie in (0, 1]."""
    log = Log()
    config = ExecuteConfig(safety=SafetyConfig(limit_fraction=0.6))
    _, result = _run_franka(sdk, log, config, franka=FrankaConfig(dynamics_factor=0.6))
    checks = {c.name: c for c in result.report.checks}
    assert checks["executed dynamics"].ok and 59.0 < checks["executed dynamics"].value <= 60.0 + 1e-6
    assert checks["executed path"].value < 2e-4, checks["executed path"]
    assert [c[1][0].relative_dynamics_factor for c in log.named("move")] == [0.6, 0.6]
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="dynamics_factor"):
            FrankaArm("172.16.0.2", FrankaConfig(dynamics_factor=bad))
