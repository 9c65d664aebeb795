"""Scale-out: an oracle evaluation on the local process pool and on Ray, 1 and 2 workers.

    python benchmarks/scaleout.py [--tasks close-laptop,lower-lamp,pick-banana,fold-fabric] [--trials 2]

Prints, for each executor (local pool / Ray instance started on this machine, 1 and 2
workers), the evaluation's wall time and its ratio to the local pool with 1 worker measured in
the same process, whether every trial's outcome (success, failure stage) and metric equal the reference's and
the largest metric difference, and Ray's start-up
overhead (`ray.init(num_cpus=2)` to the first task's result, and the shutdown). The times are
this machine's (2 cores): Ray cannot beat the cores it is given, only reach more of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _ping() -> int:
    return os.getpid()


def ray_overhead() -> dict:
    """Seconds to start a local Ray instance and get a first task's result; to shut it down."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.get(ray.remote(_ping).remote())
    up = time.perf_counter() - start
    start = time.perf_counter()
    ray.shutdown()
    return {"start_and_first_task_s": up, "shutdown_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="close-laptop,lower-lamp,pick-banana,fold-fabric")
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()

    from chord_robot.app.evaluate import EvalConfig, run_suite

    base = EvalConfig(tasks=tuple(args.tasks.split(",")), flow_source="oracle", trials=args.trials, seed=0,
                      record=False)
    runs = [("local pool", 1, None), ("local pool", 2, None), ("Ray (local instance)", 1, "local"),
            ("Ray (local instance)", 2, "local")]
    reference, rows = None, []
    with tempfile.TemporaryDirectory() as tmp:
        for label, workers, ray in runs:
            start = time.perf_counter()
            results = run_suite(replace(base, workers=workers, ray=ray), Path(tmp) / f"{label}-{workers}")
            wall = time.perf_counter() - start
            outcomes = {t: [(r.seed, r.success, r.failure_stage) for r in rs] for t, rs in results.items()}
            metrics = {t: [r.metric for r in rs] for t, rs in results.items()}
            if reference is None:
                reference = (wall, outcomes, metrics)
            same = metrics == reference[2]
            diff = {t: max(abs(a - b) for a, b in zip(m, reference[2][t], strict=True)) for t, m in metrics.items()}
            successes = sum(r.success for rs in results.values() for r in rs)
            rows.append((label, workers, wall, wall / reference[0], outcomes == reference[1], same, diff, successes))
    overhead = ray_overhead()
    trials = len(base.tasks) * args.trials
    print(f"oracle eval: {len(base.tasks)} tasks x {args.trials} trials = {trials} trials, this machine "
          f"({os.cpu_count()} cores)")
    print(f"{'executor':<22} {'workers':>7} {'wall s':>8} {'ratio':>6}  same outcomes  same metrics  successes")
    for label, workers, wall, ratio, outcomes, same, _, successes in rows:
        print(f"{label:<22} {workers:>7} {wall:>8.1f} {ratio:>6.2f}  {outcomes!s:<13}  {same!s:<12}  "
              f"{successes}/{trials}")
    print("largest metric difference from the reference, per task (each task's own unit):")
    for label, workers, *_, diff, _ in rows[1:]:
        print(f"  {label}, {workers}: " + ", ".join(f"{t} {d:.2g}" for t, d in diff.items()))
    print(f"Ray start-up: {overhead['start_and_first_task_s']:.1f} s to a first task's result; "
          f"shutdown {overhead['shutdown_s']:.1f} s")


if __name__ == "__main__":
    main()
