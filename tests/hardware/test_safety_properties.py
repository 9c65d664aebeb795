"""Property tests of the safety layer (issue #18): random smooth plans near the home pose pass
every check and run; the same plans with one injected violation - a position past a limit, too
fast, a jolt (acceleration, jerk), leaving the workspace, going into the table, a start far from
the arm, the gripper acting mid-motion, a NaN - are refused before any motion command, on the
recording arm and on the Franka SDK double."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chord_robot.errors import InputError, SchemaError
from hardware.backends.franka import FrankaArm
from hardware.robots import PANDA
from hardware.runner import ExecuteConfig, prepare, run
from hardware.safety import Refusal, SafetyConfig
from tests.hardware.conftest import Log, RecordingArm, fake_franky
from tests.hardware.plans import HOME, min_jerk, panda_plan

BELOW_TABLE = np.array([0.0, 1.2, 0.0, -1.2, 0.0, 2.6, 0.8])  # TCP at z = -0.047 m
VIOLATIONS = ("position", "velocity", "acceleration", "jerk", "workspace", "table", "start", "gripper", "nan")
CASES = {"valid": 0, **{v: 0 for v in VIOLATIONS}}


@st.composite
def smooth_plans(draw):
    """A rest-to-rest minimum-jerk move from near HOME to near HOME (+-0.35 rad a joint) over
    1.5-4 s: inside the Panda's limits, the workspace and above the table."""
    a = np.array(draw(st.lists(st.floats(-0.35, 0.35), min_size=7, max_size=7)))
    b = np.array(draw(st.lists(st.floats(-0.35, 0.35), min_size=7, max_size=7)))
    duration = draw(st.floats(1.5, 4.0))
    steps = draw(st.integers(21, 61))
    t, q = min_jerk(HOME + a, HOME + b, duration, steps)
    return panda_plan(t, q, gripper=np.ones(steps))


def inject(plan, violation: str, rng: np.random.Generator):
    """(plan, arm joints, config) with one violation of ``violation``'s kind."""
    joints, times, gripper = plan.joints.copy(), plan.times.copy(), plan.gripper.copy()
    start, config = joints[0].copy(), None
    k = int(rng.integers(1, len(times) - 1))  # an inner step
    j = int(rng.integers(0, 7))
    if violation == "position":  # one joint swung 0.05 rad past its upper limit and back, slowly
        lim = {name: np.asarray(getattr(PANDA.limits, name))[j] for name in ("upper", "velocity", "acceleration",
                                                                               "jerk")}
        mid = len(times) // 2
        amplitude = lim["upper"] + 0.05 - joints[mid, j]
        duration = 2.0 * max(times[-1], amplitude * np.pi / lim["velocity"],
                             np.sqrt(amplitude * 2 * np.pi**2 / lim["acceleration"]),
                             np.cbrt(amplitude * 4 * np.pi**3 / lim["jerk"]))
        times = times * duration / times[-1]
        joints[:, j] += amplitude * (1 - np.cos(2 * np.pi * times / times[-1])) / 2
    elif violation in ("velocity", "acceleration", "jerk"):  # a 0.5 rad min-jerk sweep of one joint, timed
        # so that its peak (1.875 A / T, 5.77 A / T^2, 60 A / T^3) is twice that limit
        limit = np.asarray(getattr(PANDA.limits, violation))[j]
        peak, power = {"velocity": (1.875, 1), "acceleration": (5.7735, 2), "jerk": (60.0, 3)}[violation]
        times = times * (peak * 0.5 / (2.0 * limit)) ** (1 / power) / times[-1]
        joints = np.repeat(joints[:1], len(times), 0)  # from the plan's start, only that sweep
        joints[:, j] += 0.5 * min_jerk(np.zeros(1), np.ones(1), 1.0, len(times))[1][:, 0]
    elif violation == "workspace":  # a site box the home pose leaves (checked along a motion: a sweep)
        joints[:, j] += 0.3 * min_jerk(np.zeros(1), np.ones(1), 1.0, len(times))[1][:, 0]
        config = ExecuteConfig(safety=SafetyConfig(workspace_upper=(0.05, 0.8, 1.3)))
    elif violation == "table":  # end below the table plane
        t, q = min_jerk(joints[0], BELOW_TABLE, 3.0, len(times))
        times, joints = t, q
    elif violation == "start":  # the arm is not where the plan starts
        start = start + rng.choice([-1, 1]) * 0.05 * np.eye(7)[j]
    elif violation == "gripper":  # closing in the middle of a move (a 0.3 rad sweep of one joint)
        joints[:, j] += 0.3 * min_jerk(np.zeros(1), np.ones(1), 1.0, len(times))[1][:, 0]
        gripper[len(times) // 2:] = 0.0
    bad = panda_plan(times, joints, gripper)  # end-effector poses consistent with the joints
    if violation == "nan":  # a plan holding a NaN cannot even be made (or loaded): SchemaError
        joints = bad.joints.copy()
        joints[k, j] = np.nan
        with pytest.raises(SchemaError, match="NaN"):
            dataclasses.replace(bad, joints=joints)
        return None, start, config
    return bad, start, config


def _run_on_every_arm(plan, start, config, sdk):
    """Run ``plan`` on both arms; returns their outcomes: None (ran) or the refusal."""
    outcomes = []
    recording = RecordingArm(start)
    try:
        run(recording, prepare(plan, recording.info, 1.0, config), config)
        outcomes.append((None, recording.moved))
    except InputError as e:
        outcomes.append((e, recording.moved))
    log = Log()
    sdk({"franky": fake_franky(log, start)})
    franka = FrankaArm("172.16.0.2")
    try:
        run(franka, prepare(plan, franka.info, 1.0, config), config)
        error = None
    except InputError as e:
        error = e
    moved = any(c[0] in ("move", "gripper.move", "gripper.grasp") for c in log)
    outcomes.append((error, moved))
    return outcomes


@pytest.mark.parametrize("violation", ("valid", *VIOLATIONS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=smooth_plans(), seed=st.integers(0, 2**31))
def test_valid_plans_run_and_one_violation_is_refused_before_any_motion(sdk, violation, plan, seed):
    CASES[violation] += 1
    if violation == "valid":
        for error, moved in _run_on_every_arm(plan, plan.joints[0], None, sdk):
            assert error is None and moved, error
        return
    bad, start, config = inject(plan, violation, np.random.default_rng(seed))
    if bad is None:  # refused as it was made
        return
    for error, moved in _run_on_every_arm(bad, start, config, sdk):
        assert error is not None, f"{violation} was not refused"
        assert not moved, f"{violation}: a motion command was sent before the refusal"
        if isinstance(error, Refusal):
            expected = {"position": "joint_limits", "nan": None}.get(violation, violation)
            assert expected is None or expected in error.names, (violation, error.names)


def test_every_violation_kind_was_drawn():
    """(runs after the property test in file order) every kind was exercised; the counts go
    to the note."""
    if sum(CASES.values()) == 0:
        pytest.skip("the property test did not run in this session")
    assert all(CASES[k] >= 20 for k in CASES), CASES
    print("\nsafety property cases:", CASES)
