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
    ),
)


def _xarm_points(dof: int) -> tuple[CheckedPoint, ...]:
    """The flange (link ``dof``), wrist and forearm of an xArm with ``dof`` joints."""
    names = ("tool flange", "wrist", "forearm")
    return tuple(CheckedPoint(n, f"link{dof - i}") for i, n in enumerate(names))


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
