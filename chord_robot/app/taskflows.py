"""Flow sources of the simulated tasks: where a trial's flow comes from.

    oracle  -- the task's scripted object motion.
    video   -- flowgen fitted to a rendered video of that motion (`flow_from_task_video`), as a
               user's video would be fitted.
    wan     -- distillation from Wan 2.2 (needs a GPU and its weights; refused here).
"""

from __future__ import annotations

import os

from chord_robot.app.flowconfig import flow_config
from chord_robot.app.flowrun import FlowRun, prepare_flow, run_flow
from chord_robot.app.trial import FlowSource
from chord_robot.errors import InputError

FLOW_SOURCES = ("oracle", "video", "wan")


def task_flow_source(source: str, num_frames: int) -> FlowSource:
    """The flow source called ``source`` for trials whose flows have ``num_frames`` frames
    (the video source fits a ``num_frames``-frame clip with the cpu preset's frame count)."""
    if source == "oracle":
        return lambda task: task.oracle_flow(num_frames=num_frames)
    if source == "video":
        return lambda task: flow_from_task_video(task, num_frames).flow
    if source == "wan":
        raise InputError("the wan flow source needs a GPU with the Wan 2.2 weights; it is not available on this machine")
    raise InputError(f"unknown flow source {source!r}; one of {', '.join(FLOW_SOURCES)}")


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
) -> FlowRun:
    """The ``video`` flow source of a reset sim task: flowgen fitted to the task's rendered
    oracle video, as a user's video would be fitted (DESIGN.md §6).

    Writes the task's coloured scan, a ``num_frames``-frame video of its oracle motion with the
    camera JSON, and the background image (`sim.tasks.flow_inputs.write_flow_inputs`), then runs
    `prepare_flow` and `run_flow` with the named preset on one thread. The
    flow spans the whole clip with the preset's frame count unless ``frames`` is given. The
    task is at its reset state afterwards.

    Args:
        task: a `sim.tasks.base.Task` after ``reset(seed)``.
        num_frames: frames of the rendered reference video.
        preset, frames, iterations, seed: the flowgen preset and its overrides
            (`chord_robot.app.flowconfig.flow_config`).
        output: where to keep FLOW.zarr (default: a temporary directory, removed).
        inputs_dir: where to keep the scan, video, camera and background (default: temporary).
        progress, log: passed to `run_flow`.

    Returns:
        The run (`FlowRun`): the ObjectFlow and its figures.
    """
    import tempfile
    from pathlib import Path

    import torch

    from sim.tasks.flow_inputs import write_flow_inputs

    torch.set_num_threads(1)
    config = flow_config(preset, "video", frames=frames, iters=iterations, seed=seed)
    with tempfile.TemporaryDirectory(prefix="chord-task-flow-") as tmp:
        files = write_flow_inputs(task, Path(inputs_dir) if inputs_dir else Path(tmp) / "inputs", num_frames)
        inputs = prepare_flow(files.scan, videos=[files.video], cameras=[files.camera],
                              backgrounds=[files.background], config=config, task=task.text)
        out = Path(output) if output is not None else Path(tmp) / "flow.zarr"
        return run_flow(inputs, task.text, out, progress=progress, log=log)
