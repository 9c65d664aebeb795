"""The robots the project knows: one description (URDF, frames, joints, published limits)
that planning, sim and hardware share, and the joint limits table.

A `RobotDescription` is what every layer agrees on about a robot; planning adds its PyRoki
model and covering spheres (`planning.robot`), hardware the points its safety layer checks
(`hardware.robots`), each by subclassing it.

A URDF gives the kinematics, but its limits are not the ones a controller enforces (the Panda
URDF in pybullet_data allows panda_joint1 +-2.9671 rad and panda_joint2 +-1.8326 rad where
Franka's controller stops at +-2.8973 and +-1.7628 rad, and a URDF holds no acceleration or
jerk limit at all). Planning plans within these limits, and the hardware safety layer refuses
a trajectory that leaves them, so a plan that passes one passes the other. Every entry names
its source; where a manufacturer publishes no value the entry says so and holds a conservative
project choice, to be confirmed against the controller before use.

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

Layer 0: numpy only. `resolve_urdf` finds pybullet_data's folder without importing pybullet.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from chord_robot.errors import InputError

TAU = 2 * math.pi


@dataclass(frozen=True)
class RobotLimits:
    """Per-joint limits a trajectory must respect (radians, seconds), in controller order.

    Attributes:
        joint_names: the arm joints the limits belong to (URDF joint names).
        lower, upper: (dof,) position limits, rad.
        velocity: (dof,) |qd| limits, rad/s.
        acceleration: (dof,) |qdd| limits, rad/s^2.
        jerk: (dof,) |qddd| limits, rad/s^3.
        source: where the numbers come from.
    """

    joint_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    velocity: tuple[float, ...]
    acceleration: tuple[float, ...]
    jerk: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for name in ("lower", "upper", "velocity", "acceleration", "jerk"):
            assert len(getattr(self, name)) == n, name
        assert all(lo < hi for lo, hi in zip(self.lower, self.upper))

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def arrays(self) -> dict[str, np.ndarray]:
        """The numeric limits as float arrays keyed by field name."""
        keys = ("lower", "upper", "velocity", "acceleration", "jerk")
        return {k: np.asarray(getattr(self, k), dtype=np.float64) for k in keys}


# Franka Emika Panda: Franka's published limits (the values libfranka enforces).
PANDA_LIMITS = RobotLimits(
    joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
    lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    velocity=(2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100),
    acceleration=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    jerk=(7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0),
    source="Franka Emika robot and interface specifications (libfranka rate_limiting.h)",
)

UR5E_LIMITS = RobotLimits(
    joint_names=(
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ),
    lower=(-TAU,) * 6,
    upper=(TAU,) * 6,
    velocity=(math.pi,) * 6,
    acceleration=(10.0,) * 6,
    jerk=(1000.0,) * 6,
    source="UR5e technical specifications (+-360 deg, 180 deg/s); acceleration and jerk: "
    "project choice, not published by UR",
)

_XARM_ACC = "acceleration (20 rad/s^2, the SDK's mvacc bound) and jerk: project choice"

XARM6_LIMITS = RobotLimits(
    joint_names=tuple(f"joint{i}" for i in range(1, 7)),
    lower=(-TAU, -2.059, -3.927, -TAU, -1.69297, -TAU),
    upper=(TAU, 2.0944, 0.19198, TAU, math.pi, TAU),
    velocity=(math.pi,) * 6,
    acceleration=(20.0,) * 6,
    jerk=(1000.0,) * 6,
    source=f"UFACTORY xArm 6 URDF and user manual (180 deg/s); {_XARM_ACC}",
)

XARM7_LIMITS = RobotLimits(
    joint_names=tuple(f"joint{i}" for i in range(1, 8)),
    lower=(-TAU, -2.059, -TAU, -0.19198, -TAU, -1.69297, -TAU),
    upper=(TAU, 2.0944, TAU, 3.927, TAU, math.pi, TAU),
    velocity=(math.pi,) * 7,
    acceleration=(20.0,) * 7,
    jerk=(1000.0,) * 7,
    source=f"UFACTORY xArm 7 (xarm_ros URDF, user manual 180 deg/s); {_XARM_ACC}",
)

LIMITS: dict[str, RobotLimits] = {
    "panda": PANDA_LIMITS,
    "ur5e": UR5E_LIMITS,
    "xarm6": XARM6_LIMITS,
    "xarm7": XARM7_LIMITS,
}
"""Robot name (`Plan.robot`) -> its published limits."""


def robot_limits(name: str) -> RobotLimits:
    """The limits of robot ``name``; InputError naming the known robots if there are none."""
    if name not in LIMITS:
        raise InputError(
            f"no joint limits are known for robot {name!r} (known: {', '.join(LIMITS)}); "
            "add them to chord_robot.robots.LIMITS with their source"
        )
    return LIMITS[name]


# -- descriptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotDescription:
    """A robot as every layer knows it.

    Attributes:
        name: the name plans use (`Plan.robot`).
        urdf: URDF identifier, "pybullet_data:<relative path>" or a file path (`resolve_urdf`);
            a plan's own `robot_urdf` takes precedence. None when no URDF ships with the project.
        base_link: the URDF link whose frame is the robot base frame.
        tcp_link: the link whose frame is the tool centre point (z: approach, y: finger
            closing axis); a plan's `ee_poses` are its poses.
        limits: the published limits, which also name the arm joints in controller order.
        gripper_max_width: opening of the robot's usual gripper when fully open, metres.
    """

    name: str
    urdf: str | None
    base_link: str
    tcp_link: str
    limits: RobotLimits
    gripper_max_width: float

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm joints, in the order the controller uses."""
        return self.limits.joint_names

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @classmethod
    def extend(cls: type[_R], description: RobotDescription, **parts: Any) -> _R:
        """``description`` as a ``cls`` (a package's subclass) with that subclass's ``parts``."""
        shared = {f.name: getattr(description, f.name) for f in fields(RobotDescription)}
        return cls(**shared, **parts)


