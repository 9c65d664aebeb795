"""The chord flow source with settings the CLI does not expose (docs/comparison/README.md, session 24).

    python scripts/chord_sweep.py TASK SEEDS [--set FIELD=VALUE ...] [--execute] [--plan FIELD=VALUE ...]
                                  [--exec FIELD=VALUE ...] [--flows DIR] [--source chord|video] [--model DIR]
                                  [--workers N] [-o OUT.json]

Per seed, the task is reset and its scan and words distilled as `chord-robot eval --flow-source
chord` does (`chord_robot.app.taskflows.flow_from_task_words`: the shipped model the task's words
choose and its preset, or ``--model``; before session 35 every task ran on whatever sat in
``flowgen/priors/shipped/model``: the first model in sessions 29-31, trained pick priors copied
over it in a clone in sessions 32-34),
with each ``--set`` applied to the preset's `flowgen.config.FlowConfig` (and again after what
the task's motion sets, a carried object's settings, so it wins; `prepare_flow`): a dotted field
(``weights.acceleration=300``, ``wan.guidance_start=12``, ``wan.sds_space=image``; a schedule
such as ``weights.temporal`` takes ``START:END`` and a pair such as ``wan.image_blur`` ``A:B``;
numbers, words, pairs and switches only). ``iterations`` sets the field alone (the split
iteration and checkpoints stay the preset's, unlike ``chord-robot flow --flow-iterations``).
Prints what each flow asks of the task (``describe_flow``); with ``--execute`` the whole trial
runs as the evaluation's (`chord_robot.app.trial.run_trial`: plan, execute, the task's verdict),
in worker processes set up as the evaluation's (`chord_robot.app.executors`). SEEDS: ``100-107``,
``100,102`` or both (``100-103,200``). One line of JSON per seed on stdout (and all of them in
OUT.json); a seed whose run raises gets its error instead. ``--source video`` takes the
evaluation's video source instead (`chord-robot eval --flow-source video`: the scripted
motion's video lifted; its flows cached as ``video-TASK-SEED.zarr``) or ``--source oracle`` (the
scripted motion), for ``--plan`` settings. ``--exec`` sets a `sim.execute.ExecuteConfig` field of the execution
(``grip=pinch``, ``pinch_torque=0.5``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
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
    if isinstance(current, str):
        return text
    if isinstance(current, tuple) and current and all(isinstance(c, (int, float)) for c in current):
        values = tuple(float(v) for v in text.split(":"))
        if len(values) != len(current):
            raise SystemExit(f"chord_sweep: {path} takes {len(current)} numbers joined by ':', got {text!r}")
        return values
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"chord_sweep: {path} is a switch: true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if not isinstance(current, (int, float)):
        raise SystemExit(f"chord_sweep: {path} is not a number or a switch ({type(current).__name__})")
    return type(current)(text)


def set_field(config, path: str, text: str):
    """``config`` with the dotted field ``path`` set from ``text`` (nested frozen dataclasses;
    `chord_robot.app.flowconfig.replace_field`, the value parsed as the field's own type)."""
    from chord_robot.app.flowconfig import replace_field

    current = config
    for name in path.split("."):
        if not dataclasses.is_dataclass(current) or name not in {f.name for f in dataclasses.fields(current)}:
            raise SystemExit(f"chord_sweep: no setting {path!r}")
        current = getattr(current, name)
    return replace_field(config, path, _value(current, path, text))


def adjuster(settings: list[str]):
    if bad := [s for s in settings if "=" not in s]:
        raise SystemExit(f"chord_sweep: a setting is FIELD=VALUE, got {bad[0]!r}")
    pairs = [s.split("=", 1) for s in settings]

    def adjust(config):
        for path, text in pairs:
            config = set_field(config, path, text)
        return config

    return adjust


_PLANNERS: dict[tuple[str, ...], object] = {}  # per worker: a planner per --plan settings (compiled once)


def planner_for(settings: list[str]) -> object | None:
    """The planner of ``--plan`` settings (None: the evaluation's own)."""
    if not settings:
        return None
    if tuple(settings) not in _PLANNERS:
        from chord_robot.app.trial import shared_planner
        from planning import FlowPlanner

        evaluation = shared_planner()  # its robot, and the process's compilation cache
        _PLANNERS[tuple(settings)] = FlowPlanner(adjuster(settings)(evaluation.config), model=evaluation.model)
    return _PLANNERS[tuple(settings)]


def task_flow(task, adjust: Callable, flows: str | None, source: str = "chord", model: str | None = None):
    """The task's flow from ``source``: the chord source's distillation from ``model`` (None: the
    shipped model the task's words choose), or the video source's fit (`chord-robot eval
    --flow-source video`); or read from (else written to) ``flows``."""
    from chord_robot.app.evaluate import EvalConfig
    from chord_robot.app.taskflows import flow_from_task_video, flow_from_task_words
    from chord_robot.flow import ObjectFlow

    if source == "oracle":  # the scripted motion: made afresh, never cached
        return task.oracle_flow(num_frames=EvalConfig.num_frames)
    name = f"{task.name}-{task.seed}.zarr" if source == "chord" else f"{source}-{task.name}-{task.seed}.zarr"
    path = Path(flows) / name if flows else None
    if path is not None and path.exists():
        return ObjectFlow.load(path)
    if source == "video":
        flow = flow_from_task_video(task, EvalConfig.num_frames).flow
    else:
        flow = flow_from_task_words(task, model=model, adjust=adjust).flow
    if path is not None:
        flow.save(path)
    return flow


def one(task_name: str, seed: int, settings: list[str], execute: bool, plan_settings: list[str] | None = None,
        flows: str | None = None, source: str = "chord", exec_settings: list[str] | None = None,
        model: str | None = None) -> dict:
    adjust = adjuster(settings)
    row = {"task": task_name, "seed": seed, "settings": settings, "plan": plan_settings or []}
    if exec_settings:
        row["exec"] = exec_settings
    if source != "chord":
        row["source"] = source
    if model:
        row["model"] = model
    if execute:
        from chord_robot.app.trial import run_trial
        from sim.execute import ExecuteConfig

        outcome = run_trial(task_name, seed, lambda task: task_flow(task, adjust, flows, source, model),
                            planner=planner_for(plan_settings or []),
                            execute_config=adjuster(exec_settings or [])(ExecuteConfig()))
        return {**row, "success": outcome.success, "metric": outcome.metric, "failure": outcome.failure,
                "flow": outcome.flow_note}
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:
        task = make(task_name, world)
        task.reset(seed)
        return {**row, "flow": task.describe_flow(task_flow(task, adjust, flows, source, model))}
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
    parser.add_argument("--plan", dest="plan_settings", action="append", default=[], metavar="FIELD=VALUE",
                        help="a planning.PlanConfig field (with --execute)")
    parser.add_argument("--exec", dest="exec_settings", action="append", default=[], metavar="FIELD=VALUE",
                        help="a sim.execute.ExecuteConfig field (with --execute)")
    parser.add_argument("--flows", type=Path, help="read the flows from here where they are, write them where not")
    parser.add_argument("--source", choices=("chord", "video", "oracle"), default="chord",
                        help="the flow source (video: the evaluation's video source; oracle: the scripted motion, "
                             "never cached; --set is the chord source's)")
    parser.add_argument("--model", help="Wan-layout weights the chord source distils from (default: the shipped "
                        "model the task's words choose, as the evaluation's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    from chord_robot.app.executors import Executor, JobCrash, run_jobs
    from chord_robot.app.flowconfig import flow_config
    from chord_robot.errors import InputError
    from planning import PlanConfig
    from sim.execute import ExecuteConfig

    adjuster(args.settings)(flow_config("shipped", "wan"))  # a setting that does not exist fails here
    adjuster(args.plan_settings)(PlanConfig())
    try:
        adjuster(args.exec_settings)(ExecuteConfig())  # an unknown grip is refused here, not per trial
    except InputError as e:
        raise SystemExit(f"chord_sweep: {e}") from None
    if args.settings and args.source != "chord":
        raise SystemExit("chord_sweep: --set changes the chord source's preset: not with --source video")
    if args.model and args.source != "chord":
        raise SystemExit(f"chord_sweep: --model is the chord source's weights: not with --source {args.source}")
    if args.model:
        args.model = str(Path(args.model).resolve())  # one key for one directory however it is written
    if args.plan_settings and not args.execute:
        raise SystemExit("chord_sweep: --plan changes the planner: it needs --execute")
    if args.exec_settings and not args.execute:
        raise SystemExit("chord_sweep: --exec changes the execution: it needs --execute")
    if args.flows:
        args.flows.mkdir(parents=True, exist_ok=True)
        made = args.flows / "settings.json"
        key = {"set": args.settings, "model": args.model}
        if made.exists() and json.loads(made.read_text()) != key:
            held = json.loads(made.read_text())
            why = " (a list: kept before the task's words chose the model; use a new folder)" if isinstance(held, list) else ""
            raise SystemExit(f"chord_sweep: {args.flows} holds flows made with {held}{why}, not {key}")
        made.write_text(json.dumps(key))
    rows = []
    flows = str(args.flows) if args.flows else None
    jobs = [(args.task, s, args.settings, args.execute, args.plan_settings, flows, args.source, args.exec_settings,
             args.model) for s in args.seeds]
    for i, result in run_jobs(one, jobs, Executor(args.workers)):
        if isinstance(result, JobCrash):
            result = {"task": args.task, "seed": args.seeds[i], "settings": args.settings, "plan": args.plan_settings,
                      **({"exec": args.exec_settings} if args.exec_settings else {}),
                      **({"source": args.source} if args.source != "chord" else {}),
                      **({"model": args.model} if args.model else {}), "error": result.message}
        rows.append(result)
        print(json.dumps(result), flush=True)
    rows.sort(key=lambda r: r["seed"])
    if args.execute:
        print(f"{args.task}: {sum(bool(r.get('success')) for r in rows)}/{len(rows)} succeeded", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
