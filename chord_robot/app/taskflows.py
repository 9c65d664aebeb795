"""Flow sources of the simulated tasks: where a trial's flow comes from.

    oracle  -- the task's scripted object motion.
    video   -- flowgen fitted to a rendered video of that motion (`flow_from_task_video`), as a
               user's video would be fitted: the camera is chosen from the task's scan alone
               (`chord-robot render --scan --camera auto`), no background image.
    video-privileged -- the same with help no user has: the camera framed from the scripted
               motion itself and an object-free background image.
    video-baseline -- the paper's baseline (`flow_from_task_baseline`): the first frame rendered
               from the task's scan, a video sampled from the shipped prior by diffusers'
               `WanImageToVideoPipeline`, lifted by the video prior.
    chord   -- the paper's method (`flow_from_task_words`): the task's scan and its words,
               distilled from the shipped prior (or Wan 2.2 weights given by ``model``); no
               scripted motion, camera or background reaches the flow.

Wan 2.2 on a GPU is the chord source with ``model`` set to its weights.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chord_robot.app.flowconfig import flow_config
from chord_robot.app.flowrun import FlowRun, prepare_flow, run_flow
from chord_robot.app.trial import FlowSource
from chord_robot.errors import InputError

FLOW_SOURCES = ("oracle", "video", "video-privileged", "chord", "video-baseline")


def task_flow_source(source: str, num_frames: int, **overrides) -> FlowSource:
    """The flow source called ``source`` for trials whose flows have ``num_frames`` frames
    (the video source fits a ``num_frames``-frame clip with the cpu preset's frame count; the
    chord source has its preset's). ``overrides`` (frames, iterations, seed) shrink the
    video and chord runs (tests)."""
    if source == "oracle":
        return lambda task: task.oracle_flow(num_frames=num_frames)
    if source in ("video", "video-privileged"):
        privileged = source == "video-privileged"
        return lambda task: flow_from_task_video(task, num_frames, privileged=privileged, **overrides).flow
    if source == "chord":
        return lambda task: flow_from_task_words(task, **overrides).flow
    if source == "video-baseline":
        return lambda task: flow_from_task_baseline(task, **overrides).flow
    if source == "wan":
        raise InputError("the wan flow source is the chord source with Wan 2.2 weights: "
                         "--flow-source chord --model WAN_DIR (needs a CUDA GPU)")
    raise InputError(f"unknown flow source {source!r}; one of {', '.join(FLOW_SOURCES)}")


def flow_from_task_video(
    task,
    num_frames: int = 41,
    *,
    privileged: bool = False,
    preset: str = "cpu",
    frames: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    output: str | os.PathLike[str] | None = None,
    inputs_dir: str | os.PathLike[str] | None = None,
    progress=None,
    log=None,
) -> FlowRun:
    """The ``video`` flow source of a reset sim task: flowgen fitted to the task's rendered
    oracle video, as a user's video would be fitted (DESIGN.md §6).

    Writes the task's coloured scan and a ``num_frames``-frame video of its oracle motion with the
    camera JSON (`sim.tasks.flow_inputs.write_flow_inputs`), then runs `prepare_flow` and
    `run_flow` with the named preset on one thread. The camera is chosen from the scan alone
    and no background image is given, as for a user's video, unless ``privileged``: then the
    camera is framed from the scripted motion and the object-free background is given. The
    flow spans the whole clip with the preset's frame count unless ``frames`` is given. The
    task is at its reset state afterwards.

    Args:
        task: a `sim.tasks.base.Task` after ``reset(seed)``.
        num_frames: frames of the rendered reference video.
        privileged: the camera and background only the simulator knows.
        preset, frames, iterations, seed: the flowgen preset and its overrides
            (`chord_robot.app.flowconfig.flow_config`).
        output: where to keep FLOW.zarr (default: a temporary directory, removed).
        inputs_dir: where to keep the scan, video, camera and background (default: temporary).
        progress, log: passed to `run_flow`.

    Returns:
        The run (`FlowRun`): the ObjectFlow and its figures.
    """
    import torch

    from sim.tasks.flow_inputs import write_flow_inputs

    torch.set_num_threads(1)
    config = flow_config(preset, "video", frames=frames, iters=iterations, seed=seed)
    with _workdir("chord-task-flow-", inputs_dir) as (folder, tmp):
        camera = None
        if not privileged:  # the view a user would render from the scan (`render --scan --camera auto`)
            from chord_robot.app.scenes import load_scene
            from chord_robot.app.views.scan_render import auto_camera
            from sim.tasks.flow_inputs import write_scan

            camera = auto_camera(load_scene(write_scan(task, folder / "scan.ply")), 320, 240)
        files = write_flow_inputs(task, folder, num_frames, camera=camera, background=privileged)
        inputs = prepare_flow(files.scan, videos=[files.video], cameras=[files.camera],
                              backgrounds=[files.background] if privileged else None, config=config,
                              task=task.text)
        return run_flow(inputs, task.text, Path(output or tmp / "flow.zarr"), progress=progress, log=log)


def flow_from_task_words(
    task,
    *,
    model: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    frames: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    adjust: Callable[[Any], Any] | None = None,
    output: str | os.PathLike[str] | None = None,
    inputs_dir: str | os.PathLike[str] | None = None,
    progress=None,
    log=None,
) -> FlowRun:
    """The ``chord`` flow source of a reset sim task: the paper's method. The task's scene is
    written as a labelled scan (`sim.tasks.flow_inputs.write_scan`: what a scanner would give)
    and its words are distilled from the shipped prior (``model`` None) or the given Wan 2.2
    weights, as `chord-robot flow --scan SCAN --task TEXT` would; nothing of the scripted
    motion is read.

    Args:
        task: a `sim.tasks.base.Task` after ``reset(seed)``.
        model: Wan 2.2 weights (None: the shipped prior).
        preset, frames, iterations, seed: the preset (default: the model's own, as
            `chord_robot.app.flowconfig.choose_prior` picks it) and its overrides.
        adjust: changes the preset's `flowgen.config.FlowConfig` before the run (settings the
            CLI does not expose, e.g. a regulariser's weight; `scripts/chord_sweep.py`), its
            fields winning over what the task's motion sets (`prepare_flow`).
        output: where to keep FLOW.zarr (default: a temporary directory, removed).
        inputs_dir: where to keep the scan (default: temporary).
        progress, log: passed to `run_flow`.

    Raises:
        TaskFailure: the prior knows no motion for the task's words (the shipped prior knows
            a few; see its model card): the trial fails at its flow stage.
    """
    import torch

    from chord_robot.app.flowconfig import choose_prior
    from flowgen.priors import shipped
    from sim.tasks.flow_inputs import write_scan

    choice = choose_prior("wan", model if model is not None else _shipped_model(task), preset, False)
    if shipped.trained(choice.model):
        _known_motion(task, choice.model)
    torch.set_num_threads(1)
    config = flow_config(choice.preset, "wan", model=choice.model, frames=frames, iters=iterations, seed=seed)
    with _workdir("chord-task-words-", inputs_dir) as (folder, tmp):
        scan = write_scan(task, folder / "scan.ply")
        inputs = prepare_flow(scan, config=config, task=task.text, model=choice.model, adjust=adjust)
        return run_flow(inputs, task.text, Path(output or tmp / "flow.zarr"), progress=progress, log=log)


@contextmanager
def _workdir(prefix: str, inputs_dir: str | os.PathLike[str] | None) -> Iterator[tuple[Path, Path]]:
    """(the folder for a trial's flow inputs, a temporary folder removed afterwards); the
    inputs go to ``inputs_dir`` when given, else into the temporary folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(inputs_dir) if inputs_dir else Path(tmp) / "inputs"
        folder.mkdir(parents=True, exist_ok=True)
        yield folder, Path(tmp)


def _shipped_model(task):
    """The shipped model that knows the task's motion (`chord_robot.app.flowconfig.shipped_model`);
    TaskFailure when none does."""
    from chord_robot.app.flowconfig import shipped_model
    from chord_robot.errors import TaskFailure

    try:
        return shipped_model(task.text)
    except InputError as e:
        raise TaskFailure(str(e)) from None


def _known_motion(task, model):
    """The shipped prior's motion (`TaskMatch`) for the task's words; TaskFailure when it has
    none."""
    from chord_robot.app.tasktext import match_task
    from chord_robot.errors import TaskFailure
    from flowgen.priors import shipped

    try:
        return match_task(task.text, shipped.prompts(model))
    except InputError as e:
        raise TaskFailure(str(e)) from None


def flow_from_task_baseline(
    task,
    *,
    model: str | os.PathLike[str] | None = None,
    frames: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    steps: int = 30,
    output: str | os.PathLike[str] | None = None,
    inputs_dir: str | os.PathLike[str] | None = None,
    progress=None,
    log=None,
) -> FlowRun:
    """The ``video-baseline`` flow source of a reset sim task: the paper's baseline, flow lifted
    from a generated video. From the task's scan alone: the first frame and its camera
    (`chord_robot.app.views.scan_render`, at the prior's size, over its white backdrop), a
    video sampled from the same prior as the chord source (the shipped prior, or ``model``)
    by diffusers' `WanImageToVideoPipeline` for the task's words, and the static scene
    rendered from the scan as the background; then the video prior lifts the video to object
    flow (cpu preset at the video's frame count), the task's named object moving.

    Args:
        task: a `sim.tasks.base.Task` after ``reset(seed)``; its seed seeds the sampling.
        model: a Wan 2.2 I2V diffusers directory (None: the shipped prior).
        frames, iterations, seed: overrides of the lifting run.
        steps: denoising steps of the sampler.
        output, inputs_dir: where to keep FLOW.zarr and the inputs (first.png, first.json,
            video.mp4, background.png, scan.ply; default: a temporary directory).
        progress, log: passed to `run_flow`.

    Raises:
        TaskFailure: the shipped prior knows no motion for the task's words.
    """
    import imageio.v3 as iio
    import torch

    from chord_robot.app.scenes import load_scene
    from chord_robot.app.tasktext import named_object
    from chord_robot.app.views.scan_render import auto_camera, render_scene
    from chord_robot.camera import save_cameras
    from flowgen.priors import shipped
    from flowgen.priors.train_checks import sample_videos
    from flowgen.priors.wan import VARIANTS
    from sim.render import write_mp4
    from sim.tasks.flow_inputs import write_scan

    model = Path(model) if model is not None else _shipped_model(task)
    motion = _known_motion(task, model) if shipped.trained(model) else None
    prompt = motion.prompt if motion else task.text
    torch.set_num_threads(1)
    wan = flow_config("shipped" if shipped.trained(model) else "cpu", "wan", model=model)
    width, height = wan.render_size or (wan.max_side, wan.max_side)
    with _workdir("chord-task-baseline-", inputs_dir) as (folder, tmp):
        scan = write_scan(task, folder / "scan.ply")
        scene = load_scene(scan)
        camera = auto_camera(scene, width, height)
        backdrop = wan.wan.background or (1.0, 1.0, 1.0)
        first = render_scene(scene, camera, backdrop=backdrop)
        video = sample_videos(model, first[None], [prompt], seed=int(task.seed), steps=steps,
                              num_frames=wan.num_frames)[0]
        files = {name: folder / name for name in ("first.png", "first.json", "video.mp4", "background.png")}
        iio.imwrite(files["first.png"], first)
        save_cameras(files["first.json"], camera)
        write_mp4(files["video.mp4"], video, fps=VARIANTS[wan.wan.variant].fps)
        iio.imwrite(files["background.png"], render_scene(scene, camera, backdrop=backdrop, static_only=True))
        config = flow_config("cpu", "video", frames=frames or wan.num_frames, iters=iterations, seed=seed)
        moving = named_object(scene, motion) if motion else None
        inputs = prepare_flow(scan, videos=[files["video.mp4"]], cameras=[files["first.json"]],
                              backgrounds=[files["background.png"]], config=config, task=task.text,
                              object_name=moving)
        return run_flow(inputs, task.text, Path(output or tmp / "flow.zarr"), progress=progress, log=log)
