"""A flow run: scan + task (+ guidance videos, or Wan weights) -> checked inputs -> ObjectFlow.

`prepare_flow` loads and checks everything before any optimisation (bad input is one line,
exit 2, nothing written); `run_flow` builds the 4D model, runs the loop with its prior
and writes the flow atomically, checkpointing beside it so a killed run resumes. The config
comes from `chord_robot.app.flowconfig`. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chord_robot.app.flowconfig import flow_config
from chord_robot.app.scenes import load_scene
from chord_robot.app.waninputs import model_digest, read_task, wan_inputs
from chord_robot.flow import ObjectFlow
from chord_robot.scene import Scene


def _file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a directory's files (names and contents)."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        h.update(str(q.relative_to(p) if p.is_dir() else q.name).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


def _scene_digest(scene: Scene) -> str:
    """SHA-256 of a scene's objects (names, kinds, points, colours, faces), for a run given a
    scene instead of a scan file."""
    import hashlib

    h = hashlib.sha256()
    for name, obj in sorted(scene.objects.items()):
        h.update(f"{name}:{obj.kind}:{obj.static}".encode())
        for array in (obj.points, obj.colors, getattr(obj, "faces", None)):
            if array is not None:
                h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def _flow_fps(video: str | os.PathLike[str], num_frames: int, default: float = 10.0) -> float:
    """Frame rate of a flow of ``num_frames`` spanning the video's duration (metadata; else
    ``default``)."""
    try:
        import imageio.v3 as iio

        meta = iio.immeta(video)
        fps, duration = float(meta["fps"]), float(meta["duration"])
    except Exception:  # no or unreadable metadata (e.g. a .npy clip): keep the default
        return default
    source_frames = round(fps * duration)
    if fps <= 0 or source_frames < 2:
        return default
    return fps * (num_frames - 1) / (source_frames - 1)


def checkpoint_path(output: str | os.PathLike[str]):
    """Where a flow run keeps its checkpoint: beside the output, ``FLOW.zarr.ckpt``."""
    from pathlib import Path

    out = Path(output)
    return out.with_name(out.name + ".ckpt")


@dataclass(frozen=True)
class FlowInputs:
    """Validated inputs of a flow run (see :func:`prepare_flow`).

    Attributes:
        scene: the segmented scan (with ``--continue-from``: posed at the previous flow's end).
        guides: the guidance videos fitted to the run (`flowgen.priors.video_io.GuideVideo`);
            empty for the wan prior.
        config: the run's `flowgen.config.FlowConfig` (wan: ``render_size`` resolved).
        fingerprint: identifies config and input files (a checkpoint must match it).
        fps: frame rate of the flow (the videos' duration over its frames; Wan's own rate).
        model_dir: the Wan weights directory (wan prior), else None.
        notes: warnings for the user (e.g. running Wan on a CPU, and the estimated time).
        prompt: the prior's text condition: the task, or for the shipped prior (or one
            `train-prior` made) the sentence it knows that the task was read as
            (`chord_robot.app.tasktext`).
        moving: the one object allowed to move (the others held still), or None.
        framed: objects the prior's cameras keep in view beside the moving ones (a pick's
            plate, `tasktext.destinations`).
        device: where the run lives ("cpu" or "cuda"): the 4D model, its optimiser, the renders
            (gsplat on CUDA, the project's rasteriser on the CPU) and the Wan prior.
    """

    scene: Scene
    guides: tuple
    config: object
    fingerprint: str
    fps: float
    model_dir: object = None
    notes: tuple[str, ...] = ()
    prompt: str = ""
    moving: str | None = None
    device: str = "cpu"
    framed: tuple[str, ...] = ()


DEVICES = ("auto", "cpu", "cuda")
"""``--device`` choices: auto is CUDA when a GPU is visible, else the CPU."""


def resolve_device(device: str) -> str:
    """"cpu" or "cuda" for a ``--device`` choice; InputError for an unknown one or CUDA without a GPU."""
    import torch

    from chord_robot.errors import InputError

    if device not in DEVICES:
        raise InputError(f"unknown --device {device!r}; one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                         "use --device cpu or auto")
    return device


def hold_still(scene: Scene, name: str) -> Scene:
    """``scene`` with every object but ``name`` static (held still by the flow run).
    InputError when the scene has no movable object called ``name``."""
    import dataclasses

    from chord_robot.errors import InputError

    movable = scene.movable()
    if name not in movable:
        raise InputError(f"{scene.source} has no movable object {name!r} (movable: {', '.join(movable) or 'none'})")
    objects = {n: o if n == name or o.static else dataclasses.replace(o, static=True) for n, o in scene.objects.items()}
    return Scene(objects, scene.source, scene.notes)


def continue_scene(scene: Scene, flow_path: str | os.PathLike[str]) -> Scene:
    """``scene`` posed at the last frame of the flow at ``flow_path`` (long-horizon chaining):
    that pose becomes the rest pose of the next flow.

    Meshes keep their faces (and so their parts, which the control points and ARAP need): their
    vertices move by the flow's own skinning (`ObjectMotion.evaluate`). Point clouds and 3DGS
    objects become the flow's points and colours at its last frame. Static objects stay.
    InputError when the flow is not an ObjectFlow or was made from another scene.
    """
    import dataclasses

    from chord_robot.errors import InputError
    from chord_robot.flow import ObjectFlow
    from chord_robot.scene import SceneObject

    flow = ObjectFlow.load(flow_path)
    missing = sorted(set(scene.objects) - set(flow.objects))
    extra = sorted(set(flow.objects) - set(scene.objects))
    if missing or extra:
        raise InputError(f"--continue-from {flow_path} was made from another scene (objects "
                         f"{', '.join(sorted(flow.objects))}; this scan has {', '.join(scene.objects)}); "
                         "pass the scan that flow was generated from")
    last = flow.num_frames - 1
    objects = {}
    for name, obj in scene.objects.items():
        motion = flow.objects[name]
        if obj.static or motion.static:
            objects[name] = obj
        elif obj.kind == "mesh":
            objects[name] = dataclasses.replace(obj, points=motion.evaluate(obj.points)[last])
        else:
            objects[name] = SceneObject(name, "points", motion.trajectories[last], motion.colors)
    note = f"continuing from frame {last} of {flow_path} (task {flow.task!r})"
    return Scene(objects, scene.source, (*scene.notes, note))


def prepare_flow(
    scan: str | os.PathLike[str] | Scene,
    *,
    videos: list = (),
    cameras: list = (),
    backgrounds: list | None = None,
    config=None,
    task: str = "",
    up: str = "z",
    scale: float = 1.0,
    model: str | os.PathLike[str] | None = None,
    continue_from: str | os.PathLike[str] | None = None,
    allow_cpu: bool = False,
    object_name: str | None = None,
    device: str = "auto",
    adjust: Callable[[Any], Any] | None = None,
) -> FlowInputs:
    """Load and check every input of a flow run before any optimisation.

    Video prior: a video whose size or frame count does not fit its camera or the run, or a
    camera that is not rigid, raises InputError (exit 2). Wan prior: missing weights
    (WeightsError, saying where they are expected), frames or a size the model cannot take,
    or no CUDA GPU without ``allow_cpu``. Both: a bad scan, a scene with nothing to move, or a
    ``continue_from`` flow of another scene.

    Args:
        scan: the scan's path, or a scene already loaded (`chord_robot.app.scenes.load_scene`).
        videos, cameras, backgrounds: the video prior's guides (one camera per video).
        config: the run's FlowConfig (default: the cpu preset of the video prior).
        task: the task text.
        up, scale: the scan's axis and units.
        model: the Wan weights directory (None: the local Hugging Face cache).
        continue_from: a previous FLOW.zarr whose last frame is this run's rest pose.
        allow_cpu: run the wan prior without a CUDA GPU (after a warning; the shipped prior,
            or one `train-prior` made, runs on a CPU without it).
        object_name: the one object to move; the others are held still. For the shipped
            prior (or a `train-prior` one) the default is the object whose name the task's noun matches (none: every
            movable object may move).
        device: "auto" (CUDA when visible), "cpu" or "cuda" (`resolve_device`).
        adjust: sets fields of the run's config the CLI does not expose
            (`scripts/chord_sweep.py`); applied to ``config`` and again after what the task's
            motion sets (a carried object's or a cloth's settings), so its fields win: it must
            set fields to given values (applied twice, a change relative to the current value
            would be made twice).
    """
    import json
    from dataclasses import asdict
    from pathlib import Path

    from chord_robot.errors import InputError

    if config is None:
        config = flow_config()
    if adjust is not None:
        config = adjust(config)
    device = resolve_device(device)
    scene = scan if isinstance(scan, Scene) else load_scene(scan, up=up, scale=scale)
    if not scene.movable():
        raise InputError(
            f"{scene.source} has no movable object (every object is static: {', '.join(scene.objects)}); "
            "label the object to animate, or give it a name other than a support's"
        )
    prompt = task
    framed: tuple[str, ...] = ()
    chained: tuple[str, ...] = ()
    if continue_from is not None:
        scene = continue_scene(scene, continue_from)
        chained = scene.notes[-1:]
    inputs = [*([] if isinstance(scan, Scene) else [scan]), *([continue_from] if continue_from is not None else [])]
    if config.prior == "wan":
        if videos or cameras or backgrounds:
            raise InputError("--video, --camera and --background guide the video prior; the wan prior "
                             "samples its own cameras (drop them, or pass --prior video)")
        from flowgen.priors.wan import VARIANTS

        config, root, notes = wan_inputs(config, model, allow_cpu, device)
        from flowgen.priors import shipped

        if shipped.trained(root):  # its own few sentences
            config, prompt, object_name, framed, notes = read_task(config, root, scene, task, object_name, notes)
        digests = [_file_digest(p) for p in inputs] + [model_digest(root)]
        guides: tuple = ()
        fps = VARIANTS[config.wan.variant].fps
    else:
        from flowgen.priors.video_io import load_guides

        moving = {n: (o.points, o.faces) for n, o in scene.objects.items() if not o.static and object_name in (None, n)}
        still = [(o.points, o.faces) for n, o in scene.objects.items() if n not in moving]  # in the background
        guides = tuple(load_guides([Path(v) for v in videos], [Path(c) for c in cameras], config.num_frames,
                                   config.max_side, [Path(b) for b in backgrounds] if backgrounds else None,
                                   list(moving.values()), still))
        digests = [_file_digest(p) for p in [*inputs, *videos, *cameras, *(backgrounds or [])]]
        root, notes, fps = None, (), _flow_fps(videos[0], config.num_frames)
    if adjust is not None:
        config = adjust(config)
    if object_name is not None:
        scene = hold_still(scene, object_name)
    if isinstance(scan, Scene):
        digests.append(_scene_digest(scene))
    fingerprint = {"config": asdict(config), "task": task, "prompt": prompt, "moving": object_name,
                   "up": up, "scale": scale, "inputs": digests}
    if framed:  # (absent otherwise: the checkpoints of runs without it stay valid)
        fingerprint["framed"] = framed
    fingerprint = json.dumps(fingerprint, sort_keys=True, default=str)
    return FlowInputs(scene, guides, config, fingerprint, fps, root, chained + tuple(notes), prompt, object_name,
                      device, framed)


@dataclass(frozen=True)
class FlowRun:
    """What a flow run made, and its figures.

    Attributes:
        flow: the ObjectFlow written.
        iterations: iterations run (appearance + motion).
        rollbacks: times an exploding loss was rolled back to the last checkpoint.
        final_loss: the last iteration's total loss.
        seconds: wall time of the run.
        reproduction_mm: per moving object, the mean distance (mm) between the exported
            control-point skinning and the optimised points over all frames.
        deform_grad: the norm of the deformation stores' gradient at every motion iteration.
    """

    flow: ObjectFlow
    iterations: int
    rollbacks: int
    final_loss: float
    seconds: float
    reproduction_mm: dict[str, float] = field(default_factory=dict)
    deform_grad: list[float] = field(default_factory=list)


def _prior(inputs: FlowInputs, model, task: str, log):
    """The loop's prior of a run: the videos, or Wan loaded from its weights (SDS)."""
    config = inputs.config
    if config.prior == "video":
        from flowgen.priors.video import VideoPrior

        guides = tuple(g.to(inputs.device) for g in inputs.guides)  # the images beside the renders
        return VideoPrior(guides, config.photometric_ssim, config.silhouette)
    import torch

    from flowgen.priors.sds_prior import SdsPrior
    from flowgen.priors.wan import load_wan_prior

    wan = load_wan_prior(inputs.model_dir, config.wan.variant, inputs.device, prompt=inputs.prompt or task,
                         config=config.wan, log=log)
    framed = [obj.rest.means for obj in model.static if obj.name in inputs.framed]  # e.g. a pick's plate
    targets = torch.cat([obj.rest.means for obj in model.moving] + framed).cpu().numpy()
    width, height = config.render_size
    prior = SdsPrior(wan, targets, config.num_frames, width, height, config.views_per_iteration,
                     config.iterations, config.wan.cameras, config.seed)
    if log is not None:
        log(prior.plan())
    return prior


