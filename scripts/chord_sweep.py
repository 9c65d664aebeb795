"""The chord flow source with settings the CLI does not expose (docs/comparison/README.md, session 24).

    python scripts/chord_sweep.py TASK SEEDS [--set FIELD=VALUE ...] [--execute] [--workers N] [-o OUT.json]

Per seed, the task is reset and its scan and words distilled as `chord-robot eval --flow-source
chord` does (`chord_robot.app.taskflows.flow_from_task_words`, the shipped prior and its preset),
with each ``--set`` applied to the preset's `flowgen.config.FlowConfig` first: a dotted field
(``weights.acceleration=300``, ``wan.guidance_start=12``, ``iterations=600``; a schedule such as
``weights.temporal`` takes ``START:END``). Prints what each flow asks of the task
(``describe_flow``); with ``--execute`` the whole trial runs as the evaluation's
(`chord_robot.app.trial.run_trial`: plan, execute, the task's verdict). SEEDS: ``100-107`` or
``100,102``. One line of JSON per seed on stdout (and all of them in OUT.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def _value(current, text: str):
    from flowgen.config import Decay

    if isinstance(current, Decay):
        start, _, end = text.partition(":")
        return Decay(float(start), float(end or start))
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes", "on")
    return type(current)(text) if current is not None else float(text)


def set_field(config, path: str, text: str):
    """``config`` with the dotted field ``path`` set from ``text`` (nested frozen dataclasses)."""
    head, _, rest = path.partition(".")
    if not dataclasses.is_dataclass(config) or head not in {f.name for f in dataclasses.fields(config)}:
        raise SystemExit(f"chord_sweep: no setting {path!r} in {type(config).__name__}")
    current = getattr(config, head)
    return dataclasses.replace(config, **{head: set_field(current, rest, text) if rest else _value(current, text)})


def adjuster(settings: list[str]):
    pairs = [s.split("=", 1) for s in settings]

    def adjust(config):
        for path, text in pairs:
            config = set_field(config, path, text)
        return config

    return adjust


def one(task_name: str, seed: int, settings: list[str], execute: bool) -> dict:
    from chord_robot.app.taskflows import flow_from_task_words

    adjust = adjuster(settings)
    if execute:
        from chord_robot.app.trial import run_trial

        outcome = run_trial(task_name, seed, lambda task: flow_from_task_words(task, adjust=adjust).flow)
        return {"task": task_name, "seed": seed, "settings": settings, "success": outcome.success,
                "metric": outcome.metric, "failure": outcome.failure, "flow": outcome.flow_note}
    from sim import world as simworld
    from sim.tasks import make

    task = make(task_name, simworld.create(direct=True))
    task.reset(seed)
    flow = flow_from_task_words(task, adjust=adjust).flow
    return {"task": task_name, "seed": seed, "settings": settings, "flow": task.describe_flow(flow)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("seeds", type=parse_seeds)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--execute", action="store_true", help="plan and execute each flow (the whole trial)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    from chord_robot.app.flowconfig import flow_config

    adjuster(args.settings)(flow_config("cpu", "wan"))  # a setting that does not exist fails here
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [pool.submit(one, args.task, s, args.settings, args.execute) for s in args.seeds]
        for job in jobs:
            rows.append(job.result())
            print(json.dumps(rows[-1]), flush=True)
    if args.execute:
        print(f"{args.task}: {sum(r['success'] for r in rows)}/{len(rows)} succeeded", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
