"""Robot models: a URDF loaded with yourdfpy into a PyRoki kinematic tree, plus the facts
the planner needs that a URDF does not hold (acceleration limits, TCP, gripper geometry).

The arm is modelled with its gripper joints locked: the optimiser's configuration is the arm
joints only (7 for the Panda), and the gripper is commanded separately (`Plan.gripper`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from chord_robot.errors import InputError
from planning import se3


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
class RobotSpec:
    """Which robot to load and what the URDF does not say about it."""

    name: str
    """Short name stored in the Plan ("panda")."""
    urdf: str
    """URDF identifier: "pybullet_data:<relative path>" or a file path."""
    tcp_link: str
    """Link whose frame is the tool centre point (z approach, y finger closing axis)."""
    arm_joints: tuple[str, ...]
    """Actuated joints the planner moves, in order."""
    locked_joints: tuple[str, ...]
    """Joints held fixed in the kinematic model (the fingers)."""
    acceleration_limits: tuple[float, ...]
    """Per arm joint, rad/s^2 (not in URDFs)."""
    home: tuple[float, ...]
    """Default start configuration of the arm joints, radians."""
    shoulder_height: float
    """Height of the second joint above the base, metres (for base placement)."""
    reach: float
    """Distance from the shoulder the TCP can comfortably reach, metres."""
    gripper: GripperSpec = field(default_factory=GripperSpec)
    """Gripper geometry for grasp sampling and collision tests."""


def panda() -> RobotSpec:
    """The Franka Emika Panda shipped with pybullet_data; limits from Franka's datasheet."""
    return RobotSpec(
        name="panda",
        urdf="pybullet_data:franka_panda/panda.urdf",
        tcp_link="panda_grasptarget",
        arm_joints=tuple(f"panda_joint{i}" for i in range(1, 8)),
        locked_joints=("panda_finger_joint1", "panda_finger_joint2"),
        acceleration_limits=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
        home=(0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4),
        shoulder_height=0.333,
        reach=0.8,
    )


ROBOTS = {"panda": panda}
"""Robot presets by the name the CLI accepts."""


def resolve_urdf(urdf: str) -> str:
    """The file path of a URDF identifier ("pybullet_data:franka_panda/panda.urdf" or a path)."""
    if urdf.startswith("pybullet_data:"):
        import pybullet_data  # data-only package shipped with pybullet

        path = os.path.join(pybullet_data.getDataPath(), urdf.split(":", 1)[1])
    else:
        path = urdf
    if not os.path.isfile(path):
        raise InputError(
            f"robot URDF {urdf!r} not found (looked at {path}); install pybullet or pass a URDF path"
        )
    return path


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
    """

    spec: RobotSpec
    kinematics: object
    tcp_index: int
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray

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
        return se3.to_matrix(np.asarray(self._fk(q), dtype=np.float64))

    def within_limits(self, q: np.ndarray, tol: float = 1e-6) -> bool:
        """Whether every configuration in (..., dof) lies inside the position limits."""
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))


def load_robot(spec: RobotSpec | None = None) -> RobotModel:
    """Load ``spec`` (default: the Panda) into PyRoki through yourdfpy, fingers locked."""
    import pyroki
    import yourdfpy

    spec = spec or panda()
    path = resolve_urdf(spec.urdf)
    raw = yourdfpy.URDF.load(path, load_meshes=False)
    for joint in raw.robot.joints:
        if joint.name in spec.locked_joints:
            joint.type = "fixed"
            joint.mimic = None
    urdf = yourdfpy.URDF(robot=raw.robot, load_meshes=False)
    actuated = tuple(j.name for j in urdf.actuated_joints)
    if actuated != spec.arm_joints:
        raise InputError(
            f"{spec.urdf}: actuated joints {actuated} differ from the spec's {spec.arm_joints}"
        )
    if spec.tcp_link not in urdf.link_map:
        raise InputError(f"{spec.urdf}: no TCP link {spec.tcp_link!r}")
    kin = pyroki.Robot.from_urdf(urdf, default_joint_cfg=np.asarray(spec.home, np.float32))
    assert len(spec.acceleration_limits) == len(spec.home) == len(actuated)
    return RobotModel(
        spec=spec,
        kinematics=kin,
        tcp_index=kin.links.names.index(spec.tcp_link),
        lower=np.asarray(kin.joints.lower_limits, dtype=np.float64),
        upper=np.asarray(kin.joints.upper_limits, dtype=np.float64),
        velocity=np.asarray(kin.joints.velocity_limits, dtype=np.float64),
        acceleration=np.asarray(spec.acceleration_limits, dtype=np.float64),
    )


def parse_base(text: str) -> np.ndarray:
    """ "x,y,z,yaw" (metres, degrees) -> (4, 4) base pose; InputError if malformed."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.all(np.isfinite(values)):
        raise InputError(f"--robot-base wants x,y,z,yaw (metres, degrees), got {text!r}")
    x, y, z, yaw = values
    return se3.yaw_pose(x, y, z, np.deg2rad(yaw))
