"""Layer 2: the simulated evaluation suite (`chord-robot eval`).

Each trial: reset the task with its seed, get a flow from the chosen source, plan a grasp and a
trajectory, execute it in PyBullet with real contacts, and ask the task whether it succeeded.
Trials run in worker processes (spawned: JAX does not survive fork); each worker keeps one
planner so the trajectory solver compiles once per process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chord_robot.errors import InputError, PlanningFailure
from chord_robot.app.results import TrialResult

FLOW_SOURCES = ("oracle", "video", "wan")


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation runs."""

    suite: str = "paper"
    """The task suite ("paper": the paper's real-robot tasks plus fold-fabric)."""
    tasks: tuple[str, ...] = ()
    """Tasks to run; empty means the whole suite."""
    flow_source: str = "oracle"
    """Where flows come from: "oracle" (scripted motion), "video" (flowgen fitted to the task's
    rendered reference video), "wan" (the Wan 2.2 prior; needs a GPU)."""
    trials: int = 8
    """Trials per task; trial i uses seed ``seed + i``."""
    seed: int = 0
    """First seed."""
    workers: int = 1
    """Worker processes."""
    num_frames: int = 41
    """Frames of each oracle flow and of the reference video the ``video`` source fits (its
    flows have the cpu preset's frame count over the same clip)."""
    record: bool = True
    """Record a video of the first trial of each task."""


def suite_tasks(config: EvalConfig) -> tuple[str, ...]:
    """The task names an evaluation runs; InputError for unknown names."""
    from sim.tasks import PAPER_SUITE, TASKS

    if config.suite != "paper":
        raise InputError(f"unknown suite {config.suite!r}; the only suite is 'paper'")
    if config.flow_source not in FLOW_SOURCES:
        raise InputError(f"--flow-source must be one of {', '.join(FLOW_SOURCES)}, got {config.flow_source!r}")
    names = config.tasks or PAPER_SUITE
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise InputError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if config.trials < 1:
        raise InputError("--trials must be at least 1")
    return tuple(names)


_PLANNER = None  # one per worker process: the compiled trajectory solver is reused across trials


def _planner():
    global _PLANNER
    if _PLANNER is None:
        from loguru import logger

        from planning import FlowPlanner, enable_compilation_cache

        logger.disable("jaxls")  # its problem-building messages, once per trial

        enable_compilation_cache()
        _PLANNER = FlowPlanner()
    return _PLANNER


def task_flow(task, source: str, num_frames: int):
    """The flow a trial plans from."""
    if source == "oracle":
        return task.oracle_flow(num_frames=num_frames)
    if source == "video":
        from chord_robot.app.flowrun import flow_from_task_video

        flow, _ = flow_from_task_video(task, num_frames)
        return flow
    raise InputError("--flow-source wan needs a GPU with the Wan 2.2 weights; it is not available on this machine")


def run_trial(task_name: str, seed: int, flow_source: str, num_frames: int,
              record_path: str | None = None) -> TrialResult:
    """One trial, in a fresh PyBullet world; never raises for a failed stage."""
    import numpy as np

    from sim import world as simworld
    from sim.execute import execute
    from sim.render import Recorder, write_mp4
    from sim.tasks import make

    times: dict[str, float] = {}
    world = simworld.create(direct=True)
    try:
        task = make(task_name, world)
        t0 = time.perf_counter()
        task.reset(seed)
        times["reset"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            flow = task_flow(task, flow_source, num_frames)
        except InputError:
            raise
        except Exception:  # a flow source that fails is a failed trial, not a crashed suite
            return TrialResult(seed, False, "flow", float("nan"), times | {"flow": time.perf_counter() - t0})
        times["flow"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            base = simworld.pose_to_matrix(task.robot_base())
            plan = _planner().plan(flow, task.scene_points(), base=base, rng=np.random.default_rng(seed))
        except PlanningFailure as e:
            times["plan"] = time.perf_counter() - t0
            return TrialResult(seed, False, e.stage, float(task.evaluate()[1]), times)
        times["plan"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        panda = task.load_robot()
        recorder = Recorder(task.reference_camera(480, 360), fps=15.0) if record_path else None
        execute(world, panda, plan, task.bodies(),
                on_step=(lambda t: recorder.maybe_capture(world, t)) if recorder else None)
        times["execute"] = time.perf_counter() - t0
        if recorder is not None and recorder.frames:
            write_mp4(record_path, recorder.video(), fps=15.0)
        success, metric = task.evaluate()
        return TrialResult(seed, bool(success), None if success else "execute", float(metric), times)
    finally:
        world.close()


def _worker_init() -> None:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def run_suite(config: EvalConfig, out_dir: str | os.PathLike[str],
              progress: Callable[[str, TrialResult], None] | None = None) -> dict[str, list[TrialResult]]:
    """Run every trial of every task; returns task -> trials in seed order."""
    names = suite_tasks(config)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in names:
        for i in range(config.trials):
            rec = str(out / "videos" / f"{name}.mp4") if config.record and i == 0 else None
            jobs.append((name, config.seed + i, config.flow_source, config.num_frames, rec))
    results: dict[str, list[TrialResult]] = {n: [] for n in names}
    if config.workers <= 1:
        for job in jobs:
            r = run_trial(*job)
            results[job[0]].append(r)
            if progress:
                progress(job[0], r)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(config.workers, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
            futures = [(job, pool.submit(run_trial, *job)) for job in jobs]
            for job, fut in futures:
                r = fut.result()
                results[job[0]].append(r)
                if progress:
                    progress(job[0], r)
    for name in names:
        results[name].sort(key=lambda r: r.seed)
    return results
