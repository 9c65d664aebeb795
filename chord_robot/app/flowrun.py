"""Layer 2: wires the layer-1 packages into the user-facing operations the CLI calls.

Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from chord_robot.scan import MAX_POINTS, read_scan, scene_from_labels
from chord_robot.scene import Scene


def load_scene(path: str | os.PathLike[str], up: str = "z", scale: float = 1.0, max_points: int = MAX_POINTS) -> Scene:
    """Load a scan and split it into named objects (labels if present, else geometry)."""
    raw = read_scan(path, up=up, scale=scale, max_points=max_points)
    if raw.labels is not None:
        return scene_from_labels(raw, str(path))
    from flowgen.segment import segment_scan

    return segment_scan(raw, str(path))


# --------------------------------------------------------------------------- flow generation


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


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"64x48"``) -> (width, height); InputError otherwise."""
    from chord_robot.errors import InputError

    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 64x48, got {text!r}")
    return int(parts[0]), int(parts[1])


def flow_config(preset: str = "cpu", prior: str = "video", frames: int | None = None,
                iterations: int | None = None, seed: int | None = None, *, variant: str | None = None,
                size: tuple[int, int] | None = None, tau_schedule: str | None = None,
                store: str | None = None, rigid_parts: bool = False):
    """The named `flowgen` preset with the CLI's overrides applied.

    ``iterations`` sets the motion iterations; the appearance stage scales with it (at least
    one iteration when the preset has one). ``variant`` ("i2v-a14b" or "ti2v-5b") and ``size``
    ((width, height) of the renders) apply to the wan prior; whether the frames and size fit
    the model is checked against its weights in :func:`prepare_flow`. ``tau_schedule``
    ("annealed" | "uniform", wan only) and ``store`` ("fenwick" | "per-frame") select the
    paper's ablations. ``rigid_parts`` turns on the part-rigidity regulariser
    (`flowgen.config.rigid_parts`: for scenes of articulated rigid parts). Raises InputError
    for an unknown preset or a value out of range.
    """
    import dataclasses

    from chord_robot.errors import InputError
    from flowgen.config import DEFORMATION_STORES, PRESETS, wan_settings
    from flowgen.config import rigid_parts as with_rigid_parts
    from flowgen.priors.wan import TAU_SCHEDULES, VARIANTS

    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    if prior not in ("video", "wan"):
        raise InputError(f"unknown prior {prior!r}; one of video, wan")
    if prior != "wan" and (variant is not None or size is not None):
        raise InputError("--variant and --size apply to --prior wan (the video prior renders at its videos' size)")
    config = PRESETS[preset](prior)
    changes: dict = {}
    if frames is not None:
        if frames < 2:
            raise InputError(f"--frames must be at least 2 (frame 0 is the scan's pose), got {frames}")
        changes["num_frames"] = frames
    if iterations is not None:
        if iterations < 1:
            raise InputError(f"--iters must be at least 1, got {iterations}")
        changes["iterations"] = iterations
        if config.appearance_iterations:
            changes["appearance_iterations"] = max(
                1, round(config.appearance_iterations * iterations / config.iterations))
        changes["checkpoint_every"] = max(1, min(config.checkpoint_every, iterations // 4 or 1))
        if prior == "wan" and config.split_iteration is not None:  # the preset's share of the run
            changes["split_iteration"] = max(1, round(config.split_iteration * iterations / config.iterations))
    if seed is not None:
        changes["seed"] = seed
    if variant is not None:
        if variant not in VARIANTS:
            raise InputError(f"unknown --variant {variant!r}; one of {', '.join(VARIANTS)}")
        kept = {f: getattr(config.wan, f) for f in ("guidance_start", "guidance_end", "grad_scale", "background",
                                                    "cameras", "tau_schedule")}  # the preset's, not the variant's
        changes["wan"] = dataclasses.replace(wan_settings(variant, config.views_per_iteration), **kept)
    if size is not None:
        changes["render_size"] = size
    if tau_schedule is not None:
        if prior != "wan":
            raise InputError("--tau-schedule applies to --prior wan (the video prior has no noise levels)")
        if tau_schedule not in TAU_SCHEDULES:
            raise InputError(f"unknown --tau-schedule {tau_schedule!r}; one of {', '.join(TAU_SCHEDULES)}")
        changes["wan"] = dataclasses.replace(changes.get("wan", config.wan), tau_schedule=tau_schedule)
    if store is not None:
        if store not in DEFORMATION_STORES:
            raise InputError(f"unknown --store {store!r}; one of {', '.join(DEFORMATION_STORES)}")
        changes["deformation_store"] = store
    config = dataclasses.replace(config, **changes)
    return with_rigid_parts(config) if rigid_parts else config


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
    """

    scene: Scene
    guides: tuple
    config: object
    fingerprint: str
    fps: float
    model_dir: object = None
    notes: tuple[str, ...] = ()


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


def _model_digest(root) -> str:
    """The Wan weights' identity for the fingerprint: their path and JSON configs (hashing the
    weights themselves would read tens of GB)."""
    import hashlib

    h = hashlib.sha256(str(root).encode())
    for q in sorted(root.rglob("*.json")):
        h.update(str(q.relative_to(root)).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


def _cpu_flops_per_second(seconds: float = 0.1) -> float:
    """This CPU's float32 matrix-product rate, measured for ``seconds`` (for run-time estimates)."""
    import time

    import torch

    a, b = torch.randn(256, 256), torch.randn(256, 256)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return count * 2 * 256**3 / (time.perf_counter() - start)


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s" if seconds >= 1 else "under a second"


def _wan_inputs(config, model, allow_cpu: bool):
    """Check the Wan weights and the run's size against them, and the device: (config with
    ``render_size`` resolved, weights directory, notes). WeightsError or InputError (exit 2)
    when the weights are missing, the size does not fit, or there is no CUDA GPU and
    ``allow_cpu`` is not given (the message estimates the CPU time)."""
    import dataclasses

    import torch

    from chord_robot.errors import InputError
    from flowgen.priors.wan import model_shape, resolve_model_dir

    variant = config.wan.variant
    root = resolve_model_dir(model, variant)
    shape = model_shape(root, variant)
    width, height = config.render_size or shape.fit_size(config.max_side)
    shape.check(config.num_frames, height, width)
    config = dataclasses.replace(config, render_size=(width, height))
    notes: list[str] = []
    if not torch.cuda.is_available():
        flops = shape.sds_flops(config.num_frames, height, width, config.wan.max_sequence_length)
        seconds = flops * config.views_per_iteration * config.iterations / _cpu_flops_per_second()
        text = (f"no CUDA GPU: {shape.spec.label} would run on the CPU, estimated at least "
                f"{_duration(seconds)} for {config.iterations} iterations x {config.views_per_iteration} "
                f"view(s) at {width}x{height}x{config.num_frames} (its transformer alone: "
                f"{flops / 1e12:.3g} TFLOP per view)")
        if not allow_cpu:
            raise InputError(f"{text}; pass --allow-cpu to run anyway, or use a GPU")
        notes.append(f"warning: {text}")
    return config, root, tuple(notes)


def prepare_flow(
    scan: str | os.PathLike[str],
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
) -> FlowInputs:
    """Load and check every input of a flow run before any optimisation.

    Video prior: a video whose size or frame count does not fit its camera or the run, or a
    camera that is not rigid, raises InputError (exit 2). Wan prior: missing weights
    (WeightsError, saying where they are expected), frames or a size the model cannot take,
    or no CUDA GPU without ``allow_cpu``. Both: a bad scan, a scene with nothing to move, or a
    ``continue_from`` flow of another scene.

    Args:
        scan: the scan.
        videos, cameras, backgrounds: the video prior's guides (one camera per video).
        config: the run's FlowConfig (default: the cpu preset of the video prior).
        task: the task text.
        up, scale: the scan's axis and units.
        model: the Wan weights directory (None: the local Hugging Face cache).
        continue_from: a previous FLOW.zarr whose last frame is this run's rest pose.
        allow_cpu: run the wan prior without a CUDA GPU (after a warning).
    """
    import json
    from dataclasses import asdict
    from pathlib import Path

    from chord_robot.errors import InputError

    if config is None:
        config = flow_config()
    scene = load_scene(scan, up=up, scale=scale)
    if not scene.movable():
        raise InputError(
            f"{scan} has no movable object (every object is static: {', '.join(scene.objects)}); "
            "label the object to animate, or give it a name other than a support's"
        )
    chained: tuple[str, ...] = ()
    if continue_from is not None:
        scene = continue_scene(scene, continue_from)
        chained = scene.notes[-1:]
    inputs = [scan, *([continue_from] if continue_from is not None else [])]
    if config.prior == "wan":
        if videos or cameras or backgrounds:
            raise InputError("--video, --camera and --background guide the video prior; the wan prior "
                             "samples its own cameras (drop them, or pass --prior video)")
        from flowgen.priors.wan import VARIANTS

        config, root, notes = _wan_inputs(config, model, allow_cpu)
        digests = [_file_digest(p) for p in inputs] + [_model_digest(root)]
        guides: tuple = ()
        fps = VARIANTS[config.wan.variant].fps
    else:
        from flowgen.priors.video_io import load_guides

        guides = tuple(load_guides([Path(v) for v in videos], [Path(c) for c in cameras], config.num_frames,
                                   config.max_side, [Path(b) for b in backgrounds] if backgrounds else None))
        digests = [_file_digest(p) for p in [*inputs, *videos, *cameras, *(backgrounds or [])]]
        root, notes, fps = None, (), _flow_fps(videos[0], config.num_frames)
    fingerprint = json.dumps({"config": asdict(config), "task": task, "up": up, "scale": scale,
                              "inputs": digests}, sort_keys=True, default=str)
    return FlowInputs(scene, guides, config, fingerprint, fps, root, chained + notes)


def _prior(inputs: FlowInputs, model, task: str, log):
    """The loop's prior of a run: the videos, or Wan loaded from its weights (SDS)."""
    config = inputs.config
    if config.prior == "video":
        from flowgen.priors.video import VideoPrior

        return VideoPrior(inputs.guides, config.photometric_ssim, config.silhouette)
    import torch

    from flowgen.priors.sds_prior import SdsPrior
    from flowgen.priors.wan import load_wan_prior

    wan = load_wan_prior(inputs.model_dir, config.wan.variant, prompt=task, config=config.wan, log=log)
    targets = torch.cat([obj.rest.means for obj in model.moving]).numpy()
    width, height = config.render_size
    prior = SdsPrior(wan, targets, config.num_frames, width, height, config.views_per_iteration,
                     config.iterations, config.wan.cameras, config.seed)
    if log is not None:
        log(prior.plan())
    return prior


def generate_flow(
    inputs: FlowInputs,
    task: str,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress=None,
    log=None,
):
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
        (flow, summary): the ObjectFlow written and a dict of run figures, among them
        ``deform_grad`` (the norm of the Fenwick stores' gradient at every motion iteration).
    """
    import time
    from pathlib import Path

    from chord_robot.errors import InputError

    start = time.time()
    out = Path(output)
    if out.exists() and not (out.is_dir() and (out / "zarr.json").exists()):
        raise InputError(f"{out} exists and is not a flow store; choose another -o path")

    from flowgen.export import export_flow, reproduction_error
    from flowgen.model import build_model
    from flowgen.optimize import optimize

    config = inputs.config
    model = build_model(inputs.scene, config, log=log)
    prior = _prior(inputs, model, task, log)
    ckpt = checkpoint_path(out)
    try:
        state = optimize(model, prior, config, checkpoint_path=ckpt, resume=resume,
                         fingerprint=inputs.fingerprint, progress=progress, log=log)
    finally:
        release = getattr(prior, "release", None)  # the Wan prior's device memory
        if release is not None:
            release()
    flow = export_flow(model, config, task, fps=inputs.fps)
    flow.save(out)
    ckpt.unlink(missing_ok=True)
    summary = {
        "iterations": state.iteration,
        "rollbacks": state.rollbacks,
        "final_loss": state.history[-1]["total"] if state.history else float("nan"),
        "seconds": time.time() - start,
        "reproduction_mm": {n: 1000 * reproduction_error(m) for n, m in flow.moving().items()},
        "deform_grad": [h["grad_deform"] for h in state.history if h.get("stage") == 1.0],
    }
    return flow, summary


def render_flow(flow, camera=None, width: int = 480, height: int = 360, background=(1.0, 1.0, 1.0)):
    """(T, H, W, 3) uint8 frames of a flow's points rendered as small Gaussians.

    Args:
        flow: an ObjectFlow.
        camera: a `Camera`, or None for a view from the front, above, framing every object.
        width, height: image size when the camera is chosen automatically.
        background: RGB in [0, 1].
    """
    import numpy as np

    from chord_robot.camera import Camera
    from flowgen.splats import point_splats, render_splats

    pts = np.concatenate([m.points for m in flow.objects.values()])
    if camera is None:
        lo, hi = pts.min(0), pts.max(0)
        centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
        direction = np.array([0.45, -0.75, 0.5]) / np.linalg.norm([0.45, -0.75, 0.5])
        distance = max(radius, 1e-3) / np.tan(np.radians(40.0) / 2) * 1.1
        camera = Camera.look_at(centre + distance * direction, centre, width, height, fov_y_deg=40.0)
    import torch

    bg = torch.tensor(background, dtype=torch.float32).expand(camera.height, camera.width, 3).contiguous()
    frames = []
    with torch.no_grad():
        for t in range(flow.num_frames):
            splats = point_splats(flow, t)
            image = render_splats(splats, camera, bg)
            frames.append((image.features[..., :3].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    return np.stack(frames)


# --------------------------------------------------------------------------- flows of sim tasks


def flow_from_task_video(
    task,
    num_frames: int = 41,
    *,
    preset: str = "cpu",
    frames: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    output: str | os.PathLike[str] | None = None,
    inputs_dir: str | os.PathLike[str] | None = None,
    progress=None,
    log=None,
):
    """The ``video`` flow source of a reset sim task: flowgen fitted to the task's rendered
    oracle video, as a user's video would be fitted (DESIGN.md §6).

    Writes the task's coloured scan, a ``num_frames``-frame video of its oracle motion with the
    camera JSON, and the background image (`sim.tasks.base.write_flow_inputs`), then runs
    :func:`prepare_flow` and :func:`generate_flow` with the named preset on one thread. The
    flow spans the whole clip with the preset's frame count unless ``frames`` is given. The
    task is at its reset state afterwards.

    Args:
        task: a `sim.tasks.base.Task` after ``reset(seed)``.
        num_frames: frames of the rendered reference video.
        preset, frames, iterations, seed: see :func:`flow_config`.
        output: where to keep FLOW.zarr (default: a temporary directory, removed).
        inputs_dir: where to keep the scan, video, camera and background (default: temporary).
        progress, log: passed to :func:`generate_flow`.

    Returns:
        (flow, summary): the ObjectFlow and :func:`generate_flow`'s run figures.
    """
    import tempfile
    from pathlib import Path

    import torch

    from sim.tasks.base import write_flow_inputs

    torch.set_num_threads(1)
    config = flow_config(preset, "video", frames=frames, iterations=iterations, seed=seed)
    with tempfile.TemporaryDirectory(prefix="chord-task-flow-") as tmp:
        files = write_flow_inputs(task, Path(inputs_dir) if inputs_dir else Path(tmp) / "inputs", num_frames)
        inputs = prepare_flow(files.scan, videos=[files.video], cameras=[files.camera],
                              backgrounds=[files.background], config=config, task=task.text)
        out = Path(output) if output is not None else Path(tmp) / "flow.zarr"
        return generate_flow(inputs, task.text, out, progress=progress, log=log)
