"""Plan execution: the tracked curve, joint tracking accuracy, the start move, the grasp (a
pinch or a weld) and its conditions."""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest

from chord_robot.camera import Camera
from chord_robot.errors import InputError
from chord_robot.plans import Plan
from sim.execute import ExecuteConfig, execute, reference
from sim.render import Recorder
from sim.world import PANDA_HOME, Body, Panda, World, load_panda, panda_joints, reset

HOME = np.array(PANDA_HOME)
CUBE_HALF = 0.02


def _plan(
    times: np.ndarray, joints: np.ndarray, gripper: np.ndarray, mode: str = "grasp", **kw
) -> Plan:
    t = len(times)
    a, b = t // 3, 2 * t // 3
    ee = np.tile([1.0, 0, 0, 0, 0.4, 0, 0.3], (t, 1))
    return Plan(
        robot="panda",
        robot_urdf="pybullet_data:franka_panda/panda.urdf",
        object="cube",
        mode=mode,
        grasp_pose=np.array([0.0, 1, 0, 0, 0.5, 0, CUBE_HALF]),
        grasp_width=0.04,
        ee_poses=ee,
        joints=joints,
        times=times,
        gripper=gripper,
        segments={"approach": [0, a], "manipulate": [a + 1, b], "retreat": [b + 1, t - 1]},
        dt=0.1,
        **kw,
    )


def _smooth(
    q0: np.ndarray, q1: np.ndarray, seconds: float, n: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    s = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0, 1, n))
    return np.linspace(0, seconds, n), q0 + s[:, None] * (q1 - q0)


def test_joint_trajectory_is_tracked(world: World) -> None:
    reset(world)
    panda = load_panda(world)
    goal = HOME + np.array([0.5, 0.3, -0.3, 0.4, 0.2, -0.3, 0.5])
    times, joints = _smooth(HOME, goal, 3.0)
    camera = Camera.look_at(np.array([1.2, -0.8, 0.8]), np.array([0.3, 0.0, 0.3]), 48, 36)
    recorder = Recorder(camera, fps=10.0)
    plan = _plan(times, joints, np.ones(len(times)), "push")
    report = execute(world, panda, plan, {}, on_step=lambda t: recorder.maybe_capture(world, t))
    assert report.final_joint_error < 0.01
    assert report.max_tracking_error < 0.05
    assert recorder.video().shape == (41, 36, 48, 3)  # 0, 0.1, ..., 4 s: 3 s tracking + 1 s hold
    assert np.abs(recorder.frames[0].astype(float) - recorder.frames[-1].astype(float)).mean() > 1
    assert report.start_distance < 1e-6
    assert report.sim_steps == int(np.ceil(3.0 * 240)) + ExecuteConfig().hold_steps
    assert not report.contact and not report.grasped
    assert np.abs(panda_joints(world, panda) - goal).max() < 0.01


def test_moves_to_the_plan_start_first(world: World) -> None:
    reset(world)
    panda = load_panda(world)
    start = HOME + np.array([-0.4, 0.2, 0.0, 0.3, 0.0, 0.0, 0.0])
    times, joints = _smooth(start, HOME, 2.0)
    report = execute(world, panda, _plan(times, joints, np.ones(len(times)), "push"), {})
    assert abs(report.start_distance - 0.4) < 1e-3
    assert report.sim_steps > int(2.0 * 240) + ExecuteConfig().hold_steps  # the start move ran
    assert report.final_joint_error < 0.01


def _cube_scene(world: World) -> tuple[Panda, Body]:
    reset(world)
    c = world.client
    col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[CUBE_HALF] * 3, physicsClientId=c)
    cube = pb.createMultiBody(0.1, col, basePosition=[0.5, 0.0, CUBE_HALF], physicsClientId=c)
    pb.changeDynamics(cube, -1, lateralFriction=1.0, physicsClientId=c)
    return load_panda(world), Body("cube", cube, "rigid")


def _ik(world: World, panda: Panda, xyz: list[float]) -> np.ndarray:
    down = pb.getQuaternionFromEuler([np.pi, 0, 0])
    q = pb.calculateInverseKinematics(
        panda.body,
        panda.tcp_link,
        xyz,
        down,
        lowerLimits=panda.lower.tolist(),
        upperLimits=panda.upper.tolist(),
        jointRanges=(panda.upper - panda.lower).tolist(),
        restPoses=[*PANDA_HOME, 0.04, 0.04],
        maxNumIterations=200,
        residualThreshold=1e-5,
        physicsClientId=world.client,
    )
    return np.array(q[:7])


