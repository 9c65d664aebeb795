"""Plan: a grasp and a timed robot trajectory, stored as a zarr v3 group (DESIGN.md §3).

Layout::

    attrs: schema="chord-robot/plan", version=1, robot, robot_urdf, object, mode ("grasp"|"push"),
           dt, segments {"approach": [i, j], "manipulate": [k, l], "retreat": [m, n]} (inclusive
           indices into joints/ee_poses; manipulate is aligned with the flow's frames),
           costs {name: float} at the optimum, joint_names [..], software_version
    grasp/pose   (7,)      wxyz_xyz, world frame: the tool centre point at the grasp
    grasp/width  (1,)      gripper opening at the grasp, metres
    ee_poses     (T, 7)    wxyz_xyz, world frame
    joints       (T, dof)  joint positions (radians / metres)
    times        (T,)      seconds, strictly increasing, times[0] == 0
    gripper      (T,)      in [0, 1]: 1 open, 0 closed

A plan's joints are followed along this curve: `chord_robot.trajectory` -- cut into motions at
every rest (two consecutive steps with equal joints) and gripper change, each motion the C2
cubic spline through its steps' joints at their times, at rest at both ends. The simulator
tracks it, every real arm is sent it, the hardware safety layer checks it, and the planner
times its plans so that it stays within the robot's limits (`chord_robot.robots`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chord_robot.errors import SchemaError
from chord_robot.zarrio import open_store, put, read_array, write_store

SCHEMA = "chord-robot/plan"
VERSION = 1
MODES = ("grasp", "push")
SEGMENTS = ("approach", "manipulate", "retreat")


@dataclass(frozen=True)
class Plan:
    """A grasp and a timed joint trajectory.

    Attributes:
        robot: robot name ("panda").
        robot_urdf: the URDF identifier the joints refer to (e.g. "pybullet_data:franka_panda/panda.urdf").
        object: the object being manipulated.
        mode: "grasp" or "push".
        grasp_pose: (7,) wxyz_xyz TCP pose at the grasp, world frame.
        grasp_width: gripper opening at the grasp, metres.
        ee_poses: (T, 7) wxyz_xyz TCP poses.
        joints: (T, dof) joint positions.
        times: (T,) seconds.
        gripper: (T,) command in [0, 1], 1 = open.
        segments: name -> [first, last] inclusive indices.
        dt: nominal time step of the manipulate segment (the flow's 1 / fps after timing).
        costs: cost terms at the optimum.
        joint_names: names of the ``dof`` joints, in order.
        robot_base: (7,) wxyz_xyz pose of the robot base in the world.
    """

    robot: str
    robot_urdf: str
    object: str
    mode: str
    grasp_pose: np.ndarray
    grasp_width: float
    ee_poses: np.ndarray
    joints: np.ndarray
    times: np.ndarray
    gripper: np.ndarray
    segments: dict[str, list[int]]
    dt: float
    costs: dict[str, float] = field(default_factory=dict)
    joint_names: list[str] = field(default_factory=list)
    robot_base: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0, 0, 0, 0, 0]))

    def __post_init__(self) -> None:
        for name in ("grasp_pose", "ee_poses", "joints", "times", "gripper", "robot_base"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        object.__setattr__(self, "segments", {k: [int(a), int(b)] for k, (a, b) in self.segments.items()})
        object.__setattr__(self, "costs", {k: float(v) for k, v in self.costs.items()})
        check_plan(self)

    @property
    def num_steps(self) -> int:
        return int(self.joints.shape[0])

    @property
    def dof(self) -> int:
        return int(self.joints.shape[1])

    def segment(self, name: str) -> slice:
        """The slice of a named segment (inclusive indices made exclusive)."""
        a, b = self.segments[name]
        return slice(a, b + 1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the plan as a zarr v3 group, atomically."""
        attrs = {
            "schema": SCHEMA,
            "version": VERSION,
            "robot": self.robot,
            "robot_urdf": self.robot_urdf,
            "object": self.object,
            "mode": self.mode,
            "dt": float(self.dt),
            "segments": self.segments,
            "costs": self.costs,
            "joint_names": list(self.joint_names),
            "robot_base": self.robot_base.tolist(),
        }

        def fill(group: Any) -> None:
            put(group, "grasp/pose", self.grasp_pose.astype(np.float64))
            put(group, "grasp/width", np.array([self.grasp_width], np.float64))
            put(group, "ee_poses", self.ee_poses)
            put(group, "joints", self.joints)
            put(group, "times", self.times)
            put(group, "gripper", self.gripper)

        write_store(path, attrs, fill)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Plan:
        """Read and validate a plan store; SchemaError says what is wrong."""
        group = open_store(path, SCHEMA, VERSION)
        attrs = dict(group.attrs)
        for key in ("robot", "robot_urdf", "object", "mode", "dt", "segments"):
            if key not in attrs:
                raise SchemaError(f"{path}: plan attrs miss {key!r}")
        try:
            width = read_array(group, "grasp/width", 1, np.float64)
            if width.shape != (1,):
                raise SchemaError(f"grasp/width must have shape (1,), got {width.shape}")
            return Plan(
                robot=str(attrs["robot"]),
                robot_urdf=str(attrs["robot_urdf"]),
                object=str(attrs["object"]),
                mode=str(attrs["mode"]),
                grasp_pose=read_array(group, "grasp/pose", 1, np.float64),
                grasp_width=float(width[0]),
                ee_poses=read_array(group, "ee_poses", 2, np.float64),
                joints=read_array(group, "joints", 2, np.float64),
                times=read_array(group, "times", 1, np.float64),
                gripper=read_array(group, "gripper", 1, np.float64),
                segments=dict(attrs["segments"]),
                dt=float(attrs["dt"]),
                costs=dict(attrs.get("costs", {})),
                joint_names=list(attrs.get("joint_names", [])),
                robot_base=np.asarray(attrs.get("robot_base", [1.0, 0, 0, 0, 0, 0, 0])),
            )
        except SchemaError as e:
            raise SchemaError(f"{path}: {e}") from None


def check_plan(p: Plan) -> None:
    """Raise SchemaError unless the plan's arrays and segments are consistent."""
    if p.mode not in MODES:
        raise SchemaError(f"mode must be one of {MODES}, got {p.mode!r}")
    if p.grasp_pose.shape != (7,):
        raise SchemaError(f"grasp/pose must be (7,) wxyz_xyz, got {p.grasp_pose.shape}")
    if p.robot_base.shape != (7,):
        raise SchemaError(f"robot_base must be (7,) wxyz_xyz, got {p.robot_base.shape}")
    if p.joints.ndim != 2 or p.joints.shape[0] < 2 or p.joints.shape[1] < 1:
        raise SchemaError(f"joints must be (T, dof) with T >= 2, got {p.joints.shape}")
    t = p.joints.shape[0]
    if p.ee_poses.shape != (t, 7):
        raise SchemaError(f"ee_poses must be ({t}, 7), got {p.ee_poses.shape}")
    if p.times.shape != (t,):
        raise SchemaError(f"times must be ({t},), got {p.times.shape}")
    if p.gripper.shape != (t,):
        raise SchemaError(f"gripper must be ({t},), got {p.gripper.shape}")
    for name in ("grasp_pose", "ee_poses", "joints", "times", "gripper"):
        if not np.all(np.isfinite(getattr(p, name))):
            raise SchemaError(f"{name} holds NaN or infinite values")
    if abs(p.times[0]) > 1e-9 or np.any(np.diff(p.times) <= 0):
        raise SchemaError("times must start at 0 and increase strictly")
    if np.any(p.gripper < 0) or np.any(p.gripper > 1):
        raise SchemaError("gripper commands must lie in [0, 1]")
    if not (p.grasp_width >= 0):
        raise SchemaError(f"grasp/width must be >= 0, got {p.grasp_width}")
    if p.joint_names and len(p.joint_names) != p.joints.shape[1]:
        raise SchemaError(f"{len(p.joint_names)} joint names for {p.joints.shape[1]} joints")
    if set(p.segments) != set(SEGMENTS):
        raise SchemaError(f"segments must be exactly {SEGMENTS}, got {sorted(p.segments)}")
    prev_end = -1
    for name in SEGMENTS:
        a, b = p.segments[name]
        if not (0 <= a <= b < t) or a < prev_end:
            raise SchemaError(f"segment {name} = [{a}, {b}] is out of order or outside [0, {t - 1}]")
        prev_end = b
    if not (p.dt > 0):
        raise SchemaError(f"dt must be positive, got {p.dt}")
