"""Layer 2: the simulated evaluation suite (`chord-robot eval`).

Each trial (`chord_robot.app.trial.run_trial`): reset the task with its seed, get a flow from
the chosen source (`chord_robot.app.taskflows`), plan a grasp and a trajectory, execute it in
PyBullet with real contacts, and ask the task whether it succeeded. Trials run where
`chord_robot.app.executors` puts them: this process, a local pool of spawned worker processes
(JAX does not survive fork), or a Ray cluster; each worker keeps one planner so the trajectory
solver compiles once per process. A trial's result depends only on its task and seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chord_robot.app.executors import Executor, JobCrash, run_jobs
from chord_robot.app.results import TrialResult
from chord_robot.app.taskflows import FLOW_SOURCES, task_flow_source
from chord_robot.errors import InputError, TaskFailure


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation runs."""

    suite: str = "paper"
    """The task suite ("paper": the paper's real-robot tasks plus fold-fabric)."""
    tasks: tuple[str, ...] = ()
    """Tasks to run; empty means the whole suite."""
    flow_source: str = "oracle"
    """Where flows come from (`chord_robot.app.taskflows`): "oracle" (scripted motion),
    "video" (flowgen fitted to the task's rendered video as a user's would be), "video-privileged"
    (the same with the simulator's camera framing and object-free background), "chord" (the task's words
    distilled from the shipped prior, or from Wan 2.2 weights given as ``model``)."""
    trials: int = 8
    """Trials per task; trial i uses seed ``seed + i``."""
    seed: int = 0
    """First seed."""
    workers: int = 1
    """Worker processes (with ``ray="local"``: the local Ray instance's CPUs)."""
    num_frames: int = 41
    """Frames of each oracle flow and of the reference video the ``video`` source fits (its
    flows have the cpu preset's frame count over the same clip)."""
    record: bool = True
    """Record a video of the first trial of each task."""
    model: str | None = None
    """Wan 2.2 weights for the chord source (None: the shipped prior)."""
    flow_iterations: int | None = None
    """Iterations of the video and chord sources' runs (None: their presets'; tests shrink it)."""
    flow_frames: int | None = None
    """Frames of the video and chord sources' flows (None: their presets')."""
    ray: str | None = None
    """Run the trials on Ray (`chord_robot.app.executors`): "local", "auto" or "HOST:PORT";
    None: the local pool of ``workers`` processes."""

    def overrides(self) -> dict:
        """The flow-source overrides this config asks for."""
        out: dict = {}
        if self.flow_iterations is not None:
            out["iterations"] = self.flow_iterations
        if self.flow_frames is not None:
            out["frames"] = self.flow_frames
        if self.model is not None and self.flow_source == "chord":
            out["model"] = self.model
        return out


def suite_tasks(config: EvalConfig) -> tuple[str, ...]:
    """The task names an evaluation runs; InputError for unknown names."""
    from sim.tasks import PAPER_SUITE, TASKS

    if config.suite != "paper":
        raise InputError(f"unknown suite {config.suite!r}; the only suite is 'paper'")
    if config.flow_source not in FLOW_SOURCES:
        task_flow_source(config.flow_source, config.num_frames)  # its own words for "wan"
        raise InputError(f"--flow-source must be one of {', '.join(FLOW_SOURCES)}, got {config.flow_source!r}")
    names = config.tasks or PAPER_SUITE
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise InputError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if config.trials < 1:
        raise InputError("--trials must be at least 1")
    return tuple(names)


def run_trial(task_name: str, seed: int, flow_source: str, num_frames: int,
              record_path: str | None = None, overrides: dict | None = None) -> TrialResult:
    """One trial of the suite (`chord_robot.app.trial.run_trial` with the named flow source);
    never raises for a failed stage (an InputError is the user's: it propagates)."""
    from chord_robot.app.trial import run_trial as run

    outcome = run(task_name, seed, task_flow_source(flow_source, num_frames, **(overrides or {})),
                  record=record_path)
    return TrialResult(seed, outcome.success, outcome.failure_stage, outcome.metric, outcome.times,
                       outcome.failure, outcome.verdict, outcome.metric_info, outcome.flow_note)


def run_suite(config: EvalConfig, out_dir: str | os.PathLike[str],
              progress: Callable[[str, TrialResult], None] | None = None) -> dict[str, list[TrialResult]]:
    """Run every trial of every task; returns task -> trials in seed order.

    Raises:
        TaskFailure: a trial's worker process died on every attempt (the executor's retries).
    """
    names = suite_tasks(config)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in names:
        for i in range(config.trials):
            rec = str(out / "videos" / f"{name}.mp4") if config.record and i == 0 else None
            jobs.append((name, config.seed + i, config.flow_source, config.num_frames, rec, config.overrides()))
    results: dict[str, list[TrialResult]] = {n: [] for n in names}
    for i, r in run_jobs(run_trial, jobs, Executor(config.workers, config.ray)):
        name, seed = jobs[i][:2]
        if isinstance(r, JobCrash):
            raise TaskFailure(f"{name} seed {seed}: {r.message} ({r.attempts} attempts)")
        results[name].append(r)
        if progress:
            progress(name, r)
    for name in names:
        results[name].sort(key=lambda r: r.seed)
    return results
