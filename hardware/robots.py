"""The robots the hardware layer can drive: the shared descriptions and the checked points.

The description of each robot (URDF, base and TCP links, joints and published limits) is the
project's one table, `chord_robot.robots`, which planning plans within; this module adds what
only the hardware layer needs: the points the safety layer keeps inside the workspace and
above the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from chord_robot import robots
from chord_robot.errors import SafetyError
from chord_robot.robots import PANDA_LIMITS, RobotDescription, RobotLimits

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
class RobotSpec(RobotDescription):
    """A robot the hardware layer knows: its `RobotDescription` and the points it checks.

    Attributes:
        points: points checked against the workspace box and the table plane.
    """

    points: tuple[CheckedPoint, ...]


def tool_box(
    name: str, link: str, lower: tuple[float, float, float], upper: tuple[float, float, float]
) -> tuple[CheckedPoint, ...]:
    """The 8 corners of a box (``lower`` .. ``upper`` in ``link``'s frame) that encloses a tool:
    against the table and the workspace faces (planes) a box's corners are exact."""
    return tuple(
        CheckedPoint(f"{name} corner {i}", link, (x, y, z))
        for i, (x, y, z) in enumerate(
            (x, y, z) for x in (lower[0], upper[0]) for y in (lower[1], upper[1]) for z in (lower[2], upper[2])
        )
    )


# The Franka Hand, in the frame of panda_grasptarget (z: approach, y: finger closing axis):
# fingertips 8 mm past the TCP, palm box centred 78 mm behind it (planning.robot.GripperSpec).
# The URDF's collision meshes of the hand and fingers are checked too (`hardware.collision`).
_PANDA_HAND_CORNERS = tool_box("hand", "panda_grasptarget", (-0.032, -0.103, -0.111), (0.032, 0.103, -0.045))

# Grippers that are not in the arms' URDFs, as boxes from the flange (z: along the tool):
# Robotiq 2F-85 on the UR5e (163 mm long, 149 mm across the open fingers, 75 mm coupling) and
# the xArm Gripper (172 mm from the flange to the TCP, 86 mm stroke), with a few mm to spare.
_ROBOTIQ_2F85 = tool_box("gripper", "tool0", (-0.045, -0.078, 0.0), (0.045, 0.078, 0.168))

PANDA = RobotSpec.extend(
    robots.PANDA,
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
)

UR5E = RobotSpec.extend(
    robots.UR5E,
    points=(
        CheckedPoint("tool flange", "tool0"),
        CheckedPoint("wrist 3", "wrist_3_link"),
        CheckedPoint("wrist 2", "wrist_2_link"),
        CheckedPoint("wrist 1", "wrist_1_link"),
        CheckedPoint("forearm", "forearm_link"),
        *_ROBOTIQ_2F85,
    ),
)


def _xarm_points(dof: int) -> tuple[CheckedPoint, ...]:
    """The flange (link ``dof``), wrist and forearm of an xArm with ``dof`` joints, and its gripper."""
    names = ("tool flange", "wrist", "forearm")
    gripper = tool_box("gripper", f"link{dof}", (-0.045, -0.075, 0.0), (0.045, 0.075, 0.177))
    return (*(CheckedPoint(n, f"link{dof - i}") for i, n in enumerate(names)), *gripper)


XARM6 = RobotSpec.extend(robots.XARM6, points=_xarm_points(6))
XARM7 = RobotSpec.extend(robots.XARM7, points=_xarm_points(7))

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
