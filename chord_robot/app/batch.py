"""`chord-robot batch`: many scan x task x seed jobs -> flow -> plan -> simulated execution.

A jobs file (TOML) lists the jobs; each ``[[job]]`` may give lists of scans, tasks and seeds
(every combination is a job), and ``[defaults]`` holds keys every job shares::

    [defaults]
    simulate = true                      # run the plan in PyBullet (default true)
    [defaults.flow]                      # `chord_robot.generate_flow` keywords (iters, frames,
    iters = 300                          #   preset, model, prior, video, camera, background ...)
    [defaults.plan]                      # `chord_robot.plan` keywords (mode, robot, preset)
    mode = "auto"

    [[job]]
    scan = "kitchen.ply"                 # paths are relative to the jobs file
    task = ["close the laptop", "lower the lamp"]
    seed = [0, 1, 2]
    # id = "..."     (a single combination only; default: scan-task-s<seed>)
    # object = "laptop", num_cpus = 1, num_gpus = 0 (Wan 2.2 jobs: 1), flow = {...}, plan = {...}

The store outlives the driver (DESIGN.md §9): each job's outputs (``flow.zarr``, ``plan.zarr``,
``result.json``) are written under ``DIR/jobs/<id>/`` at once (a temporary sibling renamed
into place), and its row is appended to ``DIR/results.jsonl``; the table is rewritten from the
job folders at the start and end of every run, in the jobs file's order, so it is complete
after a killed driver. Running the same command again skips finished jobs (``--retry-failed``
runs the failed ones again). A job that fails records its stage (load, flow, plan, sim, or
worker when its process died on every attempt) and message; the batch goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from chord_robot.app.executors import Executor, JobCrash, run_jobs
from chord_robot.atomic import atomic_path, write_text_atomic
from chord_robot.errors import ChordError, InputError

JOB_STAGES = ("load", "flow", "plan", "sim")
"""A job's stages, in order; a failed job names the one that failed (or "worker")."""

JOB_KEYS = {"scan", "task", "seed", "id", "object", "simulate", "flow", "plan", "num_cpus", "num_gpus"}
FLOW_PATHS = ("video", "camera", "background", "model")
"""`generate_flow` keywords that are paths (relative to the jobs file)."""
PLAN_KEYS = {"mode", "robot", "robot_base", "preset"}


