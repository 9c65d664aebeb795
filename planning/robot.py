"""Robot models: the shared description of `chord_robot.robots` (URDF, TCP, arm joints and
published limits) plus what only the planner needs (locked fingers, home, gripper geometry,
covering spheres), loaded with yourdfpy into a PyRoki kinematic tree whose joint limits are
the published ones, not the URDF's.

The arm is modelled with its gripper joints locked: the optimiser's configuration is the arm
joints only (7 for the Panda), and the gripper is commanded separately (`Plan.gripper`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from chord_robot import geometry, robots
from chord_robot.errors import InputError
from chord_robot.robots import RobotDescription, resolve_urdf


@dataclass(frozen=True)
class GripperSpec:
    """A parallel-jaw gripper as boxes in the TCP frame (z: approach, y: closing direction).

    The TCP is the point midway between the fingertips' pads; a grasp pose is a TCP pose.
    """

    max_width: float = 0.08
    """Largest opening between the finger pads, metres."""
    finger_length: float = 0.053
    """Extent of a finger along z, from its tip back towards the hand, metres."""
    finger_tip: float = 0.008
    """How far the fingertips reach past the TCP along z, metres."""
    finger_thickness: float = 0.018
    """Finger extent along y, outward from its pad, metres."""
    finger_depth: float = 0.02
    """Finger extent along x, metres."""
    hand_half_extents: tuple[float, float, float] = (0.032, 0.103, 0.033)
    """Half sizes of the palm box along x, y, z, metres."""
    hand_center_z: float = -0.078
    """Palm box centre along z in the TCP frame, metres."""


@dataclass(frozen=True)
class RobotSpec(RobotDescription):
    """A robot to plan for: its `RobotDescription` (URDF, TCP link, arm joints and published
    limits, which replace the URDF's so plans pass the hardware safety layer) and what the
    planner needs besides."""

    locked_joints: tuple[str, ...]
    """Joints held fixed in the kinematic model (the fingers)."""
    home: tuple[float, ...]
    """Default start configuration of the arm joints, radians."""
    shoulder_height: float
    """Height of the second joint above the base, metres (for base placement)."""
    reach: float
    """Distance from the shoulder the TCP can comfortably reach, metres."""
    gripper: GripperSpec = field(default_factory=GripperSpec)
    """Gripper geometry for grasp sampling and collision tests."""
    spheres: tuple[tuple[str, tuple[float, float, float], float], ...] = ()
    """(link, centre in the link frame, radius): spheres covering the arm links between the
    shoulder and the hand, kept clear of the scene on the way to a grasp. The links must be
    child links of joints on the base -> TCP chain."""
    hull_directions: int = 64
    """Each sphere link's collision mesh is kept above the table by the trajectory optimiser
    through its lowest vertex in this many directions spread over the sphere (at most as many
    points): the lowest point of a body over a plane is such a support point."""

    @property
    def arm_joints(self) -> tuple[str, ...]:
        """Actuated joints the planner moves, in order (the limits' joints)."""
        return self.joint_names


# Spheres covering the collision meshes of panda_link3..7 in pybullet_data's panda.urdf:
# k-means of each mesh's vertices, radius the farthest vertex of the cluster plus 2 mm
# (tests/planning/test_kinematics.py checks that they cover every vertex).
PANDA_SPHERES = (
    ("panda_link3", (-0.029, -0.021, -0.05), 0.059),
    ("panda_link3", (-0.02, -0.011, -0.109), 0.081),
    ("panda_link3", (0.105, 0.001, 0.028), 0.065),
    ("panda_link3", (0.094, 0.092, 0.012), 0.061),
    ("panda_link4", (-0.115, 0.049, -0.016), 0.06),
    ("panda_link4", (0.024, -0.026, 0.001), 0.063),
    ("panda_link4", (-0.101, 0.11, -0.016), 0.083),
    ("panda_link4", (0.012, -0.013, 0.092), 0.062),
    ("panda_link5", (0.001, 0.115, 0.02), 0.06),
    ("panda_link5", (0.037, 0.018, -0.258), 0.06),
    ("panda_link5", (0.006, -0.048, -0.237), 0.05),
    ("panda_link5", (-0.047, -0.008, -0.255), 0.063),
    ("panda_link5", (-0.002, 0.087, -0.187), 0.033),
    ("panda_link5", (0.001, 0.016, 0.026), 0.055),
    ("panda_link6", (-0.015, -0.004, 0.037), 0.071),
    ("panda_link6", (0.09, 0.072, 0.0), 0.071),
    ("panda_link6", (0.037, 0.031, 0.027), 0.066),
    ("panda_link6", (0.076, -0.031, 0.0), 0.072),
    ("panda_link7", (0.059, 0.059, 0.085), 0.054),
    ("panda_link7", (-0.006, -0.008, 0.052), 0.056),
    ("panda_link7", (-0.014, -0.015, 0.098), 0.055),
)


def panda() -> RobotSpec:
    """The Franka Emika Panda shipped with pybullet_data, within Franka's published limits."""
    return RobotSpec.extend(
        robots.PANDA,
        locked_joints=("panda_finger_joint1", "panda_finger_joint2"),
        home=(0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4),
        shoulder_height=0.333,
        reach=0.8,
        spheres=PANDA_SPHERES,
    )


ROBOTS = {"panda": panda}
"""Robot presets by the name the CLI accepts."""


@dataclass(frozen=True, eq=False)
class RobotModel:
    """A loaded robot: PyRoki kinematics of the arm with locked fingers, and its limits.

    Attributes:
        spec: what was loaded.
        kinematics: the `pyroki.Robot` (actuated joints == ``spec.arm_joints``).
        tcp_index: index of the TCP link in ``kinematics.links.names``.
        lower, upper: (dof,) joint position limits, radians.
        velocity: (dof,) joint velocity limits, rad/s.
        acceleration: (dof,) joint acceleration limits, rad/s^2.
        jerk: (dof,) joint jerk limits, rad/s^3.
        hulls: link name -> (N, 3) support points of its collision mesh in the link frame
            (`collision_hulls`), for the links ``spec.spheres`` names.
    """

    spec: RobotSpec
    kinematics: object
    tcp_index: int
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    jerk: np.ndarray
    hulls: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dof(self) -> int:
        return len(self.spec.arm_joints)

    @property
    def joint_names(self) -> list[str]:
        return list(self.spec.arm_joints)

    @property
    def home(self) -> np.ndarray:
        return np.asarray(self.spec.home, dtype=np.float64)

    @cached_property
    def _fk(self):
        import jax

        robot, idx = self.kinematics, self.tcp_index
        return jax.jit(lambda q: robot.forward_kinematics(q)[..., idx, :])

    def tcp_pose(self, q: np.ndarray) -> np.ndarray:
        """TCP poses in the robot base frame: (..., dof) joints -> (..., 4, 4)."""
        q = np.asarray(q, dtype=np.float32)
        assert q.shape[-1] == self.dof, q.shape
        return geometry.pose_to_matrix(np.asarray(self._fk(q), dtype=np.float64))

    def within_limits(self, q: np.ndarray, tol: float = 1e-6) -> bool:
        """Whether every configuration in (..., dof) lies inside the position limits."""
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))