def _pick_plan(world: World, panda: Panda, x: float, mode: str = "grasp") -> Plan:
    """Home -> above (x, 0) -> down to the cube's centre height -> close -> lift 0.2 m."""
    way = np.stack(
        [HOME]
        + [
            _ik(world, panda, p)
            for p in ([x, 0, 0.15], [x, 0, CUBE_HALF], [x, 0, CUBE_HALF], [x, 0, 0.2])
        ]
    )
    key_t, key_g = [0.0, 2.0, 3.5, 4.5, 6.5], [1.0, 1.0, 1.0, 0.0, 0.0]
    times = np.linspace(0, 6.5, 66)
    joints = np.stack([np.interp(times, key_t, way[:, j]) for j in range(7)], 1)
    return _plan(times, joints, np.interp(times, key_t, key_g), mode)


@pytest.mark.parametrize("grip", ["pinch", "weld"])
def test_grasp_lifts_the_cube(world: World, grip: str) -> None:
    panda, cube = _cube_scene(world)
    report = execute(world, panda, _pick_plan(world, panda, 0.5), {"cube": cube}, ExecuteConfig(grip=grip))
    assert report.grasped and report.grasp_object == "cube"
    assert 3.5 < report.grasp_time < 4.6  # while the gripper closes, not before
    assert report.contact and report.first_contact_time <= report.grasp_time
    z = pb.getBasePositionAndOrientation(cube.id, physicsClientId=world.client)[0][2]
    assert z > 0.15
    assert report.final_joint_error < 0.01


def _rod_tilt(world: World, mass: float, **config) -> tuple[float, float]:
    """A 30 cm rod (friction 0.3) picked up 10 cm from its centre: (its tilt, degrees; the
    height of the point held, metres)."""
    reset(world)
    c = world.client
    col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[0.15, 0.012, 0.02], physicsClientId=c)
    rod = pb.createMultiBody(mass, col, basePosition=[0.6, 0.0, 0.02], physicsClientId=c)
    pb.changeDynamics(rod, -1, lateralFriction=0.3, physicsClientId=c)
    panda = load_panda(world)
    report = execute(world, panda, _pick_plan(world, panda, 0.5), {"rod": Body("rod", rod, "rigid")},
                     ExecuteConfig(**config))
    assert report.grasped
    pos, orn = pb.getBasePositionAndOrientation(rod, physicsClientId=c)
    axis = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 0]
    held = np.array(pos) - 0.1 * axis
    return float(np.degrees(np.arccos(min(abs(axis[0]), 1.0)))), float(held[2])


@pytest.mark.parametrize(
    ("mass", "config", "lo", "hi"),
    [
        (0.1, {}, 0.0, 1.0),  # ~0.1 N m about the line between the pads: held level
        (0.8, {}, 0.0, 3.0),  # ~0.8 N m: the pads' friction and the fingers' contacts hold it
        (0.8, {"pinch_torque": 0.0}, 30.0, 45.0),  # without the pads' friction it pivots
        (1.6, {}, 30.0, 45.0),  # ~1.6 N m: it pivots until friction holds it (~1.2 N m at 39 deg)
        (1.6, {"grip": "weld"}, 0.0, 0.5),  # a weld holds it whatever the torque
    ],
)
def test_a_pinch_holds_the_point_and_turns_under_torque(
    world: World, mass: float, config: dict, lo: float, hi: float
) -> None:
    tilt, held = _rod_tilt(world, mass, **config)
    assert lo <= tilt <= hi
    assert abs(held - 0.2) < 0.01  # the point between the pads went up with the hand


def test_an_unknown_grip_or_a_negative_torque_is_refused() -> None:
    with pytest.raises(InputError, match="unknown grip 'glue'"):
        ExecuteConfig(grip="glue")
    with pytest.raises(InputError, match="pinch_torque"):
        ExecuteConfig(pinch_torque=-0.1)