_R = TypeVar("_R", bound=RobotDescription)

PANDA = RobotDescription(
    name="panda",
    urdf="pybullet_data:franka_panda/panda.urdf",
    base_link="panda_link0",
    tcp_link="panda_grasptarget",
    limits=PANDA_LIMITS,
    gripper_max_width=0.08,
)
"""The Franka Emika Panda with the Franka Hand (pybullet_data's URDF)."""

UR5E = RobotDescription("ur5e", None, "base_link", "tool0", UR5E_LIMITS, 0.085)
"""Universal Robots UR5e (no URDF ships with the project)."""

XARM6 = RobotDescription(
    "xarm6", "pybullet_data:xarm/xarm6_robot.urdf", "link_base", "link6", XARM6_LIMITS, 0.085
)
"""UFACTORY xArm 6 with the xArm Gripper."""

XARM7 = RobotDescription("xarm7", None, "link_base", "link7", XARM7_LIMITS, 0.085)
"""UFACTORY xArm 7 with the xArm Gripper (no URDF ships with the project)."""

DESCRIPTIONS: dict[str, RobotDescription] = {r.name: r for r in (PANDA, UR5E, XARM6, XARM7)}
"""Robot name (`Plan.robot`) -> its description."""


def resolve_urdf(identifier: str) -> Path:
    """A URDF identifier -> a file path (whether it exists is the caller's check).

    ``"pybullet_data:<relative path>"`` resolves inside the installed pybullet_data package,
    found with `importlib.util.find_spec` (pybullet_data is a data folder; nothing is imported);
    anything else is a file path (``~`` expanded).
    """
    if identifier.startswith("pybullet_data:"):
        spec = importlib.util.find_spec("pybullet_data")
        if spec is None or not spec.submodule_search_locations:
            raise InputError(
                f"robot URDF {identifier!r} is in pybullet_data, which is not installed: "
                "install pybullet or give a URDF file path"
            )
        return Path(next(iter(spec.submodule_search_locations))) / identifier.split(":", 1)[1]
    return Path(os.path.expanduser(identifier))
