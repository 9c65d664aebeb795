"""Execute a `Plan` on the simulated Panda: joint-space tracking of the plan's curve at the sim
rate, gripper commands on the finger joints, contacts and friction real.

The curve is the one every arm follows (`chord_robot.trajectory`): per motion between rests,
the C2 cubic spline through the plan's joints, at rest at both ends; its velocities are fed
forward to the position controller.

Nothing is teleported. The one aid is a grasp constraint: in a ``grasp`` plan, once the
gripper is commanded closed and both fingers touch the same object, the point each finger pad
touches is held to the hand (bounded force), so the link goes where the hand takes it but may
turn about the line between the pads when the torque about it beats the pads' friction
(``pinch_torque``) and the fingers' contacts, as a pinch does (``ExecuteConfig.grip``;
``"weld"`` holds its whole pose instead); for a soft body the nodes nearest the TCP are
anchored to the hand. Opening the gripper removes it. Every loop is bounded by the plan's
length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pybullet as pb

from chord_robot.errors import InputError
from chord_robot.plans import Plan
from chord_robot.trajectory import follow, plan_motions
from sim.world import (
    PANDA_ARM_JOINTS,
    Body,
    Panda,
    Stopwatch,
    World,
    link_matrix,
    matrix_to_xyzw,
    panda_joints,
    panda_opening,
    pose_to_matrix,
    soft_nodes,
    xyzw_to_matrix,
)

FINGER_MAX = 0.04  # metres per finger joint, fully open
GRIPS = ("pinch", "weld")


@dataclass(frozen=True)
class ExecuteConfig:
    """How a plan is tracked."""

    position_gain: float = 0.3
    """PyBullet POSITION_CONTROL positionGain of the arm joints."""
    velocity_gain: float = 1.0
    """PyBullet POSITION_CONTROL velocityGain of the arm joints."""
    finger_force: float = 40.0
    """Force of each finger motor, N."""
    close_below: float = 0.5
    """A gripper command below this means "closed" (commands: 1 open, 0 closed)."""
    grasp_constraint: bool = True
    """Hold a grasped object to the hand once the gripper has closed on it (grasp plans only)."""
    grasp_max_force: float = 200.0
    """Strength of each grasp constraint, N; a heavier pull breaks it as a real grip would slip."""
    grip: str = "pinch"
    """How a closed gripper holds a rigid link: ``"pinch"``, each finger pad holds the point of
    the link it touches (a point constraint of ``grasp_max_force`` at either end of the
    fingers' closing line, so a pinch pulls with up to twice that) and the link may turn about
    that line against the pads' friction (``pinch_torque``) and the fingers' own contacts, as a
    two-finger grip on a rod pivots while holding it; ``"weld"``, a fixed constraint (the link's
    whole pose follows the hand up to ``grasp_max_force``)."""
    pinch_torque: float = 0.3
    """The pads' torsional friction in a pinch: a fixed constraint between hand and link whose
    every row is capped at this (N m about each of the link's axes, so 0.3-0.5 N m about the pad
    line; N along them), N m. Two 1 cm pads squeezed by the fingers' 40 N at friction 0.5-1 hold
    0.15-0.3 N m; PyBullet's contacts give a curved mesh one point per finger and so none."""
    soft_grasp_radius: float = 0.02
    """Soft body nodes this close to the TCP are anchored when the gripper has closed on the
    body (both fingers touching it), metres. Both fingertips must touch, so a plan pinching a
    flat cloth has to bring the TCP close to its surface (docs/sim-notes.md)."""
    soft_grasp_max_opening: float = 0.03
    """The fingers must have closed to this opening to pinch a soft body, metres."""
    max_soft_anchors: int = 4
    """At most this many soft body nodes are anchored."""
    start_speed: float = 0.5
    """Joint speed of the move from the robot's current configuration to the plan's start, rad/s."""
    start_tolerance: float = 0.01
    """No start move below this joint distance (max abs), rad."""
    hold_steps: int = 240
    """Steps holding the final configuration after the trajectory."""
    max_seconds: float = 120.0
    """Refuse plans longer than this, seconds."""
    max_base_offset: float = 0.01
    """The plan's robot base must match the simulated one within this, metres."""

    def __post_init__(self) -> None:
        if self.grip not in GRIPS:
            raise InputError(f"unknown grip {self.grip!r}: {' or '.join(GRIPS)}")
        if self.pinch_torque < 0:
            raise InputError(f"pinch_torque is a torque, >= 0 N m, got {self.pinch_torque}")


@dataclass(frozen=True)
class ExecutionReport:
    """What happened when a plan was executed.

    Attributes:
        final_joint_error: max abs arm joint error to the plan's last configuration after the
            hold, rad.
        max_tracking_error: max abs arm joint error to the reference during tracking, rad.
        start_distance: max abs joint distance from the robot to the plan's start, rad.
        sim_steps: physics steps taken (start move + trajectory + hold).
        sim_seconds: simulated seconds.
        contact: whether the robot touched any non-static object.
        first_contact_time: plan time of the first such contact, seconds, or None.
        contact_objects: names of the objects touched.
        grasped: whether a grasp constraint (or soft anchor) was made.
        grasp_time: plan time it was made, or None.
        grasp_object: name of the grasped object, or None.
        release_time: plan time the grasp was released, or None.
        timings: wall-clock seconds per phase ("start", "track", "hold", "total").
    """

    final_joint_error: float
    max_tracking_error: float
    start_distance: float
    sim_steps: int
    sim_seconds: float
    contact: bool
    first_contact_time: float | None
    contact_objects: tuple[str, ...]
    grasped: bool
    grasp_time: float | None
    grasp_object: str | None
    release_time: float | None
    timings: dict[str, float] = field(default_factory=dict)


def plan_arm_columns(plan: Plan) -> np.ndarray:
    """(7,) column indices of panda_joint1..7 in ``plan.joints``; InputError if missing."""
    if not plan.joint_names:
        if plan.dof < 7:
            raise InputError(
                f"a Panda plan needs 7 arm joints, this one has {plan.dof} and no joint names"
            )
        return np.arange(7)
    missing = [n for n in PANDA_ARM_JOINTS if n not in plan.joint_names]
    if missing:
        raise InputError(
            f"the plan's joint_names miss {', '.join(missing)}: it was not made for the Panda"
        )
    return np.array([plan.joint_names.index(n) for n in PANDA_ARM_JOINTS])


def reference(
    plan: Plan, columns: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plan's curve (`chord_robot.trajectory`) at times ``t`` (S,).

    Returns:
        q: (S, 7) joint positions; qd: (S, 7) joint velocities; g: (S,) gripper commands
        (linear between steps: the fingers move during the rest between two motions).
    """
    joints = plan.joints[:, columns]
    q, qd = follow(plan_motions(plan.times, joints, plan.gripper), joints[0], t)
    return q, qd, np.interp(t, plan.times, plan.gripper)


class _Grip:
    """The running grasp state of one execution (grasp constraints or soft anchors)."""

    def __init__(self) -> None:
        self.constraints: list[int] = []
        self.object: str | None = None
        self.time: float | None = None
        self.release_time: float | None = None

    @property
    def holding(self) -> bool:
        return bool(self.constraints)


def _com_matrix(world: World, body: int, link: int) -> np.ndarray:
    """(4, 4) world pose of a link's centre-of-mass frame (the frame constraints refer to)."""
    c = world.client
    if link < 0:
        pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=c)
    else:
        s = pb.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=c)
        pos, orn = s[0], s[1]
    return xyzw_to_matrix(pos, orn)