def test_no_grasp_when_closing_on_air_or_pushing(world: World) -> None:
    panda, cube = _cube_scene(world)
    report = execute(
        world, panda, _pick_plan(world, panda, 0.4), {"cube": cube}
    )  # 8 cm beside the cube
    assert not report.grasped and not report.contact
    z = pb.getBasePositionAndOrientation(cube.id, physicsClientId=world.client)[0][2]
    assert abs(z - CUBE_HALF) < 2e-3

    panda, cube = _cube_scene(world)
    report = execute(world, panda, _pick_plan(world, panda, 0.5, mode="push"), {"cube": cube})
    assert report.contact and not report.grasped  # a push plan never grasps


@pytest.mark.parametrize(("height", "pinched"), [(0.004, True), (0.015, False)])
def test_pinching_a_cloth_corner_anchors_it_only_when_both_fingers_touch(
    world: World, asset_root: str, height: float, pinched: bool
) -> None:
    from sim.tasks import make

    task = make("fold-fabric", world, asset_root)
    task.reset(0)
    panda = task.load_robot()
    corner = task.nodes()[task.corner]
    tcp = corner + [0.0, 0.0, height]
    way = np.stack(
        [HOME]
        + [_ik(world, panda, list(p)) for p in (tcp + [0, 0, 0.1], tcp, tcp, tcp + [0, 0, 0.12])]
    )
    key_t, key_g = [0.0, 2.0, 3.5, 4.5, 6.5], [1.0, 1.0, 1.0, 0.0, 0.0]
    times = np.linspace(0, 6.5, 66)
    joints = np.stack([np.interp(times, key_t, way[:, j]) for j in range(7)], 1)
    report = execute(
        world, panda, _plan(times, joints, np.interp(times, key_t, key_g)), task.bodies()
    )
    assert report.grasped == pinched
    lifted = task.nodes()[task.corner][2]
    if pinched:
        assert report.grasp_object == "cloth" and lifted > 0.1
    else:
        assert lifted < 0.02


def test_refuses_a_plan_for_another_base_or_robot(world: World) -> None:
    reset(world)
    panda = load_panda(world)
    times, joints = _smooth(HOME, HOME + 0.1, 1.0)
    with pytest.raises(InputError, match="robot base"):
        execute(
            world,
            panda,
            _plan(
                times, joints, np.ones(len(times)), robot_base=np.array([1.0, 0, 0, 0, 0.3, 0, 0])
            ),
            {},
        )
    with pytest.raises(InputError, match="joint_names"):
        names = [f"j{i}" for i in range(7)]
        execute(world, panda, _plan(times, joints, np.ones(len(times)), joint_names=names), {})


def test_reference_is_the_plans_contract_curve() -> None:
    # What the simulator tracks is what every arm follows (chord_robot.trajectory): per motion
    # between rests, the clamped cubic spline through the plan's joints.
    from chord_robot.trajectory import timed_segment

    rng = np.random.default_rng(0)
    first = HOME + np.cumsum(rng.normal(0, 0.05, (8, 7)), axis=0)
    second = first[-1] + np.cumsum(rng.normal(0, 0.05, (7, 7)), axis=0)
    joints = np.concatenate([first, first[-1:], second])  # rest: step 8 repeats step 7
    times = np.concatenate([np.arange(8) * 0.2, [1.4 + 0.6], 2.0 + np.arange(1, 8) * 0.15])
    gripper = np.r_[np.ones(8), np.zeros(8)]
    plan = _plan(times, joints, gripper)
    t = np.linspace(0.0, times[-1] + 0.5, 997)
    q, qd, g = reference(plan, np.arange(7), t)
    for a, b in ((0, 8), (8, 16)):
        seg = timed_segment(times[a:b], joints[a:b], 1.0, a)
        inside = (t >= times[a]) & (t <= times[b - 1])
        np.testing.assert_allclose(q[inside], seg.curve()(t[inside] - times[a]), atol=1e-12)
        np.testing.assert_allclose(qd[inside], seg.curve()(t[inside] - times[a], 1), atol=1e-12)
    rest = (t > times[7]) & (t < times[8])
    np.testing.assert_allclose(q[rest], np.broadcast_to(joints[7], q[rest].shape), atol=1e-12)
    assert np.all(qd[rest] == 0.0) and np.all(qd[t > times[-1]] == 0.0)
    assert g[0] == 1.0 and g[-1] == 0.0
