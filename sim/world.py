"""A PyBullet world: one explicit client, a table, the Franka Panda, poses, bounded stepping.

Conventions (DESIGN.md §3, §6): metres, z up, the table top is the plane z = 0 and the
robot base stands on it at the table's near edge, facing +x. Poses are (7,) wxyz_xyz.
Every function takes the `World` (its client id) explicitly; nothing is global.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pybullet as pb
import pybullet_data
import trimesh

from chord_robot.errors import InputError
from chord_robot.geometry import (  # re-exported: the sim modules' pose helpers
    matrix_to_pose,
    matrix_to_xyzw,
    pose_to_matrix,
    xyzw_to_matrix,
)

PANDA_URDF_ID = "pybullet_data:franka_panda/panda.urdf"
PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
PANDA_TCP_LINK = "panda_grasptarget"
PANDA_HAND_LINK = "panda_hand"
PANDA_HOME = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)
PANDA_MAX_OPENING = 0.08  # metres between the fingers, fully open
BodyKind = Literal["static", "rigid", "articulated", "soft"]
"""How a body moves: never, as one rigid body, by its joints, or as a soft body."""
BODY_KINDS: tuple[BodyKind, ...] = get_args(BodyKind)


@dataclass(frozen=True)
class TableConfig:
    """The support every task stands on: a static box whose top is the plane z = 0."""

    x_range: tuple[float, float] = (-0.3, 1.1)
    """Extent along x (the robot's forward axis), metres."""
    y_range: tuple[float, float] = (-0.7, 0.7)
    """Extent along y, metres."""
    thickness: float = 0.05
    """Box thickness below z = 0, metres."""
    friction: float = 0.8
    """Lateral friction coefficient of the top."""
    color: tuple[float, float, float, float] = (0.72, 0.58, 0.42, 1.0)
    """RGBA."""


@dataclass(frozen=True)
class WorldConfig:
    """Physics settings of a world."""

    time_step: float = 1.0 / 240.0
    """Seconds per physics step."""
    gravity: float = 9.81
    """Magnitude of gravity along -z, m/s^2."""
    solver_iterations: int = 50
    """Constraint solver iterations per step."""
    table: TableConfig = field(default_factory=TableConfig)
    """The table."""


@dataclass(frozen=True)
class World:
    """A PyBullet physics client and its settings.

    Attributes:
        client: the PyBullet physics client id every call passes.
        config: the physics settings.
        gui: True when the client has a window.
    """

    client: int
    config: WorldConfig
    gui: bool = False

    @property
    def time_step(self) -> float:
        return self.config.time_step

    def step(self, n: int = 1) -> None:
        """Advance the physics by ``n`` steps."""
        for _ in range(int(n)):
            pb.stepSimulation(physicsClientId=self.client)

    def close(self) -> None:
        """Disconnect the client (idempotent)."""
        if pb.isConnected(physicsClientId=self.client):
            pb.disconnect(physicsClientId=self.client)


@dataclass(frozen=True)
class Body:
    """A named body of a world.

    Attributes:
        name: the object name used in flows and plans ("table", "laptop", ...).
        id: the PyBullet body unique id.
        kind: "static", "rigid", "articulated" or "soft".
    """

    name: str
    id: int
    kind: BodyKind

    def __post_init__(self) -> None:
        assert self.kind in BODY_KINDS, self.kind


@dataclass(frozen=True)
class Panda:
    """A loaded Franka Panda.

    Attributes:
        body: PyBullet body id.
        arm_joints: (7,) PyBullet joint indices of panda_joint1..7.
        finger_joints: (2,) joint indices of the two finger joints.
        hand_link: link index of panda_hand.
        tcp_link: link index of panda_grasptarget (the point midway between the fingertips).
        finger_links: (2,) link indices of the left and right fingers.
        lower, upper: (7,) arm joint limits, rad.
        max_force: (7,) arm joint effort limits, N m.
        max_velocity: (7,) arm joint velocity limits, rad/s.
        base_pose: (7,) wxyz_xyz base pose in the world.
    """

    body: int
    arm_joints: tuple[int, ...]
    finger_joints: tuple[int, int]
    hand_link: int
    tcp_link: int
    finger_links: tuple[int, int]
    lower: np.ndarray
    upper: np.ndarray
    max_force: np.ndarray
    max_velocity: np.ndarray
    base_pose: np.ndarray

    @property
    def joint_names(self) -> tuple[str, ...]:
        return PANDA_ARM_JOINTS


def create(
    config: WorldConfig | None = None,
    direct: bool = True,
    deformable: bool = False,
    table: bool = True,
) -> World:
    """Start a PyBullet client and build an empty world (with a table unless ``table=False``).

    Args:
        config: physics settings; defaults to `WorldConfig()`.
        direct: True for a headless DIRECT client, False for a GUI window.
        deformable: use the deformable (soft body) world; needed for cloth.
        table: add the table.
    """
    config = config or WorldConfig()
    client = pb.connect(pb.DIRECT if direct else pb.GUI)
    if client < 0:
        raise InputError(
            "could not start a PyBullet client (a GUI needs a display: use direct=True)"
        )
    world = World(client, config, gui=not direct)
    reset(world, deformable=deformable, table=table)
    return world


def reset(world: World, deformable: bool = False, table: bool = True) -> Body | None:
    """Remove every body and restore the physics settings; returns the table body if added."""
    c = world.client
    pb.resetSimulation(pb.RESET_USE_DEFORMABLE_WORLD if deformable else 0, physicsClientId=c)
    pb.setGravity(0.0, 0.0, -world.config.gravity, physicsClientId=c)
    pb.setPhysicsEngineParameter(
        fixedTimeStep=world.config.time_step,
        numSolverIterations=world.config.solver_iterations,
        deterministicOverlappingPairs=1,
        physicsClientId=c,
    )
    pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
    if world.gui:
        pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 0, physicsClientId=c)
    return add_table(world, world.config.table) if table else None


