"""The Python API: the whole chain in a few calls, for notebooks and scripts.

    import chord_robot

    scene = chord_robot.load_scan("examples/laptop/scan.ply")
    flow = chord_robot.generate_flow(scene, "close the laptop lid",
                                     video="examples/laptop/video.mp4", camera="examples/laptop/camera.json")
    plan = chord_robot.plan(scene, flow)
    result = chord_robot.simulate(scene, plan)

Each call returns a typed value (`Scene`, `ObjectFlow`, `Plan`, `SimResult`) and raises a
`chord_robot.errors.ChordError` for bad input (InputError) or a task that cannot be done
(TaskFailure). The command line is a thin layer over the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from chord_robot.app.scenes import load_scene
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow
from chord_robot.plans import Plan
from chord_robot.scene import Scene

PathLike = str | os.PathLike[str]


def load_scan(path: PathLike, *, up: Literal["z", "y"] = "z", scale: float = 1.0) -> Scene:
    """A scan (mesh PLY/OBJ/GLB, point-cloud or 3DGS PLY, scene.toml) as a scene of named
    objects: its labels when it has them, else a table plane and the clusters above it.

    Args:
        path: the scan.
        up: the scan's up axis.
        scale: multiply coordinates by this to get metres (0.001 for millimetres).
    """
    return load_scene(path, up=up, scale=scale)


def _paths(value: PathLike | list[PathLike] | None) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def generate_flow(
    scene: Scene,
    task: str,
    *,
    video: PathLike | list[PathLike] | None = None,
    camera: PathLike | list[PathLike] | None = None,
    background: PathLike | list[PathLike] | None = None,
    prior: Literal["video", "wan"] | None = None,
    model: PathLike | None = None,
    preset: Literal["paper", "fast", "cpu", "shipped"] | None = None,
    allow_cpu: bool = False,
    object_name: str | None = None,
    output: PathLike | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    log: Callable[[str], None] | None = None,
    device: Literal["auto", "cpu", "cuda"] = "auto",
    **overrides: Any,
) -> ObjectFlow:
    """How the scene's objects move for ``task``: a CHORD flow (DESIGN.md §4).

    Args:
        scene: from `load_scan`.
        task: the task in words.
        video, camera, background: the video prior's guidance: one video (or a list) with the
            camera JSON of each, and optionally an image of each view without the movable objects.
        prior: "video" (given videos) or "wan" (distillation from a video model); default:
            "video" when a video is given, else "wan" with the shipped prior.
        model: Wan 2.2-layout weights, or a prior `train-prior` made, distilled as the shipped
            one (wan prior; default: the shipped prior when ``prior`` is not given, else the
            local Hugging Face cache).
        preset: the flowgen preset (default: by situation, `chord_robot.app.flowconfig.choose_prior`).
        allow_cpu: run Wan 2.2 weights without a CUDA GPU (the shipped prior, or one
            `train-prior` made, needs no GPU).
        object_name: the one object to move, the others held still (default for the shipped
            prior or a `train-prior` one: the object the task names).
        output: keep FLOW.zarr here (default: written to a temporary folder and removed).
        progress, log: per-iteration and one-line callbacks.
        device: where the run lives (auto: CUDA when visible; `chord_robot.app.flowrun.resolve_device`).
        **overrides: the flow overrides of `chord_robot.app.flowconfig.FLOW_OVERRIDES`
            (``frames=``, ``iters=``, ``seed=``, ``rigid_parts=`` ...).
    """
    import tempfile
    from pathlib import Path

    from chord_robot.app.flowconfig import choose_prior, flow_config
    from chord_robot.app.flowrun import prepare_flow, run_flow

    videos = _paths(video)
    choice = choose_prior(prior, model, preset, bool(videos), task=task)
    if log is not None:
        log(f"prior: {choice.why}")
    config = flow_config(choice.preset, choice.prior, model=choice.model, **overrides)
    inputs = prepare_flow(scene, videos=videos, cameras=_paths(camera), backgrounds=_paths(background) or None,
                          config=config, task=task, model=choice.model, allow_cpu=allow_cpu,
                          object_name=object_name, device=device)
    if log is not None:
        for note in inputs.notes:
            log(note)
    if output is not None:
        return run_flow(inputs, task, output, progress=progress, log=log).flow
    with tempfile.TemporaryDirectory(prefix="chord-flow-") as tmp:
        return run_flow(inputs, task, Path(tmp) / "flow.zarr", progress=progress, log=log).flow


def scene_points(scene: Scene, rng: np.random.Generator, samples: int = 4096) -> dict[str, np.ndarray]:
    """Per object, the points the planner sees: meshes sampled on their surface, the rest as
    they are (metres, world frame)."""
    return {name: o.surface_points(samples, rng) if o.kind == "mesh" else o.points
            for name, o in scene.objects.items()}


def plan(
    scene: Scene,
    flow: ObjectFlow,
    *,
    object_name: str | None = None,
    mode: Literal["grasp", "push", "auto"] = "auto",
    robot: str = "panda",
    robot_base: str | None = None,
    preset: Literal["default", "fast"] = "default",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Plan:
    """A grasp (or push) on the moving object and a trajectory that makes it follow ``flow``.

    Args:
        scene: the scene the flow was made for.
        flow: from `generate_flow` (or `ObjectFlow.load`).
        object_name: the object to manipulate (default: the one the flow moves most).
        mode: "grasp", "push" or "auto" (grasp if reachable, else push).
        robot: a robot of `planning.ROBOTS`.
        robot_base: "x,y,z,yaw" (metres, degrees); default: placed automatically.
        preset: the planner preset.
        seed: seed of grasp sampling.
        log: one-line messages.

    Raises:
        InputError for a flow of another scene or an unknown robot, mode or preset;
        PlanningFailure (exit 1) when no grasp or no reachable trajectory exists.
    """
    if mode not in ("grasp", "push", "auto"):
        raise InputError(f"mode must be grasp, push or auto, got {mode!r}")
    missing = [n for n in flow.moving() if n not in scene.objects]
    if missing:
        raise InputError(f"the flow moves {', '.join(missing)}, which {scene.source} does not contain; "
                         "was it made for another scan?")
    from loguru import logger

    from planning import PRESETS, ROBOTS, FlowPlanner, enable_compilation_cache, parse_base

    logger.disable("jaxls")
    if robot not in ROBOTS:
        raise InputError(f"unknown robot {robot!r}; available: {', '.join(ROBOTS)}")
    if preset not in PRESETS:
        raise InputError(f"unknown planner preset {preset!r}; available: {', '.join(PRESETS)}")
    enable_compilation_cache()
    rng = np.random.default_rng(seed)
    base = parse_base(robot_base) if robot_base else None
    planner = FlowPlanner(PRESETS[preset](robot=ROBOTS[robot]()))
    return planner.plan(flow, scene_points(scene, rng), object_name=object_name, base=base, mode=mode, rng=rng,
                        log=log)


@dataclass(frozen=True)
class SimResult:
    """A plan executed in PyBullet on a scene (`simulate`).

    Attributes:
        final_joint_error: largest joint error at the end of the plan (rad).
        max_tracking_error: largest joint error along the way (rad).
        sim_seconds: simulated time (s); sim_steps: physics steps.
        contact_objects: objects the robot touched.
        grasped: whether the gripper held ``grasp_object`` at some point, from ``grasp_time`` (s).
        final_points: per movable object, its points moved as its body moved (N, 3), metres.
        frames: recorded video frames (T, H, W, 3) uint8, or None.
    """

    final_joint_error: float
    max_tracking_error: float
    sim_seconds: float
    sim_steps: int
    contact_objects: tuple[str, ...]
    grasped: bool
    grasp_object: str | None
    grasp_time: float | None
    final_points: dict[str, np.ndarray]
    frames: np.ndarray | None = None


def simulate(scene: Scene, plan: Plan, *, record: bool = False, fps: float = 15.0, gui: bool = False) -> SimResult:
    """Execute ``plan`` in PyBullet: the scene's objects become bodies (movable ones by convex
    decomposition, the table fixed), the Panda tracks the plan with its gripper.

    Args:
        scene: the scene the plan was made for.
        plan: from `plan` (or `Plan.load`).
        record: keep a video of the execution (``SimResult.frames``), framed on the movable
            objects and the end effector's path.
        fps: frames per simulated second of the recording.
        gui: open the PyBullet window (needs a display).
    """
    if plan.object not in scene.objects:
        raise InputError(f"the plan manipulates {plan.object!r}, which {scene.source} does not contain "
                         f"({', '.join(scene.objects)})")
    from chord_robot.camera import frame_points
    from sim import world as simworld
    from sim.execute import execute
    from sim.render import Recorder
    from sim.scene import scene_bodies

    world = simworld.create(direct=not gui, table=False)
    try:
        bodies = scene_bodies(world, scene)
        panda = simworld.load_panda(world, base_pose=plan.robot_base, joints=plan.joints[0])
        recorder = None
        if record:
            pts = np.concatenate([o.points for o in scene.movable().values()] + [plan.ee_poses[:, 4:]])
            recorder = Recorder(frame_points(pts, 480, 360, margin=1.6), fps=fps)
        rigid = {n: b for n, b in bodies.items() if b.kind == "rigid"}
        start = {n: simworld.base_matrix(world, b.id) for n, b in rigid.items()}
        report = execute(world, panda, plan, bodies,
                         on_step=(lambda t: recorder.maybe_capture(world, t)) if recorder else None)
        final = {}
        for name, body in rigid.items():  # each rigid body's points moved by its pose change
            motion = simworld.base_matrix(world, body.id) @ np.linalg.inv(start[name])
            points = scene.objects[name].points
            final[name] = points @ motion[:3, :3].T + motion[:3, 3]
    finally:
        world.close()
    return SimResult(report.final_joint_error, report.max_tracking_error, report.sim_seconds, report.sim_steps,
                     tuple(report.contact_objects), bool(report.grasped), report.grasp_object,
                     report.grasp_time, final, recorder.video() if recorder else None)
