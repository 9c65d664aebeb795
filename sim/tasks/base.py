"""What every task shares: the `Task` protocol, `TaskBase` (the constructor, reset bookkeeping,
scene queries and reference video common to all tasks), time scaling and kinematic playback.

A task owns the bodies of a `World` between two ``reset(seed)`` calls. Its oracle is a
scripted object motion over normalised time s in [0, 1], lasting ``(num_frames - 1) / fps``
seconds; the flow samples it at ``num_frames`` frames and ``play_oracle`` at the sim rate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow, ObjectMotion
from sim.tasks.motion import (
    Link,
    links_world_mesh,
    links_world_surface,
    sample_surface,
    table_motion,
    table_region,
)
from sim.world import Body, Panda, World, load_panda, table_mesh

ORACLE_FPS = 10.0
"""Frames per second of every oracle flow and reference video."""
ROBOT_BASE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
"""Suggested Panda base pose (wxyz_xyz): on the table top at its near edge, facing +x."""


class Task(Protocol):
    """The interface of every task in `sim.tasks.TASKS`."""

    name: str
    text: str
    world: World

    def reset(self, seed: int) -> None: ...
    def bodies(self) -> dict[str, Body]: ...
    def robot_base(self) -> np.ndarray: ...
    def load_robot(self) -> Panda: ...
    def scene_meshes(self) -> dict[str, trimesh.Trimesh]: ...
    def scene_points(self, num_points: int = 2048) -> dict[str, np.ndarray]: ...
    def scan_surfaces(self) -> dict[str, tuple[trimesh.Trimesh, np.ndarray]]: ...
    def oracle_flow(self, num_frames: int = 41, points_per_object: int = 2048) -> ObjectFlow: ...
    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None: ...
    def render_reference_video(
        self, num_frames: int = 41, width: int = 320, height: int = 240
    ) -> tuple[np.ndarray, Camera]: ...
    def reference_camera(self, width: int, height: int) -> Camera: ...
    def evaluate(self) -> tuple[bool, float]: ...
    def metric_info(self) -> Metric: ...


@dataclass(frozen=True)
class Metric:
    """What a task's metric (the float of ``evaluate``) measures, and its success threshold."""

    name: str
    """What it measures, e.g. "final lid angle"."""
    unit: str
    """Its unit, e.g. "deg", "m", "fraction of the scripted drop"."""
    threshold: float
    """The value a success must pass (one part of the success test)."""
    below: bool
    """Success needs the metric below the threshold (else at or above it)."""
    also: str = ""
    """The rest of the success test, in words (e.g. "base within 20 mm")."""

    def describe(self) -> str:
        """One line: name, unit and the test."""
        test = f"success {'<' if self.below else '>='} {self.threshold:g}" + (f" and {self.also}" if self.also else "")
        return f"{self.name} ({self.unit}); {test}"


