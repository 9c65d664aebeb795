"""The robots the hardware layer can drive: joint limits, kinematic model and checked points.

A URDF gives the kinematics, but its limits are not the ones a controller enforces (the
Panda URDF in pybullet_data has position limits of +-2.9671 rad where Franka's controller
stops at +-2.8973 rad, and no acceleration or jerk limits at all). The safety layer checks a
trajectory against `RobotLimits`, a table keyed by robot name whose every entry names its
source. Where a manufacturer publishes no value the entry says so and holds a conservative
project choice; such values should be confirmed against the controller before use.

Sources:
    panda   Franka Emika, "Robot and interface specifications" (FCI documentation,
            frankaemika.github.io/docs/control_parameters.html), the limits libfranka enforces:
            q_min/q_max, dq_max, ddq_max and dddq_max per joint (also in libfranka's
            include/franka/rate_limiting.h as kMaxJointVelocity/Acceleration/Jerk).
    ur5e    Universal Robots UR5e technical specifications: every joint +-360 deg, 180 deg/s.
            UR publishes no joint acceleration or jerk limit (URScript movej accepts up to
            40 rad/s^2); the values here are a project choice.
    xarm6   UFACTORY xArm 6: joint ranges from UFACTORY's URDF (shipped in pybullet_data as
    xarm7   xarm/xarm6_robot.urdf; xArm 7 from xarm_ros), maximum joint speed 180 deg/s from
            the user manual. Acceleration (20 rad/s^2, the SDK's upper bound for mvacc) and
            jerk are project choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chord_robot.errors import SafetyError

TAU = 2 * math.pi


@dataclass(frozen=True)
class RobotLimits:
    """Per-joint limits a trajectory must respect (radians, seconds).

    Attributes:
        lower, upper: (dof,) position limits, rad.
        velocity: (dof,) |qd| limits, rad/s.
        acceleration: (dof,) |qdd| limits, rad/s^2.
        jerk: (dof,) |qddd| limits, rad/s^3.
        source: where the numbers come from.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    velocity: tuple[float, ...]
    acceleration: tuple[float, ...]
    jerk: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        n = len(self.lower)
        for name in ("upper", "velocity", "acceleration", "jerk"):
            assert len(getattr(self, name)) == n, name
        assert all(lo < hi for lo, hi in zip(self.lower, self.upper))

    @property
    def dof(self) -> int:
        return len(self.lower)

    def arrays(self) -> dict[str, np.ndarray]:
        """The limits as float arrays keyed by field name."""
        keys = ("lower", "upper", "velocity", "acceleration", "jerk")
        return {k: np.asarray(getattr(self, k), dtype=np.float64) for k in keys}


@dataclass(frozen=True)
class CheckedPoint:
    """A point rigidly attached to a link, kept inside the workspace and above the table.

    Attributes:
        name: label used in refusals ("tcp", "left fingertip", ...).
        link: URDF link the point is attached to.
        offset: (3,) position in that link's frame, metres.
    """

    name: str
    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class RobotSpec:
    """A robot the hardware layer knows.

    Attributes:
        name: the name plans use (`Plan.robot`).
        urdf: default URDF identifier ("pybullet_data:<path>" or a file path); a plan's own
            `robot_urdf` takes precedence. None when no URDF ships with the project.
        base_link: the URDF link whose frame is the robot base frame.
        tcp_link: the link whose frame is the plan's TCP (`Plan.ee_poses`).
        joint_names: the arm joints, in the order the controller uses.
        limits: `RobotLimits` in that order.
        points: points checked against the workspace box and the table plane.
        gripper_max_width: opening of the robot's usual gripper when fully open, metres.
    """

    name: str
    urdf: str | None
    base_link: str
    tcp_link: str
    joint_names: tuple[str, ...]
    limits: RobotLimits
    points: tuple[CheckedPoint, ...]
    gripper_max_width: float

    def __post_init__(self) -> None:
        assert len(self.joint_names) == self.limits.dof, self.name

    @property
    def dof(self) -> int:
        return len(self.joint_names)


# Franka Emika Panda: Franka's published limits (the values libfranka enforces).
PANDA_LIMITS = RobotLimits(
    lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    velocity=(2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100),
    acceleration=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    jerk=(7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0),
    source="Franka Emika robot and interface specifications (libfranka rate_limiting.h)",
)

# The Franka Hand, in the frame of panda_grasptarget (z: approach, y: finger closing axis):
# fingertips 8 mm past the TCP, palm box centred 78 mm behind it (planning.robot.GripperSpec).
_PANDA_HAND_CORNERS = tuple(
    CheckedPoint(
        f"hand corner {i}", "panda_grasptarget", (sx * 0.032, sy * 0.103, -0.078 + sz * 0.033)
    )
    for i, (sx, sy, sz) in enumerate(
        (sx, sy, sz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)
    )
)