def run_flow(
    inputs: FlowInputs,
    task: str,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress=None,
    log=None,
) -> FlowRun:
    """CHORD flow generation: validated inputs -> ObjectFlow at ``output``, guided by videos
    (prior "video") or by Wan 2.2 score distillation (prior "wan").

    The run checkpoints beside the output (:func:`checkpoint_path`); ``resume`` continues from
    that checkpoint when it was made with the same inputs and settings. The flow is written
    atomically and the checkpoint removed once it is.

    Args:
        inputs: from :func:`prepare_flow`.
        task: the task text (stored in the flow; Wan's prompt).
        output: FLOW.zarr to write.
        resume: continue a killed run.
        progress: callback (done, total, loss terms) per iteration.
        log: callback for one-line messages.

    Returns:
        The run: the ObjectFlow written and its figures.
    """
    import time
    from pathlib import Path

    from chord_robot.errors import InputError

    start = time.time()
    out = Path(output)
    if out.exists() and not (out.is_dir() and (out / "zarr.json").exists()):
        raise InputError(f"{out} exists and is not a flow store; choose another -o path")

    from flowgen.export import export_flow, reproduction_error
    from flowgen.model import build_model, to_device
    from flowgen.optimize import optimize

    config = inputs.config
    # with a background image behind every video the loop never renders the static objects: no mesh fit
    # (the flow keeps their sampled colours, the scan's)
    unseen = config.prior == "video" and all(g.background is not None for g in inputs.guides)
    model = to_device(build_model(inputs.scene, config, log=log, fit_static=not unseen), inputs.device)
    if log is not None and inputs.device != "cpu":
        log(f"the 4D model, its optimiser and the renders on {inputs.device} (gsplat)")
    prior = _prior(inputs, model, task, log)
    ckpt = checkpoint_path(out)
    try:
        state = optimize(model, prior, config, checkpoint_path=ckpt, resume=resume,
                         fingerprint=inputs.fingerprint, progress=progress, log=log)
    finally:
        release = getattr(prior, "release", None)  # the Wan prior's device memory
        if release is not None:
            release()
    flow = export_flow(to_device(model, "cpu"), config, task, fps=inputs.fps)
    flow.save(out)
    ckpt.unlink(missing_ok=True)
    return FlowRun(
        flow=flow,
        iterations=state.iteration,
        rollbacks=state.rollbacks,
        final_loss=state.history[-1]["total"] if state.history else float("nan"),
        seconds=time.time() - start,
        reproduction_mm={n: 1000 * reproduction_error(m) for n, m in flow.moving().items()},
        deform_grad=[h["grad_deform"] for h in state.history if h.get("stage") == 1.0],
    )


