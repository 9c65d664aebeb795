"""The chord flow source with settings the CLI does not expose (docs/comparison/README.md, session 24).

    python scripts/chord_sweep.py TASK SEEDS [--set FIELD=VALUE ...] [--execute] [--workers N] [-o OUT.json]

Per seed, the task is reset and its scan and words distilled as `chord-robot eval --flow-source
chord` does (`chord_robot.app.taskflows.flow_from_task_words`, the shipped prior and its preset),
with each ``--set`` applied to the preset's `flowgen.config.FlowConfig` first: a dotted field
(``weights.acceleration=300``, ``wan.guidance_start=12``; a schedule such as ``weights.temporal``
takes ``START:END``; numbers and switches only). ``iterations`` sets the field alone (the split
iteration and checkpoints stay the preset's, unlike ``chord-robot flow --flow-iterations``).
Prints what each flow asks of the task (``describe_flow``); with ``--execute`` the whole trial
runs as the evaluation's (`chord_robot.app.trial.run_trial`: plan, execute, the task's verdict),
in worker processes set up as the evaluation's (`chord_robot.app.executors`). SEEDS: ``100-107``,
``100,102`` or both (``100-103,200``). One line of JSON per seed on stdout (and all of them in
OUT.json); a seed whose run raises gets its error instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def _value(current, path: str, text: str):
    from flowgen.config import Decay

    if isinstance(current, Decay):
        start, _, end = text.partition(":")
        return Decay(float(start), float(end or start))
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"chord_sweep: {path} is a switch: true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if not isinstance(current, (int, float)):
        raise SystemExit(f"chord_sweep: {path} is not a number or a switch ({type(current).__name__})")
    return type(current)(text)


def set_field(config, path: str, text: str, full: str | None = None):
    """``config`` with the dotted field ``path`` set from ``text`` (nested frozen dataclasses)."""
    head, _, rest = path.partition(".")
    if not dataclasses.is_dataclass(config) or head not in {f.name for f in dataclasses.fields(config)}:
        raise SystemExit(f"chord_sweep: no setting {full or path!r}")
    current = getattr(config, head)
    value = set_field(current, rest, text, full or path) if rest else _value(current, full or path, text)
    return dataclasses.replace(config, **{head: value})


def adjuster(settings: list[str]):
    if bad := [s for s in settings if "=" not in s]:
        raise SystemExit(f"chord_sweep: --set takes FIELD=VALUE, got {bad[0]!r}")
    pairs = [s.split("=", 1) for s in settings]

    def adjust(config):
        for path, text in pairs:
            config = set_field(config, path, text)
        return config

    return adjust


def one(task_name: str, seed: int, settings: list[str], execute: bool) -> dict:
    from chord_robot.app.taskflows import flow_from_task_words

    adjust = adjuster(settings)
    row = {"task": task_name, "seed": seed, "settings": settings}
    if execute:
        from chord_robot.app.trial import run_trial

        outcome = run_trial(task_name, seed, lambda task: flow_from_task_words(task, adjust=adjust).flow)
        return {**row, "success": outcome.success, "metric": outcome.metric, "failure": outcome.failure,
                "flow": outcome.flow_note}
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:
        task = make(task_name, world)
        task.reset(seed)
        flow = flow_from_task_words(task, adjust=adjust).flow
        return {**row, "flow": task.describe_flow(flow)}
    except Exception as e:  # noqa: BLE001 - one seed's failure is its row, not the sweep's end
        return {**row, "error": f"{type(e).__name__}: {e}"}
    finally:
        world.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("seeds", type=parse_seeds)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--execute", action="store_true", help="plan and execute each flow (the whole trial)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    from chord_robot.app.executors import Executor, JobCrash, run_jobs
    from chord_robot.app.flowconfig import flow_config

    adjuster(args.settings)(flow_config("shipped", "wan"))  # a setting that does not exist fails here
    rows = []
    jobs = [(args.task, s, args.settings, args.execute) for s in args.seeds]
    for i, result in run_jobs(one, jobs, Executor(args.workers)):
        if isinstance(result, JobCrash):
            result = {"task": args.task, "seed": args.seeds[i], "settings": args.settings, "error": result.message}
        rows.append(result)
        print(json.dumps(result), flush=True)
    rows.sort(key=lambda r: r["seed"])
    if args.execute:
        print(f"{args.task}: {sum(bool(r.get('success')) for r in rows)}/{len(rows)} succeeded", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