def ease(s: float | np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling: 0 -> 0, 1 -> 1, zero velocity and acceleration at both ends."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s * s)


def frame_times(num_frames: int) -> np.ndarray:
    """(T,) normalised times of the flow frames."""
    assert num_frames >= 2, num_frames
    return np.linspace(0.0, 1.0, num_frames)


def central_rate(
    f: Callable[[float], np.ndarray], s: float, ds_dt: float, eps: float = 1e-3
) -> np.ndarray:
    """d f / dt at normalised time ``s`` by a central difference (one-sided at the ends), for
    the velocities a kinematic playback sets alongside the positions."""
    return (f(min(s + eps, 1.0)) - f(max(s - eps, 0.0))) / (2 * eps) * ds_dt


def base_shift(start: np.ndarray, now: np.ndarray) -> tuple[float, float]:
    """How far a body's base moved between two (4, 4) poses: (horizontal distance, metres;
    tilt of its up axis, degrees). Success tests read it so a dragged or toppled object
    cannot count as a done task."""
    distance = float(np.linalg.norm(now[:2, 3] - start[:2, 3]))
    cosine = float(np.clip(now[:3, 2] @ start[:3, 2], -1.0, 1.0))
    return distance, float(np.degrees(np.arccos(cosine)))


def yaw_pose(xy: np.ndarray, z: float, yaw: float) -> np.ndarray:
    """(4, 4) pose at (x, y, z) turned by ``yaw`` about +z: how a task lays an object down."""
    m = np.eye(4)
    m[:3, :3] = trimesh.transformations.rotation_matrix(yaw, [0, 0, 1])[:3, :3]
    m[:3, 3] = [xy[0], xy[1], z]
    return m


# --------------------------------------------------------------------------- shared scaffolding

C = TypeVar("C")


class TaskBase(Generic[C]):
    """The scaffolding every task class shares; a task adds its config, ``reset``, its bodies,
    its oracle and its success test.

    Subclasses set ``name``, ``text`` and ``config_type`` and implement ``reset``, ``bodies``,
    ``oracle_flow``, ``play_oracle``, ``reference_camera`` and ``evaluate``; the scene queries
    read ``object_links`` (rigid links) unless a task overrides ``object_meshes`` and
    ``scan_surfaces`` (the cloth).
    """

    name: ClassVar[str]
    """The task's name in `sim.tasks.TASKS`."""
    text: ClassVar[str]
    """The instruction in words (the flow's prompt)."""
    config_type: ClassVar[type]
    """The task's config dataclass (its default is used when none is given)."""
    verdict: str = ""
    """Why the last ``evaluate`` decided as it did, in one line (a failed trial's message)."""

    def describe_flow(self, flow: ObjectFlow) -> str:
        """One line measuring what ``flow`` asks of the task's object (e.g. how far it turns a
        joint, against the scripted motion): tells a bad flow from a bad execution. Empty
        where a task has no such measure."""
        return ""

    def __init__(self, world: World, config: C | None = None, asset_root: str | None = None) -> None:
        self.world = world
        self.config: C = config or self.config_type()
        self.asset_root = asset_root
        self.seed: int | None = None

    def start_reset(self, seed: int) -> np.random.Generator:
        """Record ``seed`` and return the generator that draws the task's layout from it."""
        self.seed = seed
        return np.random.default_rng([seed, 0])

    def _require_reset(self) -> None:
        if self.seed is None:
            raise InputError("call reset(seed) first")

    def robot_base(self) -> np.ndarray:
        return ROBOT_BASE.copy()

    def load_robot(self) -> Panda:
        return load_task_robot(self.world)

    # ------------------------------------------------------------------ scene

    def object_links(self) -> dict[str, list[Link]]:
        """Object name -> its links (meshes in link frames, PyBullet ids, colours)."""
        raise NotImplementedError

    def object_meshes(self) -> dict[str, trimesh.Trimesh]:
        """Object name -> its current surface in the world frame (the table left out)."""
        return {name: links_world_mesh(self.world, links) for name, links in self.object_links().items()}

    def scan_surfaces(self) -> dict[str, tuple[trimesh.Trimesh, np.ndarray]]:
        """Object name -> (current visual surface in the world frame, (M, 3) RGB vertex
        colours): what a scan of the scene sees (the table is added by
        `sim.tasks.flow_inputs.write_scan`)."""
        self._require_reset()
        return {name: links_world_surface(self.world, links) for name, links in self.object_links().items()}

    def scene_meshes(self) -> dict[str, trimesh.Trimesh]:
        """Object name -> current surface in the world frame (the table is static)."""
        self._require_reset()
        return {"table": table_mesh(self.world.config.table), **self.object_meshes()}

    def scene_points(self, num_points: int = 2048) -> dict[str, np.ndarray]:
        """Object name -> (N, 3) current surface points; 'table' is its top near the objects."""
        rng = np.random.default_rng([self.seed or 0, 2])
        pts = {name: sample_surface(mesh, num_points, rng) for name, mesh in self.object_meshes().items()}
        pts["table"] = table_motion(table_region(list(pts.values())), 1, num_points, rng).points.astype(
            np.float64
        )
        return pts

    # ------------------------------------------------------------------ oracle

    def oracle_objects(
        self,
        moving: dict[str, ObjectMotion],
        near: list[np.ndarray],
        num_frames: int,
        points_per_object: int,
        rng: np.random.Generator,
    ) -> ObjectFlow:
        """The oracle flow of the ``moving`` objects plus the table around the points ``near``."""
        table = table_motion(table_region(near), num_frames, points_per_object, rng)
        return ObjectFlow(
            {**moving, "table": table},
            self.text,
            ORACLE_FPS,
            "oracle",
            {"task": self.name, "seed": self.seed},
        )

    def render_reference_video(
        self, num_frames: int = 41, width: int = 320, height: int = 240
    ) -> tuple[np.ndarray, Camera]:
        """(T, H, W, 3) uint8 frames of the oracle from `reference_camera`, and that camera.

        Plays the oracle, then resets the task to the same seed (any robot is removed)."""
        self._require_reset()
        out = record_oracle(self, num_frames, width, height)  # type: ignore[arg-type]
        self.reset(self.seed)  # type: ignore[arg-type]
        return out

    def reset(self, seed: int) -> None:
        raise NotImplementedError

    def reference_camera(self, width: int, height: int) -> Camera:
        raise NotImplementedError


def side_camera(
    target: np.ndarray, width: int, height: int, offset=(-0.2, -0.55, 0.35), fov_y_deg: float = 50.0
) -> Camera:
    """A fixed camera to the robot's left, above the table, looking at ``target``."""
    target = np.asarray(target, dtype=np.float64)
    return Camera.look_at(
        target + np.asarray(offset, dtype=np.float64), target, width, height, fov_y_deg
    )


# --------------------------------------------------------------------------- playback


def set_joint_friction(world: World, body: int, friction: dict[int, float]) -> None:
    """Model hinge friction (joint index -> N m) as a zero-velocity motor of that strength."""
    for j, f in friction.items():
        pb.setJointMotorControl2(
            body, j, pb.VELOCITY_CONTROL, targetVelocity=0.0, force=f, physicsClientId=world.client
        )


def drive_loop(
    world: World,
    num_frames: int,
    drive: Callable[[float, float], None],
    on_step: Callable[[float], None] | None = None,
) -> int:
    """Run the oracle's duration at the sim rate, calling ``drive(s, ds_dt)`` before each step.

    ``on_step(sim_time)`` is called before the first step and after every step (a recorder
    hook). Returns the number of steps taken (bounded by the duration).
    """
    duration = (num_frames - 1) / ORACLE_FPS
    steps = round(duration / world.time_step)
    if on_step is not None:
        on_step(0.0)
    for k in range(1, steps + 1):
        drive(k / steps, 1.0 / duration)
        world.step(1)
        if on_step is not None:
            on_step(k * world.time_step)
    return steps


def record_oracle(
    task: Task, num_frames: int, width: int, height: int, camera: Camera | None = None
) -> tuple[np.ndarray, Camera]:
    """Play the oracle and render frame i at time i / fps from ``camera`` (default: the task's
    reference camera); return (T, H, W, 3) frames and the camera."""
    from sim.render import render

    camera = camera or task.reference_camera(width, height)
    frames: list[np.ndarray] = []

    def on_step(t: float) -> None:
        if len(frames) < num_frames and t + 1e-9 >= len(frames) / ORACLE_FPS:
            frames.append(render(task.world, camera, segmentation=False).rgb)

    task.play_oracle(num_frames, on_step=on_step)
    assert len(frames) == num_frames, (len(frames), num_frames)
    return np.stack(frames), camera


def load_task_robot(world: World) -> Panda:
    """The Panda at `ROBOT_BASE` in its home configuration, fingers open."""
    return load_panda(world, ROBOT_BASE)


def write_reference(
    task: Task,
    video_path: str | os.PathLike[str],
    camera_path: str | os.PathLike[str],
    num_frames: int = 41,
    width: int = 320,
    height: int = 240,
) -> tuple[np.ndarray, Camera]:
    """Render the task's reference video and write it as an MP4 plus its camera JSON
    (DESIGN.md §3), both atomically; the input of the ``video`` flow source."""
    from chord_robot.camera import save_cameras
    from sim.render import write_mp4

    frames, camera = task.render_reference_video(num_frames, width, height)
    write_mp4(video_path, frames, fps=ORACLE_FPS)
    save_cameras(camera_path, camera)
    return frames, camera