def _finger_contact(world: World, panda: Panda, body: Body) -> int | None:
    """The object link both fingers touch, or None."""
    c = world.client
    links = []
    for finger in panda.finger_links:
        pts = pb.getContactPoints(panda.body, body.id, linkIndexA=finger, physicsClientId=c)
        links.append({p[4] for p in pts})
    common = links[0] & links[1]
    return min(common) if common else None


def _pad_points(world: World, panda: Panda) -> np.ndarray:
    """(2, 3) world points of the two finger pads: the TCP (midway between the fingertips) plus
    and minus half the opening (at least 5 mm, a pad's half-width) along the fingers' axis
    (the hand's y axis)."""
    tcp = link_matrix(world, panda.body, panda.tcp_link)[:3, 3]
    axis = link_matrix(world, panda.body, panda.hand_link)[:3, 1]
    half = max(0.5 * panda_opening(world, panda), 0.005)
    return np.stack([tcp + half * axis, tcp - half * axis])


def _point_constraint(
    world: World, panda: Panda, hand: np.ndarray, body: int, link: int, obj: np.ndarray,
    point: np.ndarray, max_force: float,
) -> int:
    """A point constraint holding ``point`` (world) of the hand and of the link together."""
    c = world.client
    cid = pb.createConstraint(
        panda.body,
        panda.hand_link,
        body,
        link,
        pb.JOINT_POINT2POINT,
        [0, 0, 0],
        parentFramePosition=(np.linalg.inv(hand) @ np.append(point, 1.0))[:3].tolist(),
        childFramePosition=(np.linalg.inv(obj) @ np.append(point, 1.0))[:3].tolist(),
        physicsClientId=c,
    )
    pb.changeConstraint(cid, maxForce=max_force, physicsClientId=c)
    return cid