def add_table(world: World, config: TableConfig) -> Body:
    """A static box whose top face is the plane z = 0."""
    c = world.client
    half = [
        (config.x_range[1] - config.x_range[0]) / 2,
        (config.y_range[1] - config.y_range[0]) / 2,
        config.thickness / 2,
    ]
    centre = [sum(config.x_range) / 2, sum(config.y_range) / 2, -config.thickness / 2]
    col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
    vis = pb.createVisualShape(
        pb.GEOM_BOX, halfExtents=half, rgbaColor=config.color, physicsClientId=c
    )
    body = pb.createMultiBody(0.0, col, vis, basePosition=centre, physicsClientId=c)
    pb.changeDynamics(body, -1, lateralFriction=config.friction, physicsClientId=c)
    return Body("table", body, "static")


def table_mesh(config: TableConfig) -> trimesh.Trimesh:
    """The table as a trimesh box in the world frame."""
    ext = [
        config.x_range[1] - config.x_range[0],
        config.y_range[1] - config.y_range[0],
        config.thickness,
    ]
    t = np.eye(4)
    t[:3, 3] = [sum(config.x_range) / 2, sum(config.y_range) / 2, -config.thickness / 2]
    return trimesh.creation.box(extents=ext, transform=t)


# --------------------------------------------------------------------------- poses


def base_matrix(world: World, body: int) -> np.ndarray:
    """(4, 4) world pose of a body's base (its inertial frame; the project's assets keep it at
    the base link frame)."""
    pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=world.client)
    return xyzw_to_matrix(pos, orn)


def link_matrix(world: World, body: int, link: int) -> np.ndarray:
    """(4, 4) world pose of a link's URDF frame (``link = -1``: the base)."""
    if link < 0:
        return base_matrix(world, body)
    s = pb.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=world.client)
    return xyzw_to_matrix(s[4], s[5])


def joint_index(world: World, body: int, name: str) -> int:
    """PyBullet index of the joint called ``name``; InputError if there is none."""
    for j in range(pb.getNumJoints(body, physicsClientId=world.client)):
        if pb.getJointInfo(body, j, physicsClientId=world.client)[1].decode() == name:
            return j
    raise InputError(f"body {body} has no joint named {name!r}")


def link_index(world: World, body: int, name: str) -> int:
    """PyBullet index of the link called ``name`` (a joint's child link)."""
    for j in range(pb.getNumJoints(body, physicsClientId=world.client)):
        if pb.getJointInfo(body, j, physicsClientId=world.client)[12].decode() == name:
            return j
    raise InputError(f"body {body} has no link named {name!r}")


# --------------------------------------------------------------------------- the Panda


def load_panda(
    world: World,
    base_pose: np.ndarray | None = None,
    joints: np.ndarray | tuple[float, ...] = PANDA_HOME,
    opening: float = PANDA_MAX_OPENING,
    finger_friction: float = 1.5,
) -> Panda:
    """Load the Franka Panda from pybullet_data with a fixed base and hold it at ``joints``.

    Args:
        base_pose: (7,) wxyz_xyz base pose in the world; None for the origin, facing +x.
        joints: (7,) initial arm configuration, rad.
        opening: initial distance between the fingers, metres.
        finger_friction: lateral friction of the finger pads.
    """
    c = world.client
    if base_pose is None:
        base_pose = np.array([1.0, 0, 0, 0, 0, 0, 0])
    base = pose_to_matrix(base_pose)
    pos, orn = matrix_to_xyzw(base)
    path = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
    body = pb.loadURDF(
        str(path),
        pos,
        orn,
        useFixedBase=True,
        flags=pb.URDF_USE_INERTIA_FROM_FILE,
        physicsClientId=c,
    )
    arm = tuple(joint_index(world, body, n) for n in PANDA_ARM_JOINTS)
    fingers = tuple(joint_index(world, body, n) for n in PANDA_FINGER_JOINTS)
    infos = [pb.getJointInfo(body, j, physicsClientId=c) for j in arm]
    panda = Panda(
        body=body,
        arm_joints=arm,
        finger_joints=(fingers[0], fingers[1]),
        hand_link=link_index(world, body, PANDA_HAND_LINK),
        tcp_link=link_index(world, body, PANDA_TCP_LINK),
        finger_links=(
            link_index(world, body, "panda_leftfinger"),
            link_index(world, body, "panda_rightfinger"),
        ),
        lower=np.array([i[8] for i in infos]),
        upper=np.array([i[9] for i in infos]),
        max_force=np.array([i[10] for i in infos]),
        max_velocity=np.array([i[11] for i in infos]),
        base_pose=np.asarray(base_pose, dtype=np.float64),
    )
    for link in panda.finger_links:
        pb.changeDynamics(
            body, link, lateralFriction=finger_friction, spinningFriction=0.01, physicsClientId=c
        )
    set_panda_state(world, panda, np.asarray(joints, dtype=np.float64), opening)
    hold_panda(world, panda, np.asarray(joints, dtype=np.float64), opening)
    return panda