@dataclass(frozen=True)
class Job:
    """One scan x task x seed.

    Attributes:
        id: the job's name, unique in the batch (its folder under ``DIR/jobs``).
        scan: absolute path of the scan.
        task: the task in words.
        seed: the flow's and the planner's seed.
        object: the object to move (None: the one the task names or the prior picks).
        simulate: execute the plan in PyBullet.
        flow: keywords of `chord_robot.generate_flow` (paths absolute).
        plan: keywords of `chord_robot.plan`.
        num_cpus, num_gpus: what the job asks a Ray cluster for.
    """

    id: str
    scan: str
    task: str
    seed: int = 0
    object: str | None = None
    simulate: bool = True
    flow: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    num_cpus: float = 1.0
    num_gpus: float = 0.0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "job"


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def load_jobs(path: str | os.PathLike[str]) -> list[Job]:
    """The jobs of a jobs file, in order; InputError (one line) for anything malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no jobs file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid TOML: {e}") from None
    unknown = set(data) - {"defaults", "job"}
    if unknown:
        raise InputError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; a jobs file has [defaults] and [[job]]")
    defaults, entries = data.get("defaults", {}), data.get("job", [])
    if not isinstance(defaults, dict) or not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[job]] entries")
    jobs: list[Job] = []
    for n, entry in enumerate(entries, 1):
        where = f"{path} job {n}"
        merged = {**defaults, **entry}
        merged["flow"] = {**defaults.get("flow", {}), **entry.get("flow", {})}
        merged["plan"] = {**defaults.get("plan", {}), **entry.get("plan", {})}
        bad = set(merged) - JOB_KEYS
        if bad:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(JOB_KEYS))}")
        if "scan" not in merged or "task" not in merged:
            raise InputError(f"{where}: needs a scan and a task")
        jobs += _expand(merged, path.parent.resolve(), where)
    seen: set[str] = set()
    for job in jobs:
        if job.id in seen:
            raise InputError(f"{path}: two jobs are named {job.id!r}; give them distinct ids")
        seen.add(job.id)
    return jobs


def _expand(entry: dict, root: Path, where: str) -> list[Job]:
    scans, tasks, seeds = _listed(entry["scan"]), _listed(entry["task"]), _listed(entry.get("seed", 0))
    for s in scans:
        if not isinstance(s, str) or not (root / s).is_file():
            raise InputError(f"{where}: scan {s!r} is not a file (paths are relative to the jobs file)")
    if not all(isinstance(t, str) and t.strip() for t in tasks):
        raise InputError(f"{where}: task must be words (or a list of them)")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError(f"{where}: seed must be a non-negative integer (or a list of them), got {entry.get('seed')!r}")
    flow, plan = dict(entry["flow"]), dict(entry["plan"])
    if "seed" in flow:
        raise InputError(f"{where}: the job's seed is the flow's seed: set seed in the job, not in flow")
    for key in FLOW_PATHS:
        if key in flow:
            flow[key] = [str(root / p) for p in _listed(flow[key])] if key != "model" else str(root / flow[key])
    bad = set(plan) - PLAN_KEYS
    if bad:
        raise InputError(f"{where}: unknown plan key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(PLAN_KEYS))}")
    combos = list(itertools.product(scans, tasks, seeds))
    if "id" in entry and len(combos) > 1:
        raise InputError(f"{where}: an id names one job, but the entry makes {len(combos)}")
    resources = {k: float(entry.get(k, d)) for k, d in (("num_cpus", 1.0), ("num_gpus", 0.0))}
    return [Job(str(entry["id"]) if "id" in entry else f"{_slug(Path(s).stem)}-{_slug(t)}-s{seed}",
                str((root / s).resolve()), t, seed, entry.get("object"), bool(entry.get("simulate", True)),
                flow, plan, **resources)
            for s, t, seed in combos]


# -- one job (in a worker) ---------------------------------------------------------------------

def run_job(job: Job, out: str) -> dict:
    """Run one job into ``out``/jobs/<id>/ and return its row; never raises for a failed stage.

    A job whose folder is already complete (a retry after its worker died past the rename)
    returns the stored row without running again.
    """
    jobs_dir = Path(out) / "jobs"
    done = jobs_dir / job.id / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    marks = jobs_dir / ".running"
    marks.mkdir(parents=True, exist_ok=True)
    with open(marks / job.id, "a") as f:  # one line per attempt: who ran it
        f.write(f"{socket.gethostname()} {os.getpid()} {time.time():.3f}\n")
    attempt = len((marks / job.id).read_text().splitlines())
    row: dict[str, Any] = {"id": job.id, "scan": job.scan, "task": job.task, "seed": job.seed, "status": "done",
                           "stage": None, "message": None, "attempt": attempt,
                           "worker": f"{socket.gethostname()}:{os.getpid()}", "times": {}, "figures": {}}
    _store(jobs_dir / job.id, row, lambda folder: _stages(job, folder, row))
    (marks / job.id).unlink(missing_ok=True)
    return row


def _store(folder: Path, row: dict, fill=None) -> None:
    """Write a job's folder whole: a temporary sibling, filled by ``fill(tmp)`` (the stages'
    stores), then its ``result.json`` (``row`` as it is then), renamed into place."""
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        if fill is not None:
            fill(tmp)
        write_text_atomic(tmp / "result.json", json.dumps(row, indent=1) + "\n")


def _stages(job: Job, folder: Path, row: dict) -> None:
    """load -> flow -> plan -> sim, filling ``row``; the first failure ends the job."""
    import numpy as np
    import torch

    from chord_robot.app import api

    torch.set_num_threads(1)  # a job's numbers do not depend on the machine's cores
    figures, stage, clock = row["figures"], "load", time.perf_counter()

    def timed(name: str) -> None:
        nonlocal stage, clock
        row["times"][stage] = round(time.perf_counter() - clock, 3)
        stage, clock = name, time.perf_counter()

    try:
        scene = api.load_scan(job.scan)
        timed("flow")
        flow = api.generate_flow(scene, job.task, object_name=job.object, output=folder / "flow.zarr",
                                 seed=job.seed, **job.flow)
        moving = flow.moving()
        figures["moved"] = sorted(moving)
        figures["flow_max_mm"] = {n: round(1000 * float(np.linalg.norm(m.trajectories[-1] - m.trajectories[0],
                                                                       axis=1).max()), 2) for n, m in moving.items()}
        timed("plan")
        plan = api.plan(scene, flow, object_name=job.object, seed=job.seed, **job.plan)
        plan.save(folder / "plan.zarr")
        figures.update(mode=plan.mode, object=plan.object, duration_s=round(float(plan.times[-1]), 3),
                       alignment_mm=round(1000 * float(plan.costs.get("alignment_mean_m", float("nan"))), 3))
        if job.simulate:
            timed("sim")
            result = api.simulate(scene, plan)
            figures.update(grasped=result.grasped, contacts=list(result.contact_objects),
                           final_joint_error=round(result.final_joint_error, 5))
            if plan.object in result.final_points:  # how far the object's centroid went, in the sim and the flow
                sim_move = result.final_points[plan.object].mean(0) - scene.objects[plan.object].points.mean(0)
                traj = flow.objects[plan.object].trajectories
                figures["sim_centroid_mm"] = round(1000 * float(np.linalg.norm(sim_move)), 2)
                figures["flow_centroid_mm"] = round(1000 * float(np.linalg.norm(traj[-1].mean(0) - traj[0].mean(0))), 2)
        timed("end")
    except Exception as e:  # noqa: BLE001 -- every failure is recorded, none stops the batch
        row["times"][stage] = round(time.perf_counter() - clock, 3)
        message = str(e) if isinstance(e, ChordError) else f"{type(e).__name__}: {e}"
        row.update(status="failed", stage=stage, message=message.strip().splitlines()[0] if message.strip() else "")
    row["times"].pop("end", None)


# -- the batch (the driver) --------------------------------------------------------------------

@dataclass
class BatchProgress:
    """Where a batch stands (given to the progress callback after every finished job)."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    elapsed: float = 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed

    def estimate(self) -> float | None:
        """Seconds left at this run's pace so far (None before its first finished job)."""
        finished = self.done + self.failed
        return self.elapsed / finished * self.remaining if finished else None