def _try_grasp(
    world: World, panda: Panda, bodies: list[Body], grip: _Grip, cfg: ExecuteConfig, t: float
) -> None:
    c = world.client
    for body in bodies:
        if body.kind == "soft":
            if panda_opening(world, panda) > cfg.soft_grasp_max_opening:
                continue
            if _finger_contact(world, panda, body) is None:
                continue
            tcp = link_matrix(world, panda.body, panda.tcp_link)[:3, 3]
            nodes = soft_nodes(world, body.id)
            d = np.linalg.norm(nodes - tcp, axis=1)
            near = np.argsort(d)[: cfg.max_soft_anchors]
            near = near[d[near] < cfg.soft_grasp_radius]
            grip.constraints = [
                pb.createSoftBodyAnchor(
                    body.id, int(n), panda.body, panda.hand_link, physicsClientId=c
                )
                for n in near
            ]
        else:
            link = _finger_contact(world, panda, body)
            if link is None:
                continue
            hand = _com_matrix(world, panda.body, panda.hand_link)
            obj = _com_matrix(world, body.id, link)
            pos, orn = matrix_to_xyzw(np.linalg.inv(hand) @ obj)
            cid = pb.createConstraint(
                panda.body,
                panda.hand_link,
                body.id,
                link,
                pb.JOINT_FIXED,
                [0, 0, 0],
                parentFramePosition=pos,
                childFramePosition=[0, 0, 0],
                parentFrameOrientation=orn,
                childFrameOrientation=[0, 0, 0, 1],
                physicsClientId=c,
            )
            if cfg.grip == "pinch":
                # the weld keeps only the pads' torsional friction; each pad holds its point
                pb.changeConstraint(cid, maxForce=cfg.pinch_torque, physicsClientId=c)
                grip.constraints = [cid] + [
                    _point_constraint(world, panda, hand, body.id, link, obj, p, cfg.grasp_max_force)
                    for p in _pad_points(world, panda)
                ]
            else:
                pb.changeConstraint(cid, maxForce=cfg.grasp_max_force, physicsClientId=c)
                grip.constraints = [cid]
        if grip.holding:
            grip.object, grip.time = body.name, t
            return


def _release(world: World, grip: _Grip, t: float) -> None:
    for cid in grip.constraints:
        pb.removeConstraint(cid, physicsClientId=world.client)
    grip.constraints = []
    grip.release_time = t


