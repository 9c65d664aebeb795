"""Layer 2: `chord-robot demo`, the whole chain on the shipped example (DESIGN.md §2).

The example (``examples/laptop``, made by ``examples/make_examples.py``) is the close-laptop
sim task at a fixed seed: a coloured, labelled scan, a video of the lid closing with its camera
JSON and a background image, and ``example.json`` naming the task and seed. The demo
generates the flow from the task's words with the shipped prior (or, with ``source="video"``,
fits it to the example's video as it would to a user's), plans a grasp or push and a
trajectory, executes it in PyBullet in the same task, and writes a report, with the flow
compared against the task's scripted (oracle) motion.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from chord_robot.app.flowconfig import flow_config
from chord_robot.errors import InputError

DEFAULT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "laptop"
"""The example shipped in the repository (not inside the installed packages)."""
EXAMPLE_FILES = ("example.json", "scan.ply", "scan.labels.json", "video.mp4", "camera.json", "background.png")
STAGES = ("reset", "flow", "plan", "execute", "report")
"""The demo's stages: a trial's (`chord_robot.app.trial.TRIAL_STAGES`), then the report."""


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs."""

    example: Path = DEFAULT_EXAMPLE
    """Directory of the example (see module docstring)."""
    source: Literal["generated", "video"] = "generated"
    """Where the flow comes from: "generated" (the task's words distilled from the shipped
    prior: the product's main job) or "video" (the example's video of the motion fitted by the
    video prior)."""
    preset: str | None = None
    """flowgen preset (None: the source's own: "shipped" or "cpu")."""
    iterations: int | None = None
    """Motion iterations of the flow fit (None: the preset's); the test runs fewer."""
    frames: int | None = None
    """Frames of the flow (None: the preset's)."""
    video_width: int = 480
    """Width of execution.mp4 and flow.mp4 (height 3/4 of it)."""


@dataclass(frozen=True)
class Example:
    """The example's files and the task it shows.

    Attributes:
        task: sim task name ("close-laptop").
        seed: the task's seed.
        text: the task in words.
        directory: where the files are.
    """

    task: str
    seed: int
    text: str
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


@dataclass
class DemoResult:
    """Figures of a demo run (running state, filled stage by stage).

    Attributes:
        example: the example run.
        stage_seconds: stage name -> wall seconds.
        flow_error_mm: object -> {"mean", "final"} mm against the task's oracle motion.
        flow_frames, flow_iterations: size of the fit.
        plan_mode, plan_object, plan_steps, plan_duration: the plan (None if planning failed).
        planning_seconds: the planner's time.
        failure: why the task failed before execution (None if it got that far).
        success, lid_deg: the task's verdict and metric after execution (the lid's angle in
            degrees for close-laptop).
    """

    example: Example
    stage_seconds: dict[str, float] = field(default_factory=dict)
    flow_error_mm: dict[str, dict[str, float]] = field(default_factory=dict)
    flow_frames: int = 0
    flow_iterations: int = 0
    plan_mode: str | None = None
    plan_object: str | None = None
    plan_steps: int = 0
    plan_duration: float = 0.0
    planning_seconds: float = float("nan")
    failure: str | None = None
    success: bool = False
    lid_deg: float = float("nan")


def load_example(directory: str | os.PathLike[str]) -> Example:
    """Read ``example.json`` and check the example's files exist (InputError names what is missing)."""
    d = Path(directory)
    missing = [n for n in EXAMPLE_FILES if not (d / n).is_file()]
    if missing:
        raise InputError(
            f"the demo example {d} lacks {', '.join(missing)}; run `python examples/make_examples.py` "
            "in the repository, or pass --example DIR"
        )
    try:
        meta = json.loads((d / "example.json").read_text())
        return Example(str(meta["task"]), int(meta["seed"]), str(meta["text"]), d)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{d / 'example.json'} is not a demo example ({e})") from None