PANDA = RobotSpec(
    name="panda",
    urdf="pybullet_data:franka_panda/panda.urdf",
    base_link="panda_link0",
    tcp_link="panda_grasptarget",
    joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
    limits=PANDA_LIMITS,
    points=(
        CheckedPoint("tcp", "panda_grasptarget"),
        CheckedPoint("left fingertip", "panda_grasptarget", (0.0, 0.04, 0.008)),
        CheckedPoint("right fingertip", "panda_grasptarget", (0.0, -0.04, 0.008)),
        CheckedPoint("flange", "panda_link8"),
        CheckedPoint("wrist", "panda_link6"),
        CheckedPoint("forearm", "panda_link5"),
        CheckedPoint("elbow", "panda_link4"),
        *_PANDA_HAND_CORNERS,
    ),
    gripper_max_width=0.08,
)

UR5E = RobotSpec(
    name="ur5e",
    urdf=None,
    base_link="base_link",
    tcp_link="tool0",
    joint_names=(
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ),
    limits=RobotLimits(
        lower=(-TAU,) * 6,
        upper=(TAU,) * 6,
        velocity=(math.pi,) * 6,
        acceleration=(10.0,) * 6,
        jerk=(1000.0,) * 6,
        source="UR5e technical specifications (+-360 deg, 180 deg/s); acceleration and jerk: "
        "project choice, not published by UR",
    ),
    points=(
        CheckedPoint("tool flange", "tool0"),
        CheckedPoint("wrist 3", "wrist_3_link"),
        CheckedPoint("wrist 2", "wrist_2_link"),
        CheckedPoint("wrist 1", "wrist_1_link"),
        CheckedPoint("forearm", "forearm_link"),
    ),
    gripper_max_width=0.085,
)

_XARM_ACC = "acceleration (20 rad/s^2, the SDK's mvacc bound) and jerk: project choice"

XARM6 = RobotSpec(
    name="xarm6",
    urdf="pybullet_data:xarm/xarm6_robot.urdf",
    base_link="link_base",
    tcp_link="link6",
    joint_names=tuple(f"joint{i}" for i in range(1, 7)),
    limits=RobotLimits(
        lower=(-TAU, -2.059, -3.927, -TAU, -1.69297, -TAU),
        upper=(TAU, 2.0944, 0.19198, TAU, math.pi, TAU),
        velocity=(math.pi,) * 6,
        acceleration=(20.0,) * 6,
        jerk=(1000.0,) * 6,
        source=f"UFACTORY xArm 6 URDF and user manual (180 deg/s); {_XARM_ACC}",
    ),
    points=(
        CheckedPoint("tool flange", "link6"),
        CheckedPoint("wrist", "link5"),
        CheckedPoint("forearm", "link4"),
    ),
    gripper_max_width=0.085,
)

XARM7 = RobotSpec(
    name="xarm7",
    urdf=None,
    base_link="link_base",
    tcp_link="link7",
    joint_names=tuple(f"joint{i}" for i in range(1, 8)),
    limits=RobotLimits(
        lower=(-TAU, -2.059, -TAU, -0.19198, -TAU, -1.69297, -TAU),
        upper=(TAU, 2.0944, TAU, 3.927, TAU, math.pi, TAU),
        velocity=(math.pi,) * 7,
        acceleration=(20.0,) * 7,
        jerk=(1000.0,) * 7,
        source=f"UFACTORY xArm 7 (xarm_ros URDF, user manual 180 deg/s); {_XARM_ACC}",
    ),
    points=(
        CheckedPoint("tool flange", "link7"),
        CheckedPoint("wrist", "link6"),
        CheckedPoint("forearm", "link5"),
    ),
    gripper_max_width=0.085,
)

ROBOTS: dict[str, RobotSpec] = {r.name: r for r in (PANDA, UR5E, XARM6, XARM7)}
"""Every robot the hardware layer can check and drive, by `Plan.robot` name."""


def robot_spec(name: str) -> RobotSpec:
    """The `RobotSpec` called ``name``; SafetyError (nothing can be checked) if unknown."""
    if name not in ROBOTS:
        raise SafetyError(
            f"refused, nothing moved: no limits are known for robot {name!r} "
            f"(known: {', '.join(ROBOTS)}); add it to hardware.robots.ROBOTS with its sources"
        )
    return ROBOTS[name]
