"""The safety layer checks the links' collision geometry: it agrees with PyBullet's own
distances from the same URDF meshes to a plane, and a link a few millimetres below the table
is refused where the robot's named points pass."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.robots import resolve_urdf
from hardware.arm import ArmInfo
from hardware.collision import collision_geometry
from hardware.kinematics import kinematics_for
from hardware.robots import PANDA, UR5E, XARM6
from hardware.runner import ExecuteConfig, prepare
from hardware.safety import Refusal
from hardware.safety_config import SafetyConfig
from tests.hardware.conftest import RecordingArm
from tests.hardware.plans import HOME, min_jerk, panda_plan, robot_plan

PYBULLET_MARGIN = 0.001


def _lowest(kin, geometry, q: np.ndarray, axis: int, sign: float) -> dict[str, float]:
    """Per link: the smallest ``sign * x[axis]`` its geometry reaches at (dof,) ``q``."""
    poses = kin.link_poses(q[None], [g.link for g in geometry])
    out = {}
    for g in geometry:
        pose = poses[g.link][0]
        x = g.points @ pose[:3, :3].T + pose[:3, 3]
        out[g.link] = float((sign * x[:, axis] - g.radius).min())
    return out


def _pybullet_lowest(urdf, q, fingers: float, axis: int, sign: float) -> dict[str, float]:
    """The same from PyBullet: each link's signed distance to a plane 1 m away whose normal is
    ``sign`` along ``axis`` (its own convex hulls of the URDF's collision meshes)."""
    import pybullet as pb

    client = pb.connect(pb.DIRECT)
    try:
        robot = pb.loadURDF(str(urdf), useFixedBase=True, physicsClientId=client)
        normal = np.zeros(3)
        normal[axis] = sign
        plane_shape = pb.createCollisionShape(pb.GEOM_PLANE, planeNormal=normal.tolist(), physicsClientId=client)
        plane = pb.createMultiBody(0, plane_shape, basePosition=(-normal).tolist(), physicsClientId=client)
        arm = iter(q)
        names = {}
        for i in range(pb.getNumJoints(robot, physicsClientId=client)):
            info = pb.getJointInfo(robot, i, physicsClientId=client)
            names[info[12].decode()] = i
            if info[2] == pb.JOINT_REVOLUTE:
                pb.resetJointState(robot, i, float(next(arm)), physicsClientId=client)
            elif info[2] == pb.JOINT_PRISMATIC:
                pb.resetJointState(robot, i, fingers, physicsClientId=client)
        out = {}
        for link, i in names.items():
            hits = pb.getClosestPoints(robot, plane, 5.0, linkIndexA=i, physicsClientId=client)
            if hits:
                out[link] = min(h[8] for h in hits) - 1.0  # distance to the plane through 0
        return out
    finally:
        pb.disconnect(client)


@pytest.mark.parametrize("spec", [PANDA, XARM6], ids=lambda s: s.name)
def test_collision_geometry_reaches_as_far_as_pybullets(spec):
    """Every moving link's lowest point (and furthest-back point) over random configurations
    agrees with PyBullet's distance from the same meshes to a plane to 0.05 mm (measured: at
    most 0.034 mm); fingers count open and closed (ours is the lower of PyBullet's two)."""
    kin = kinematics_for(spec)
    geometry = collision_geometry(kin)
    urdf = resolve_urdf(spec.urdf)
    rng = np.random.default_rng(3)
    lower, upper = np.asarray(spec.limits.lower), np.asarray(spec.limits.upper)
    worst = 0.0
    for _ in range(4):
        q = rng.uniform(lower, upper) * 0.8
        for axis, sign in ((2, 1.0), (0, 1.0), (1, -1.0)):
            ours = _lowest(kin, geometry, q, axis, sign)
            closed = _pybullet_lowest(urdf, q, 0.0, axis, sign)
            opened = _pybullet_lowest(urdf, q, 0.04, axis, sign) if spec is PANDA else closed
            assert set(ours) <= set(closed)
            for link, value in ours.items():
                # PyBullet inflates every convex shape by its 1 mm collision margin
                worst = max(worst, abs(value - min(closed[link], opened[link]) - PYBULLET_MARGIN))
    assert worst < 5e-5, f"{spec.name}: {1000 * worst:.3f} mm from PyBullet"


def _margins(spec, kin, q: np.ndarray, axis: int, sign: float) -> tuple[float, float]:
    """(named points, collision geometry): the smallest ``sign * x[axis]`` over (S, dof) ``q``."""
    named = kin.points(q, [(p.link, np.asarray(p.offset)) for p in spec.points])
    points = float((sign * named[..., axis]).min())
    geometry = min(min(_lowest(kin, collision_geometry(kin), qi, axis, sign).values(), default=np.inf) for qi in q)
    return points, geometry


def _refusal(plan, arm, config) -> Refusal | None:
    """The refusal the plan meets before any motion, or None when every check passes."""
    report = prepare(plan, arm.info, 1.0, config).report
    return None if report.ok else Refusal(report.failed)


def test_an_elbow_5_mm_outside_the_workspace_is_refused_where_the_points_pass():
    """The Panda's shoulder tilted back: its elbow's geometry comes 5 cm nearer the back face
    of the workspace than any named point. A face 5 mm inside the geometry refuses the plan
    naming the link; 0.5 mm outside it, the plan passes."""
    back = HOME + np.array([0.0, -0.25, 0.0, 0.0, 0.0, 0.0, 0.0])
    t, q = min_jerk(HOME, back, 2.0, 21)
    plan = panda_plan(t, q)
    kin = kinematics_for(PANDA)
    points, geometry = _margins(PANDA, kin, q, 0, 1.0)  # smallest x
    assert points - geometry > 0.04, (points, geometry)

    def config(x: float) -> ExecuteConfig:
        return ExecuteConfig(safety=SafetyConfig(workspace_lower=(x, -0.8, -0.1)))

    refusal = _refusal(plan, RecordingArm(HOME), config(geometry + 0.005))
    assert refusal is not None and refusal.names == ["workspace"]
    assert "(collision geometry)" in str(refusal) and "0.005 m outside" in str(refusal), str(refusal)
    assert _refusal(plan, RecordingArm(HOME), config(geometry - 0.0005)) is None


def test_a_ur5e_gripper_5_mm_into_the_table_is_refused_where_its_flange_passes(tmp_path):
    """The UR5e's URDF has no collision geometry and no tool: its gripper (a Robotiq 2F-85
    envelope on the flange) is checked. Pointing down at the table, the gripper 5 mm short of
    the clearance is refused; the flange alone sits 17 cm higher."""
    from tests.hardware.plans import UR5E_URDF

    urdf = tmp_path / "ur5e.urdf"
    urdf.write_text(UR5E_URDF)
    home = np.array([np.pi, -1.57, 1.57, -1.57, -1.57, 0.0])
    t, q = min_jerk(home, home + np.array([0.0, 0.3, 0.0, 0.0, 0.0, 0.0]), 2.0, 21)
    plan = robot_plan(UR5E, t, q, np.ones(len(t)), urdf=str(urdf))
    kin = kinematics_for(UR5E, str(urdf))
    flange = float(kin.points(q, [("tool0", np.zeros(3))])[..., 2].min())
    lowest, geometry = _margins(UR5E, kin, q, 2, 1.0)
    assert geometry == np.inf  # the URDF has no collision geometry
    assert flange - lowest > 0.16, (flange, lowest)

    def config(z: float) -> ExecuteConfig:
        return ExecuteConfig(safety=SafetyConfig(table_z=z))

    arm = RecordingArm(q[0], ArmInfo("fake", "ur5e", UR5E.joint_names, 0.085, True, "fake://arm"))
    refusal = _refusal(plan, arm, config(lowest))  # the gripper at the plane: 5 mm short
    assert refusal is not None and refusal.names == ["table"] and "gripper corner" in str(refusal), refusal
    assert _refusal(plan, arm, config(lowest - 0.0055)) is None


PRIMITIVES_URDF = """<?xml version="1.0"?>
<robot name="primitives">
  <link name="base"/>
  <link name="arm">
    <collision><origin xyz="0 0 0.5"/><geometry><box size="0.1 0.2 0.3"/></geometry></collision>
    <collision><origin xyz="0 0.3 0.5"/><geometry><cylinder radius="0.05" length="0.4"/></geometry></collision>
    <collision><origin xyz="0 -0.3 0.5"/><geometry><sphere radius="0.07"/></geometry></collision>
  </link>
  <link name="finger">
    <collision><origin xyz="0 0 0.8"/><geometry><box size="0.02 0.02 0.02"/></geometry></collision>
  </link>
  <joint name="swing" type="revolute"><parent link="base"/><child link="arm"/>
    <axis xyz="1 0 0"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="slide" type="prismatic"><parent link="arm"/><child link="finger"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="0.04" effort="1" velocity="1"/></joint>
</robot>
"""


@pytest.mark.parametrize("angle", [0.0, 0.4, 1.2, 2.5])
def test_boxes_cylinders_spheres_and_an_open_finger_reach_where_they_should(tmp_path, angle):
    """A box, a cylinder and a sphere on a link swung about x by ``angle``, and a finger on a
    prismatic joint the arm does not drive: each one's smallest z and largest y against the
    analytic values (the box and the sphere exactly, the cylinder within its 48-gon's 0.2% of
    the radius, never inside it; the finger at whichever end of its travel reaches further)."""
    from hardware.kinematics import Kinematics

    path = tmp_path / "primitives.urdf"
    path.write_text(PRIMITIVES_URDF)
    kin = Kinematics(path, ("swing",), "base")
    geometry = {g.link: g for g in collision_geometry(kin)}
    assert set(geometry) == {"arm", "finger"}
    c, s = np.cos(angle), np.sin(angle)

    def centre(y: float, z: float) -> np.ndarray:  # a point of the link's frame, swung
        return np.array([y * c - z * s, y * s + z * c])  # (y, z)

    poses = kin.link_poses(np.array([[angle]]), ["arm", "finger"])
    arm = geometry["arm"]
    x = arm.points @ poses["arm"][0, :3, :3].T + poses["arm"][0, :3, 3]
    low = x[:, 2] - arm.radius
    box_z = centre(0.0, 0.5)[1] - (0.1 * abs(s) + 0.15 * abs(c))
    cylinder_z = centre(0.3, 0.5)[1] - (0.05 * abs(s) + 0.2 * abs(c))
    sphere_z = centre(-0.3, 0.5)[1] - 0.07
    assert low[:8].min() == pytest.approx(box_z, abs=1e-12)
    assert cylinder_z - 0.05 * 0.0022 <= low[8:104].min() <= cylinder_z + 1e-12
    assert low[104] == pytest.approx(sphere_z, abs=1e-12)
    finger = geometry["finger"]
    assert len(finger.points) == 16  # its box closed and open
    reach = (finger.points @ poses["finger"][0, :3, :3].T + poses["finger"][0, :3, 3])[:, 1].max()
    ends = max(centre(0.0, 0.8)[0], centre(0.04, 0.8)[0])  # closed or open, whichever reaches further
    assert reach == pytest.approx(ends + 0.01 * (abs(c) + abs(s)), abs=1e-12)