def flow_error_mm(flow, truth) -> dict[str, dict[str, float]]:
    """Per moving object of ``truth``: the mean distance (mm) between ``flow`` evaluated at the
    truth's canonical points (its control-point skinning) and the truth's trajectories, over
    all frames ("mean") and at the last frame ("final"). Both flows need the same frames."""
    assert flow.num_frames == truth.num_frames, (flow.num_frames, truth.num_frames)
    out = {}
    for name, motion in truth.moving().items():
        if name not in flow.objects:
            raise InputError(f"the flow has no object {name!r} (objects: {', '.join(flow.objects)})")
        err = np.linalg.norm(flow.objects[name].evaluate(motion.points) - motion.trajectories, axis=-1)  # (T, N)
        out[name] = {"mean": 1000 * float(err.mean()), "final": 1000 * float(err[-1].mean())}
    return out


def plot_trajectory(path: Path, plan, flow) -> None:
    """PNG: the end effector's path (segments coloured) with the manipulated object's points at
    the first and last flow frames, in a 3D view; and its position over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chord_robot.atomic import atomic_path

    fig = plt.figure(figsize=(10, 4.2), dpi=100)
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    motion = flow.objects[plan.object]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(motion.points), min(400, len(motion.points)), replace=False)
    for t, colour in ((0, "0.6"), (-1, "tab:purple")):
        p = motion.trajectories[t][pick]
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=2, c=colour, label=f"{plan.object} frame {t % flow.num_frames}")
    colours = {"approach": "tab:blue", "manipulate": "tab:red", "retreat": "tab:green"}
    for name, (a, b) in plan.segments.items():
        xyz = plan.ee_poses[a : b + 1, 4:]
        ax.plot(xyz[:, 0], xyz[:, 1], xyz[:, 2], color=colours.get(name, "k"), label=name)
    g = plan.grasp_pose[4:]
    ax.scatter([g[0]], [g[1]], [g[2]], marker="*", s=80, c="k", label=f"{plan.mode} pose")
    shown = np.concatenate([motion.trajectories[[0, -1]][:, pick].reshape(-1, 3), plan.ee_poses[:, 4:]])
    ax.set_box_aspect(np.maximum(np.ptp(shown, axis=0), 1e-3))  # metres the same along every axis
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("end-effector path and object")
    ax2 = fig.add_subplot(1, 2, 2)
    for i, axis in enumerate("xyz"):
        ax2.plot(plan.times, plan.ee_poses[:, 4 + i], label=axis)
    a, b = plan.segments["manipulate"]
    ax2.axvspan(plan.times[a], plan.times[b], color="tab:red", alpha=0.1, label="manipulate")
    ax2.set_xlabel("time (s)")
    ax2.set_ylabel("TCP position (m)")
    ax2.legend(fontsize=7)
    ax2.set_title("TCP position over time")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def report_markdown(result: DemoResult, config: DemoConfig) -> str:
    """The demo's report.md."""
    ex = result.example
    verdict = "success" if result.success else "FAILED"
    lines = [
        f"# chord-robot demo: {ex.text} ({ex.task}, seed {ex.seed})",
        "",
        f"**Result: {verdict}**: "
        + (f"lid at {round(result.lid_deg, 1) + 0.0:.1f} degrees (success below 15)." if ex.task == "close-laptop"
           else f"task metric {result.lid_deg:.3f}.")
        + (f" Failed before execution: {result.failure}." if result.failure else ""),
        "",
        (f"Chain: {'words -> flow distilled from the shipped prior' if config.source == 'generated' else 'scan + video -> flow fitted by the video prior'} "
         f"({result.flow_iterations} motion iterations, {result.flow_frames} frames) -> grasp/push + trajectory "
         "(PyRoki) -> PyBullet execution."),
        "",
        ("## Flow against the task's scripted motion (the oracle)" if config.source == "generated"
         else "## Flow error against the example's known motion (the task's oracle)"),
        "",
        "| object | mean over frames (mm) | final frame (mm) |",
        "|---|---|---|",
    ]
    for name, e in result.flow_error_mm.items():
        lines.append(f"| {name} | {e['mean']:.1f} | {e['final']:.1f} |")
    lines += ["", "## Plan", ""]
    if result.plan_mode is not None:
        lines += [
            (f"- mode: {result.plan_mode} on `{result.plan_object}`, {result.plan_steps} steps, "
             f"{result.plan_duration:.1f} s of motion"),
            f"- planning time: {result.planning_seconds:.1f} s",
        ]
    else:
        lines.append(f"- no plan ({result.failure})")
    lines += ["", "## Stage times", "", "| stage | seconds |", "|---|---|"]
    for stage, s in result.stage_seconds.items():
        lines.append(f"| {stage} | {s:.1f} |")
    lines.append(f"| total | {sum(result.stage_seconds.values()):.1f} |")
    lines += ["", ("Files: flow.zarr, plan.zarr, flow.mp4 (generated object motion), execution.mp4 "
                   "(robot in PyBullet), trajectory.png."), ""]
    return "\n".join(lines)


