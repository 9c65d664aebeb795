"""The headline command on a desk with a lamp, a laptop and two distractors (issue #16).

    python benchmarks/headline.py scene DIR [--seed S]
        Writes DIR/desk.ply (+ desk.labels.json, desk.json): `sim.desk.write_desk`.
    python benchmarks/headline.py run DIR "TASK" OUT [plan arguments ...]
        Times `chord-robot plan --scan DIR/desk.ply --task TASK -o OUT/plan.zarr`, then measures
        the generated flow (OUT/plan.flow.zarr): the named object's joint turn and base drift
        (`sim.articulation.measure`), every other object's largest displacement, and the plan's
        alignment error. Prints and writes OUT/report.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def run(desk: Path, task: str, out: Path, extra: list[str]) -> dict:
    from chord_robot.plans import Plan
    from sim.desk import measure_flow

    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "chord_robot.app.cli", "plan", "--scan", str(desk / "desk.ply"), "--task", task,
           "-o", str(out / "plan.zarr"), "--force", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (out / "plan.log").write_text(done.stdout + done.stderr)
    report = {"task": task, "command": " ".join(cmd[2:]), "exit": done.returncode, "seconds": round(seconds, 1)}
    if done.returncode == 0:
        plan = Plan.load(out / "plan.zarr")
        report |= measure_flow(desk, out / "plan.flow.zarr")
        report |= {"plan_object": plan.object, "plan_mode": plan.mode,
                   "alignment_mean_mm": round(1000 * plan.costs.get("alignment_mean_m", float("nan")), 2),
                   "alignment_max_mm": round(1000 * plan.costs.get("alignment_max_m", float("nan")), 2)}
    else:
        report["error"] = done.stderr.strip().splitlines()[-1:] or ["?"]
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "scene":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 9101
        from sim.desk import write_desk

        print(json.dumps(write_desk(Path(argv[1]), seed), indent=1, default=float))
    elif len(argv) >= 4 and argv[0] == "run":
        print(json.dumps(run(Path(argv[1]), argv[2], Path(argv[3]), argv[4:]), indent=1))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