def set_panda_state(world: World, panda: Panda, joints: np.ndarray, opening: float) -> None:
    """Place the arm at ``joints`` (7,) and the fingers at ``opening``, at rest (setup only)."""
    assert np.shape(joints) == (7,), np.shape(joints)
    for j, q in zip(panda.arm_joints, joints, strict=True):
        pb.resetJointState(panda.body, j, float(q), 0.0, physicsClientId=world.client)
    for j in panda.finger_joints:
        pb.resetJointState(panda.body, j, opening / 2, 0.0, physicsClientId=world.client)


def hold_panda(
    world: World, panda: Panda, joints: np.ndarray, opening: float, finger_force: float = 40.0
) -> None:
    """Command position control to ``joints`` (7,) and the fingers to ``opening``."""
    c = world.client
    pb.setJointMotorControlArray(
        panda.body,
        list(panda.arm_joints),
        pb.POSITION_CONTROL,
        targetPositions=list(map(float, joints)),
        forces=panda.max_force.tolist(),
        physicsClientId=c,
    )
    pb.setJointMotorControlArray(
        panda.body,
        list(panda.finger_joints),
        pb.POSITION_CONTROL,
        targetPositions=[opening / 2] * 2,
        forces=[finger_force] * 2,
        physicsClientId=c,
    )


def panda_joints(world: World, panda: Panda) -> np.ndarray:
    """(7,) current arm joint positions."""
    states = pb.getJointStates(panda.body, list(panda.arm_joints), physicsClientId=world.client)
    return np.array([s[0] for s in states])


def panda_opening(world: World, panda: Panda) -> float:
    """Current distance between the fingers, metres."""
    states = pb.getJointStates(panda.body, list(panda.finger_joints), physicsClientId=world.client)
    return float(states[0][0] + states[1][0])


def tcp_pose(world: World, panda: Panda) -> np.ndarray:
    """(7,) wxyz_xyz world pose of the TCP (panda_grasptarget)."""
    return matrix_to_pose(link_matrix(world, panda.body, panda.tcp_link))


# --------------------------------------------------------------------------- stepping


def body_speed(world: World, body: Body) -> float:
    """The largest linear speed (m/s) of a rigid or articulated body, joint and angular speeds
    counted at a 0.1 m lever; 0 for static bodies. Soft bodies: see `settle`."""
    c = world.client
    if body.kind in ("static", "soft"):
        return 0.0
    lin, ang = pb.getBaseVelocity(body.id, physicsClientId=c)
    speed = max(float(np.linalg.norm(lin)), float(np.linalg.norm(ang)) * 0.1)
    n = pb.getNumJoints(body.id, physicsClientId=c)
    if n:
        states = pb.getJointStates(body.id, list(range(n)), physicsClientId=c)
        speed = max(speed, max(abs(s[1]) for s in states) * 0.1)
    return speed


def soft_nodes(world: World, body: int) -> np.ndarray:
    """(M, 3) world positions of a soft body's simulation nodes."""
    _, verts = pb.getMeshData(
        body, -1, flags=pb.MESH_DATA_SIMULATION_MESH, physicsClientId=world.client
    )
    return np.asarray(verts, dtype=np.float64)


def settle(
    world: World, bodies: list[Body], max_steps: int = 480, tol: float = 2e-3, check_every: int = 24
) -> int:
    """Step until every body moves slower than ``tol`` or ``max_steps`` steps have run.

    Speeds are m/s (joint and angular speeds at a 0.1 m lever; soft bodies by their fastest
    node over the last ``check_every`` steps). Returns the number of steps taken.
    """
    soft = [b for b in bodies if b.kind == "soft"]
    steps = 0
    while steps < max_steps:
        n = min(check_every, max_steps - steps)
        before = [soft_nodes(world, b.id) for b in soft]
        world.step(n)
        steps += n
        soft_speed = [
            float(np.linalg.norm(soft_nodes(world, b.id) - x0, axis=1).max())
            / (n * world.time_step)
            for b, x0 in zip(soft, before, strict=True)
        ]
        if all(body_speed(world, b) < tol for b in bodies) and all(s < tol for s in soft_speed):
            break
    return steps


class Stopwatch:
    """Wall-clock seconds since construction (for execution reports)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self._start
