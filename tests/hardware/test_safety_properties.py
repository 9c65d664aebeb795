"""Property tests of the safety layer (issue #18): random smooth plans near each arm's home
pose pass every check and run; the same plans with one injected violation - a joint past its
limit, a sweep past the velocity, acceleration or jerk limit, leaving the workspace, going into
the table, a start far from the arm, the gripper acting mid-motion, a NaN - are refused before
any motion command, on every backend double: the recording arm and franky's (Panda), ur-rtde's
(UR5e), the xArm SDK's (xArm6)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chord_robot.errors import InputError, SchemaError
from hardware.backends.franka import FrankaArm
from hardware.backends.ur import URArm, URConfig
from hardware.backends.xarm import XArm, XArmConfig
from hardware.robots import PANDA, UR5E, XARM6
from hardware.runner import ExecuteConfig, prepare, run
from hardware.safety import Refusal
from hardware.safety_config import SafetyConfig
from tests.hardware.conftest import Log, RecordingArm, fake_franky, fake_ur, fake_xarm
from tests.hardware.plans import HOME, UR5E_URDF, min_jerk, robot_plan

VIOLATIONS = ("position", "velocity", "acceleration", "jerk", "workspace", "table", "start", "gripper", "nan")
CASES: dict[str, int] = {}
_UR_URDF = Path(tempfile.mkdtemp(prefix="chord-ur5e-")) / "ur5e.urdf"
_UR_URDF.write_text(UR5E_URDF)


def _recording(log: Log, q):
    arm = RecordingArm(q)
    log.arm = arm
    return arm


# robot -> (spec, URDF, home, [(backend name, fake SDK modules or None, arm factory, motion calls)])
ROBOTS = {
    "panda": (PANDA, None, HOME, [
        ("recording", None, _recording, None),
        ("franky", lambda log, q: {"franky": fake_franky(log, q)}, lambda log, q: FrankaArm("172.16.0.2"),
         ("move", "gripper.move", "gripper.grasp")),
    ]),
    "ur5e": (UR5E, str(_UR_URDF), np.array([np.pi, -1.57, 1.57, -1.57, -1.57, 0.0]), [
        ("ur-rtde", lambda log, q: fake_ur(log, q),
         lambda log, q: URArm("10.0.0.2", URConfig(rate_hz=125.0, gripper_digital_out=3), sleep=lambda s: None),
         ("servoJ", "setStandardDigitalOut", "moveJ")),
    ]),
    "xarm6": (XARM6, None, np.array([0.0, -0.5, -0.9, 0.0, 1.0, 0.0]), [
        ("xarm", lambda log, q: fake_xarm(log, q),
         lambda log, q: XArm("192.168.1.185", XArmConfig(rate_hz=50.0), sleep=lambda s: None, clock=lambda: 0.0),
         ("set_servo_angle_j", "set_gripper_position", "set_servo_angle")),
    ]),
}


@st.composite
def smooth_plans(draw, robot: str):
    """A rest-to-rest minimum-jerk move from near the arm's home to near it (+-0.35 rad a
    joint) over 1.5-4 s: inside its limits, the workspace and above the table. The Panda's
    shoulder tilts back from home by at most 0.1 rad: further, its elbow's collision geometry
    leaves the default workspace (x >= -0.3 m behind the base)."""
    spec, urdf, home, _ = ROBOTS[robot]
    dof = len(home)
    low = np.full(dof, -0.35)
    if robot == "panda":
        low[1] = -0.1
    a = np.array([draw(st.floats(lo, 0.35)) for lo in low])
    b = np.array([draw(st.floats(lo, 0.35)) for lo in low])
    duration = draw(st.floats(1.5, 4.0))
    steps = draw(st.integers(21, 61))
    t, q = min_jerk(home + a, home + b, duration, steps)
    return robot_plan(spec, t, q, np.ones(steps), urdf=urdf)


def _sweep(steps: int, amplitude: float) -> np.ndarray:
    """(steps,) a rest-to-rest minimum-jerk ramp from 0 to ``amplitude``."""
    return amplitude * min_jerk(np.zeros(1), np.ones(1), 1.0, steps)[1][:, 0]


def inject(robot: str, plan, violation: str, rng: np.random.Generator):
    """(plan or None if it cannot be made, arm joints, config) with one ``violation``."""
    spec, urdf, _, _ = ROBOTS[robot]
    joints, times, gripper = plan.joints.copy(), plan.times.copy(), plan.gripper.copy()
    start, config = joints[0].copy(), None
    n, dof = joints.shape
    j = int(rng.integers(0, dof))
    limits = spec.limits
    if violation == "position":  # one joint swung 0.05 rad past its upper limit and back, slowly
        lim = {k: np.asarray(getattr(limits, k))[j] for k in ("upper", "velocity", "acceleration", "jerk")}
        amplitude = lim["upper"] + 0.05 - joints[n // 2, j]
        duration = 2.0 * max(times[-1], amplitude * np.pi / lim["velocity"],
                             np.sqrt(amplitude * 2 * np.pi**2 / lim["acceleration"]),
                             np.cbrt(amplitude * 4 * np.pi**3 / lim["jerk"]))
        times = times * duration / times[-1]
        joints[:, j] += amplitude * (1 - np.cos(2 * np.pi * times / times[-1])) / 2
    elif violation in ("velocity", "acceleration", "jerk"):  # a 0.5 rad min-jerk sweep of one joint,
        # timed so that its peak (1.875 A / T, 5.77 A / T^2, 60 A / T^3) is twice that limit
        limit = np.asarray(getattr(limits, violation))[j]
        peak, power = {"velocity": (1.875, 1), "acceleration": (5.7735, 2), "jerk": (60.0, 3)}[violation]
        times = times * (peak * 0.5 / (2.0 * limit)) ** (1 / power) / times[-1]
        joints = np.repeat(joints[:1], n, 0)  # from the plan's start, only that sweep
        joints[:, j] += _sweep(n, 0.5)
    elif violation == "workspace":  # a site box the arm's hand leaves (checked along a motion)
        joints[:, j] += _sweep(n, 0.3)
        config = ExecuteConfig(safety=SafetyConfig(workspace_upper=(0.05, 0.8, 1.3)))
    elif violation == "table":  # a table plane above the arm's hand
        joints[:, j] += _sweep(n, 0.3)
        config = ExecuteConfig(safety=SafetyConfig(table_z=1.2))
    elif violation == "start":  # the arm is not where the plan starts
        start = start + rng.choice([-1, 1]) * 0.05 * np.eye(dof)[j]
    elif violation == "gripper":  # closing in the middle of a move
        joints[:, j] += _sweep(n, 0.3)
        gripper[n // 2:] = 0.0
    bad = robot_plan(spec, times, joints, gripper, urdf=urdf)  # end-effector poses follow the joints
    if violation == "nan":  # a plan holding a NaN cannot even be made (or loaded): SchemaError
        joints = bad.joints.copy()
        joints[int(rng.integers(1, n - 1)), j] = np.nan
        with pytest.raises(SchemaError, match="NaN"):
            dataclasses.replace(bad, joints=joints)
        return None, start, config
    return bad, start, config


def _outcomes(robot: str, plan, start, config, sdk) -> list[tuple[str, Exception | None, bool]]:
    """Run ``plan`` on each backend double of ``robot``: (backend, error or None, moved)."""
    out = []
    for name, modules, make, motion_calls in ROBOTS[robot][3]:
        log = Log()
        if modules is not None:
            sdk(modules(log, start))
        arm = make(log, start)
        try:
            run(arm, prepare(plan, arm.info, 1.0, config), config)
            error = None
        except InputError as e:
            error = e
        moved = log.arm.moved if motion_calls is None else any(c[0] in motion_calls for c in log)
        out.append((name, error, moved))
    return out


@pytest.mark.parametrize("robot", list(ROBOTS))
@pytest.mark.parametrize("violation", ("valid", *VIOLATIONS))
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), seed=st.integers(0, 2**31))
def test_valid_plans_run_and_one_violation_is_refused_before_any_motion(sdk, robot, violation, data, seed):
    plan = data.draw(smooth_plans(robot))
    CASES[f"{robot} {violation}"] = CASES.get(f"{robot} {violation}", 0) + 1
    if violation == "valid":
        for name, error, moved in _outcomes(robot, plan, plan.joints[0], None, sdk):
            assert error is None and moved, (name, error)
        return
    bad, start, config = inject(robot, plan, violation, np.random.default_rng(seed))
    if bad is None:  # refused as it was made
        return
    for name, error, moved in _outcomes(robot, bad, start, config, sdk):
        assert error is not None, f"{name}: {violation} was not refused"
        assert not moved, f"{name}: {violation}: a motion command was sent before the refusal"
        if isinstance(error, Refusal):
            expected = {"position": "joint_limits"}.get(violation, violation)
            assert expected in error.names, (name, violation, error.names)


def test_every_robot_and_violation_was_drawn():
    """(runs after the property test, in file order) every robot x kind was exercised; the
    counts go to the note."""
    if not CASES:
        pytest.skip("the property test did not run in this session")
    assert len(CASES) == len(ROBOTS) * (1 + len(VIOLATIONS)) and min(CASES.values()) >= 12, CASES
    print(f"\nsafety property cases: {sum(CASES.values())} ({CASES})")