def read_store(out: Path, jobs: list[Job]) -> dict[str, dict]:
    """The rows of the jobs whose folders are complete."""
    rows = {}
    for job in jobs:
        result = out / "jobs" / job.id / "result.json"
        if result.is_file():
            rows[job.id] = json.loads(result.read_text())
    return rows


def write_table(out: Path, jobs: list[Job], rows: dict[str, dict]) -> None:
    """``results.jsonl``, one row per finished job in the jobs file's order (atomically)."""
    write_text_atomic(out / "results.jsonl", "".join(json.dumps(rows[j.id]) + "\n" for j in jobs if j.id in rows))


def _append(out: Path, row: dict) -> None:
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _remove_temporaries(jobs_dir: Path) -> None:
    """Remove the half-written job folders of attempts whose worker was killed."""
    for stale in jobs_dir.glob(".*"):
        if stale.name != ".running":
            shutil.rmtree(stale, ignore_errors=True)


def _running(jobs_dir: Path, todo: list[Job], rows: dict[str, dict]) -> int:
    """Jobs some worker has started (`run_job`'s marks) and no row has finished."""
    marks = jobs_dir / ".running"
    return sum(1 for j in todo if j.id not in rows and (marks / j.id).exists())


def _crash_row(job: Job, crash: JobCrash) -> dict:
    return {"id": job.id, "scan": job.scan, "task": job.task, "seed": job.seed, "status": "failed",
            "stage": "worker", "message": crash.message, "attempt": crash.attempts, "worker": None,
            "times": {}, "figures": {}}


def run_batch(
    jobs_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    executor: Executor | None = None,
    *,
    retry_failed: bool = False,
    progress: Callable[[BatchProgress, dict | None], None] | None = None,
) -> list[dict]:
    """Run the jobs of ``jobs_file`` into ``out`` (skipping finished ones); returns every
    finished job's row in the file's order and writes ``results.jsonl`` and ``summary.md``."""
    executor = executor or Executor()
    jobs = load_jobs(jobs_file)
    out = Path(out).resolve()  # workers run elsewhere (another folder, or another node sharing it)
    jobs_dir = out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(jobs_dir)
    rows = read_store(out, jobs)
    todo = [j for j in jobs if j.id not in rows or (retry_failed and rows[j.id]["status"] == "failed")]
    for job in todo:
        if job.id in rows:
            shutil.rmtree(jobs_dir / job.id)
            del rows[job.id]
    write_table(out, jobs, rows)
    state = BatchProgress(len(jobs), skipped=len(jobs) - len(todo))
    start = time.perf_counter()
    if progress:
        progress(state, None)
    resources = [{"num_cpus": j.num_cpus, "num_gpus": j.num_gpus} for j in todo]
    for i, row in run_jobs(run_job, [(j, str(out)) for j in todo], executor, resources):
        job = todo[i]
        if isinstance(row, JobCrash):
            row = _crash_row(job, row)
            _store(jobs_dir / job.id, row)
        rows[job.id] = row
        _append(out, row)
        state.done += row["status"] == "done"
        state.failed += row["status"] == "failed"
        state.running = _running(jobs_dir, todo, rows)
        state.elapsed = time.perf_counter() - start
        if progress:
            progress(state, row)
    write_table(out, jobs, rows)
    _remove_temporaries(jobs_dir)  # every job has ended: what is left was a killed attempt's
    ordered = [rows[j.id] for j in jobs if j.id in rows]
    write_text_atomic(out / "summary.md", summary(ordered, executor, state, time.perf_counter() - start))
    return ordered


def summary(rows: list[dict], executor: Executor, state: BatchProgress, wall: float) -> str:
    """The batch's account: counts, time per stage, and one line per failed job."""
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    lines = ["# Batch", "",
             (f"{len(rows)} of {state.total} jobs finished: {len(done)} done, {len(failed)} failed "
              f"({state.skipped} finished before this run); this run {wall:.0f} s on {executor.label}."), ""]
    stages = [s for s in JOB_STAGES if any(s in r["times"] for r in rows)]
    if stages:
        lines += ["| stage | jobs | mean s | max s |", "|---|---|---|---|"]
        for s in stages:
            t = [r["times"][s] for r in rows if s in r["times"]]
            lines.append(f"| {s} | {len(t)} | {sum(t) / len(t):.1f} | {max(t):.1f} |")
        lines.append("")
    if failed:
        lines += ["## Failed", ""] + [f"- {r['id']}, at {r['stage']}: {r['message']}" for r in failed] + [""]
    retried = [r for r in rows if r.get("attempt", 1) > 1]
    if retried:
        lines += ["## Retried (a worker died)", ""] + [f"- {r['id']}: attempt {r['attempt']}" for r in retried] + [""]
    return "\n".join(lines)

