"""The robots the hardware layer can drive: joint limits, kinematic model and checked points.

The limits are the project's one table, `chord_robot.robots` (Franka's, UR's and UFACTORY's
published values, each with its source), which planning plans within; this module adds what
only the hardware layer needs: the URDF, base and TCP links, and the points the safety layer
keeps inside the workspace and above the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from chord_robot.errors import SafetyError
from chord_robot.robots import (
    PANDA_LIMITS,
    UR5E_LIMITS,
    XARM6_LIMITS,
    XARM7_LIMITS,
    RobotLimits,
)

__all__ = [
    "PANDA",
    "PANDA_LIMITS",
    "ROBOTS",
    "UR5E",
    "XARM6",
    "XARM7",
    "CheckedPoint",
    "RobotLimits",
    "RobotSpec",
    "robot_spec",
]


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
        limits: the robot's published limits (`chord_robot.robots`), which also name its arm
            joints in the order the controller uses.
        points: points checked against the workspace box and the table plane.
        gripper_max_width: opening of the robot's usual gripper when fully open, metres.
    """

    name: str
    urdf: str | None
    base_link: str
    tcp_link: str
    limits: RobotLimits
    points: tuple[CheckedPoint, ...]
    gripper_max_width: float

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm joints, in the order the controller uses."""
        return self.limits.joint_names

    @property
    def dof(self) -> int:
        return len(self.joint_names)


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
    limits=UR5E_LIMITS,
    points=(
        CheckedPoint("tool flange", "tool0"),
        CheckedPoint("wrist 3", "wrist_3_link"),
        CheckedPoint("wrist 2", "wrist_2_link"),
        CheckedPoint("wrist 1", "wrist_1_link"),
        CheckedPoint("forearm", "forearm_link"),
    ),
    gripper_max_width=0.085,
)

XARM6 = RobotSpec(
    name="xarm6",
    urdf="pybullet_data:xarm/xarm6_robot.urdf",
    base_link="link_base",
    tcp_link="link6",
    limits=XARM6_LIMITS,
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
    limits=XARM7_LIMITS,
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
