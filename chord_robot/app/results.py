"""Evaluation results (DESIGN.md §3): `results.json`, `summary.md` and plots.

``results.json``::

    {"suite", "flow_source", "tasks": {NAME: {"successes", "ci95": [lo, hi], "trials": [
        {"seed", "success", "failure_stage": null|"flow"|"grasp"|"reach"|"execute", "metric", "times"}]}}}

The interval is Wilson's score interval at 95%.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chord_robot.atomic import atomic_path, write_text_atomic

STAGES = ("flow", "grasp", "reach", "execute")


@dataclass(frozen=True)
class TrialResult:
    """One trial of one task.

    Attributes:
        seed: the seed the task was reset with.
        success: whether the task's evaluate() said success.
        failure_stage: None on success, else the first stage that failed.
        metric: the task's metric (e.g. the final lid angle in degrees).
        times: seconds spent per stage.
    """

    seed: int
    success: bool
    failure_stage: str | None
    metric: float
    times: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.failure_stage is not None and self.failure_stage not in STAGES:
            raise ValueError(f"failure_stage must be one of {STAGES} or None, got {self.failure_stage!r}")
        if self.success and self.failure_stage is not None:
            raise ValueError("a successful trial has no failure stage")


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def task_entry(trials: list[TrialResult]) -> dict:
    """The results.json entry of one task."""
    succ = sum(t.success for t in trials)
    lo, hi = wilson_interval(succ, len(trials))
    return {"successes": succ, "ci95": [round(lo, 4), round(hi, 4)], "trials": [_trial_dict(t) for t in trials]}


def _trial_dict(t: TrialResult) -> dict:
    d = asdict(t)
    d["metric"] = float(d["metric"]) if math.isfinite(d["metric"]) else None
    d["times"] = {k: round(float(v), 4) for k, v in d["times"].items()}
    return d


def results_dict(suite: str, flow_source: str, results: dict[str, list[TrialResult]]) -> dict:
    return {"suite": suite, "flow_source": flow_source, "tasks": {k: task_entry(v) for k, v in results.items()}}


def summary_markdown(data: dict, wall_time: float | None = None) -> str:
    """A table per task (successes, 95% interval, median metric and time) and the failure funnel."""
    lines = [f"# Evaluation: suite `{data['suite']}`, flow source `{data['flow_source']}`", ""]
    if wall_time is not None:
        lines += [f"Wall time: {wall_time:.0f} s", ""]
    lines += ["| task | successes | 95% CI | median metric | median trial time (s) |", "|---|---|---|---|---|"]
    for name, e in data["tasks"].items():
        n = len(e["trials"])
        metrics = sorted(t["metric"] for t in e["trials"] if t["metric"] is not None)
        times = sorted(sum(t["times"].values()) for t in e["trials"])
        med = lambda v: v[len(v) // 2] if v else float("nan")  # noqa: E731
        lines.append(f"| {name} | {e['successes']}/{n} | [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}] | "
                     f"{med(metrics):.3f} | {med(times):.1f} |")
    lines += ["", "## Failure funnel", "", "Trials surviving each stage (a trial fails at its first failing stage).", "",
              "| task | trials | " + " | ".join(f"after {s}" for s in STAGES) + " | success |",
              "|---|---|" + "---|" * len(STAGES) + "---|"]
    for name, e in data["tasks"].items():
        n = len(e["trials"])
        alive, cells = n, []
        for s in STAGES:
            alive -= sum(t["failure_stage"] == s for t in e["trials"])
            cells.append(str(alive))
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + f" | {e['successes']} |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | os.PathLike[str], suite: str, flow_source: str,
                  results: dict[str, list[TrialResult]], wall_time: float | None = None) -> dict:
    """Write results.json, summary.md and one plot per task into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = results_dict(suite, flow_source, results)
    write_text_atomic(out / "results.json", json.dumps(data, indent=2))
    write_text_atomic(out / "summary.md", summary_markdown(data, wall_time))
    for name, trials in results.items():
        plot_task(out / f"{name}.png", name, trials)
    return data


def plot_task(path: Path, name: str, trials: list[TrialResult]) -> None:
    """Bar chart of the metric per trial, green for success and red for failure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    xs = range(len(trials))
    ax.bar(xs, [t.metric if math.isfinite(t.metric) else 0 for t in trials],
           color=["tab:green" if t.success else "tab:red" for t in trials])
    ax.set_xticks(list(xs), [f"seed {t.seed}\n{t.failure_stage or 'ok'}" for t in trials], fontsize=7)
    ax.set_ylabel("metric")
    ax.set_title(f"{name}: {sum(t.success for t in trials)}/{len(trials)} successes")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