def load_robot(spec: RobotSpec | None = None) -> RobotModel:
    """Load ``spec`` (default: the Panda) into PyRoki through yourdfpy, fingers locked, with
    the arm joints' position and velocity limits set to ``spec.limits``."""
    import pyroki
    import yourdfpy

    spec = spec or panda()
    path = resolve_urdf(spec.urdf) if spec.urdf is not None else None
    if path is None or not path.is_file():
        raise InputError(
            f"robot URDF {spec.urdf!r} not found (looked at {path}); install pybullet or pass a "
            "URDF path"
        )
    path = str(path)
    raw = yourdfpy.URDF.load(path, load_meshes=False)
    lim = spec.limits.arrays()
    for joint in raw.robot.joints:
        if joint.name in spec.locked_joints:
            joint.type = "fixed"
            joint.mimic = None
        elif joint.name in spec.arm_joints and joint.limit is not None:
            i = spec.arm_joints.index(joint.name)
            joint.limit.lower, joint.limit.upper = float(lim["lower"][i]), float(lim["upper"][i])
            joint.limit.velocity = float(lim["velocity"][i])
    urdf = yourdfpy.URDF(robot=raw.robot, load_meshes=False)
    actuated = tuple(j.name for j in urdf.actuated_joints)
    if actuated != spec.arm_joints:
        raise InputError(
            f"{spec.urdf}: actuated joints {actuated} differ from the spec's {spec.arm_joints}"
        )
    if spec.tcp_link not in urdf.link_map:
        raise InputError(f"{spec.urdf}: no TCP link {spec.tcp_link!r}")
    kin = pyroki.Robot.from_urdf(urdf, default_joint_cfg=np.asarray(spec.home, np.float32))
    assert len(spec.home) == len(actuated)
    return RobotModel(
        spec=spec,
        kinematics=kin,
        tcp_index=kin.links.names.index(spec.tcp_link),
        lower=lim["lower"],
        upper=lim["upper"],
        velocity=lim["velocity"],
        acceleration=lim["acceleration"],
        jerk=lim["jerk"],
        hulls=collision_hulls(
            raw, path, sorted({s[0] for s in spec.spheres}), spec.hull_directions
        ),
    )


def collision_hulls(urdf, path: str, links: list[str], directions: int) -> dict[str, np.ndarray]:
    """Link name -> (<= directions, 3) support points of its collision meshes (link frame): for
    each of ``directions`` unit vectors d spread over the sphere (a Fibonacci lattice), the
    vertex v minimising d . v, duplicates dropped.

    Args:
        urdf: the `yourdfpy.URDF` read from ``path`` (mesh files are resolved next to it).
    """
    import trimesh

    k = np.arange(directions) + 0.5
    polar = np.arccos(1 - 2 * k / directions)
    azimuth = np.pi * (1 + 5**0.5) * k
    dirs = np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], 1
    )
    out = {}
    for link in links:
        verts = []
        for col in urdf.link_map[link].collisions:
            if col.geometry.mesh is None:
                raise InputError(f"{path}: link {link!r} has a collision shape that is not a mesh")
            name = col.geometry.mesh.filename.replace("package://", "")
            mesh = trimesh.load(os.path.join(os.path.dirname(path), name), force="mesh")
            origin = col.origin if col.origin is not None else np.eye(4)
            verts.append(geometry.transform_points(origin, np.asarray(mesh.vertices, np.float64)))
        pts = np.concatenate(verts)
        out[link] = pts[np.unique(np.argmin(pts @ dirs.T, axis=0))]
    return out


def parse_base(text: str) -> np.ndarray:
    """ "x,y,z,yaw" (metres, degrees) -> (4, 4) base pose; InputError if malformed."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.all(np.isfinite(values)):
        raise InputError(f"a robot base is x,y,z,yaw (metres, degrees), got {text!r}")
    x, y, z, yaw = values
    return geometry.yaw_pose(x, y, z, np.deg2rad(yaw))