def execute(
    world: World,
    panda: Panda,
    plan: Plan,
    bodies: Mapping[str, Body],
    config: ExecuteConfig | None = None,
    on_step: Callable[[float], None] | None = None,
) -> ExecutionReport:
    """Track ``plan`` on ``panda`` in ``world``.

    First moves (bounded, at ``start_speed``) from the robot's configuration to the plan's
    start if they differ, then follows the plan's curve (`reference`) at the sim rate with
    position control (its velocities fed forward, effort limits from the URDF),
    sets the fingers to ``gripper * 0.04`` m each, then holds the final configuration.

    Args:
        bodies: the world's named bodies; the non-static ones are grasp candidates.
        on_step: called with the simulated time after every step (e.g. a `Recorder`).
    Raises:
        InputError: the plan is not for a Panda, its base differs from the simulated one, or
            it is longer than ``config.max_seconds``.
    """
    cfg = config or ExecuteConfig()
    if plan.robot != "panda":
        raise InputError(f"the plan is for robot {plan.robot!r}; the simulator has a Panda")
    offset = float(
        np.linalg.norm(
            pose_to_matrix(plan.robot_base)[:3, 3] - pose_to_matrix(panda.base_pose)[:3, 3]
        )
    )
    if offset > cfg.max_base_offset:
        raise InputError(
            f"the plan was made for a robot base {offset:.3f} m away from the simulated one; "
            "plan with the task's robot_base()"
        )
    if plan.times[-1] > cfg.max_seconds:
        raise InputError(
            f"the plan lasts {plan.times[-1]:.1f} s, more than the {cfg.max_seconds:.0f} s allowed"
        )
    columns = plan_arm_columns(plan)
    c, dt = world.client, world.time_step
    arm = list(panda.arm_joints)
    candidates = [b for b in bodies.values() if b.kind != "static"]
    clock, timings = Stopwatch(), {}
    steps, sim_time = 0, 0.0

    def command(q: np.ndarray, qd: np.ndarray, g: float) -> None:
        pb.setJointMotorControlArray(
            panda.body,
            arm,
            pb.POSITION_CONTROL,
            targetPositions=q.tolist(),
            targetVelocities=qd.tolist(),
            forces=panda.max_force.tolist(),
            positionGains=[cfg.position_gain] * 7,
            velocityGains=[cfg.velocity_gain] * 7,
            physicsClientId=c,
        )
        pb.setJointMotorControlArray(
            panda.body,
            list(panda.finger_joints),
            pb.POSITION_CONTROL,
            targetPositions=[g * FINGER_MAX] * 2,
            forces=[cfg.finger_force] * 2,
            physicsClientId=c,
        )

    def advance() -> None:
        nonlocal steps, sim_time
        world.step(1)
        steps += 1
        sim_time += dt
        if on_step is not None:
            on_step(sim_time)

    # 1. move to the plan's start (bounded by the distance and the speed)
    q_start = plan.joints[0, columns]
    q_now = panda_joints(world, panda)
    start_distance = float(np.abs(q_start - q_now).max())
    if start_distance > cfg.start_tolerance:
        n = int(np.ceil(max(start_distance / cfg.start_speed, 0.5) / dt))
        for k in range(1, n + 1):
            s = k / n
            command(
                q_now + s * (q_start - q_now), (q_start - q_now) / (n * dt), float(plan.gripper[0])
            )
            advance()
    timings["start"] = clock()

    # 2. track the trajectory; 3. hold the end
    n_track = int(np.ceil(plan.times[-1] / dt))
    t_ref = np.minimum(np.arange(1, n_track + cfg.hold_steps + 1) * dt, plan.times[-1])
    q_ref, qd_ref, g_ref = reference(plan, columns, t_ref)
    grip = _Grip()
    first_contact, touched, max_err = None, set(), 0.0
    for k in range(len(t_ref)):
        t = (k + 1) * dt
        command(q_ref[k], qd_ref[k], float(g_ref[k]))
        advance()
        for b in candidates:
            if b.name not in touched and pb.getContactPoints(panda.body, b.id, physicsClientId=c):
                touched.add(b.name)
                first_contact = t if first_contact is None else first_contact
        closed = g_ref[k] < cfg.close_below
        if (
            closed
            and not grip.holding
            and grip.time is None
            and cfg.grasp_constraint
            and plan.mode == "grasp"
        ):
            _try_grasp(world, panda, candidates, grip, cfg, t)
        elif not closed and grip.holding:
            _release(world, grip, t)
        if k < n_track:
            max_err = max(max_err, float(np.abs(panda_joints(world, panda) - q_ref[k]).max()))
        if k == n_track - 1:
            timings["track"] = clock() - timings["start"]
    timings["hold"] = clock() - timings["start"] - timings.get("track", 0.0)
    timings["total"] = clock()
    final_err = float(np.abs(panda_joints(world, panda) - plan.joints[-1, columns]).max())
    return ExecutionReport(
        final_joint_error=final_err,
        max_tracking_error=max_err,
        start_distance=start_distance,
        sim_steps=steps,
        sim_seconds=sim_time,
        contact=bool(touched),
        first_contact_time=first_contact,
        contact_objects=tuple(sorted(touched)),
        grasped=grip.time is not None,
        grasp_time=grip.time,
        grasp_object=grip.object,
        release_time=grip.release_time,
        timings=timings,
    )