def run_demo(
    out_dir: str | os.PathLike[str],
    config: DemoConfig | None = None,
    stage: Callable[[str], None] | None = None,
    flow_progress: Callable[[int, int, dict], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo into ``out_dir``; returns its figures (``success`` is the task's verdict).

    Args:
        out_dir: directory for flow.zarr, plan.zarr, flow.mp4, execution.mp4, report.md,
            trajectory.png (created).
        config: see DemoConfig.
        stage: called with each stage's name as it starts.
        flow_progress: run_flow's per-iteration callback.
        log: one-line messages.
    """
    config = config or DemoConfig()
    example = load_example(config.example)  # before the heavy imports: a bad example is one line

    import warnings

    import torch

    from chord_robot.app.flowrun import prepare_flow, run_flow
    from chord_robot.app.trial import run_trial
    from chord_robot.app.views.videos import render_flow
    from chord_robot.camera import load_cameras
    from sim.render import write_mp4

    # imageio starts ffmpeg by fork after JAX has threads; the child only execs ffmpeg
    warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
    out = Path(out_dir)
    result = DemoResult(example)
    torch.set_num_threads(1)
    if config.source == "generated":
        from chord_robot.app.flowconfig import shipped_model

        prior, model, preset = "wan", shipped_model(example.text), config.preset or "shipped"
        guides: dict = {}
    elif config.source == "video":
        prior, model, preset = "video", None, config.preset or "cpu"
        guides = {"videos": [example.path("video.mp4")], "cameras": [example.path("camera.json")],
                  "backgrounds": [example.path("background.png")]}
    else:
        raise InputError(f"unknown demo source {config.source!r}; one of generated, video")
    fconfig = flow_config(preset, prior, model=model, frames=config.frames, iters=config.iterations)

    def example_flow(task):
        """The flow source: the task's words distilled from the shipped prior, or the example's
        video fitted as a user's would be (written to flow.zarr); and its error against the
        task's scripted motion."""
        inputs = prepare_flow(example.path("scan.ply"), config=fconfig, task=example.text, model=model, **guides)
        for note in inputs.notes:
            if log is not None:
                log(note)
        out.mkdir(parents=True, exist_ok=True)  # the inputs are sound: outputs from here on
        flow = run_flow(inputs, example.text, out / "flow.zarr", progress=flow_progress, log=log).flow
        result.flow_frames, result.flow_iterations = flow.num_frames, fconfig.iterations
        result.flow_error_mm = flow_error_mm(flow, task.oracle_flow(num_frames=flow.num_frames))
        return flow

    width = config.video_width
    trial = run_trial(example.task, example.seed, example_flow, record=out / "execution.mp4",
                      video_size=(width, width * 3 // 4), plan_path=out / "plan.zarr", stage=stage, log=log)
    result.stage_seconds.update(trial.times)
    result.success, result.lid_deg, result.failure = trial.success, trial.metric, trial.failure
    plan, flow = trial.plan, trial.flow
    if plan is not None:
        result.plan_mode, result.plan_object = plan.mode, plan.object
        result.plan_steps, result.plan_duration = plan.num_steps, float(plan.times[-1])
        result.planning_seconds = trial.planning_seconds

    if stage:
        stage("report")
    t0 = time.perf_counter()
    if flow is not None:
        camera = load_cameras(example.path("camera.json"))[0]
        write_mp4(out / "flow.mp4", render_flow(flow, camera), fps=flow.fps)  # the example video's view
    if plan is not None:
        plot_trajectory(out / "trajectory.png", plan, flow)
    result.stage_seconds["report"] = time.perf_counter() - t0
    from chord_robot.atomic import write_text_atomic

    write_text_atomic(out / "report.md", report_markdown(result, config))
    return result
