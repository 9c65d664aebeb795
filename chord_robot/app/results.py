"""Evaluation results (DESIGN.md §3): `results.json`, `summary.md` and plots.

``results.json``::

    {"suite", "flow_source", "wall_time", "tasks": {NAME: {"successes", "ci95": [lo, hi],
        "metric": {"name", "unit", "success"}, "trials": [
        {"seed", "success", "failure_stage": null|"reset"|"flow"|"plan"|"grasp"|"reach"|"execute",
         "failure": null|"one line", "verdict", "flow_note", "metric", "threshold", "times"}]}}}

The interval is Wilson's score interval at 95%. ``metric`` names what a trial's ``metric``
measures and in what unit, and the success test; ``threshold`` is the value it had to pass in
that trial. Several sources evaluated together (`write_comparison`) add ``comparison.md`` and
``comparison.png`` in the paper's layout.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from chord_robot.atomic import atomic_path, write_text_atomic

STAGES = ("reset", "flow", "plan", "grasp", "reach", "execute")
"""Where a trial can fail, in order (`chord_robot.app.trial.FAILURE_STAGES`)."""


@dataclass(frozen=True)
class TrialResult:
    """One trial of one task.

    Attributes:
        seed: the seed the task was reset with.
        success: whether the task's evaluate() said success.
        failure_stage: None on success, else the first stage that failed.
        metric: the task's metric (e.g. the final lid angle in degrees).
        times: seconds spent per stage.
        failure: why it failed, one line (None on success).
        verdict: the task's account of its verdict ("lid at 3.2 deg ...").
        metric_info: what the metric measures (`sim.tasks.base.Metric`; None: unknown).
        flow_note: the task's measure of what the flow asked ("the flow turns the lid ...").
    """

    seed: int
    success: bool
    failure_stage: str | None
    metric: float
    times: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    verdict: str = ""
    metric_info: object = None
    flow_note: str = ""

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
    info = next((t.metric_info for t in trials if t.metric_info is not None), None)
    metric = ({"name": info.name, "unit": info.unit, "success": info.describe().split("; ", 1)[1]}
              if info is not None else None)
    return {"successes": succ, "ci95": [round(lo, 4), round(hi, 4)], "metric": metric,
            "trials": [_trial_dict(t) for t in trials]}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _trial_dict(t: TrialResult) -> dict:
    return {"seed": t.seed, "success": t.success, "failure_stage": t.failure_stage, "failure": t.failure,
            "verdict": t.verdict, "flow_note": t.flow_note, "metric": _finite(t.metric),
            "threshold": t.metric_info.threshold if t.metric_info is not None else None,
            "times": {k: round(float(v), 4) for k, v in t.times.items()}}


def results_dict(suite: str, flow_source: str, results: dict[str, list[TrialResult]],
                 wall_time: float | None = None) -> dict:
    return {"suite": suite, "flow_source": flow_source,
            "wall_time": round(wall_time, 1) if wall_time is not None else None,
            "tasks": {k: task_entry(v) for k, v in results.items()}}


def summary_markdown(data: dict, wall_time: float | None = None) -> str:
    """A table per task (successes, 95% interval, median metric and time) and the failure funnel."""
    lines = [f"# Evaluation: suite `{data['suite']}`, flow source `{data['flow_source']}`", ""]
    if wall_time is not None:
        lines += [f"Wall time: {wall_time:.0f} s", ""]
    lines += ["| task | successes | 95% CI | median metric | metric: unit; success test | median trial time (s) |",
              "|---|---|---|---|---|---|"]
    for name, e in data["tasks"].items():
        n = len(e["trials"])
        metrics = sorted(t["metric"] for t in e["trials"] if t["metric"] is not None)
        times = sorted(sum(t["times"].values()) for t in e["trials"])
        med = lambda v: v[len(v) // 2] if v else float("nan")  # noqa: E731
        m = e.get("metric")
        about = f"{m['name']}: {m['unit']}; {m['success']}" if m else "-"
        lines.append(f"| {name} | {e['successes']}/{n} | [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}] | "
                     f"{med(metrics):.3f} | {about} | {med(times):.1f} |")
    lines += ["", "## Failure funnel", "", funnel_markdown(data)]
    failed = [(name, t) for name, e in data["tasks"].items() for t in e["trials"] if not t["success"]]
    if failed:
        lines += ["## Failed trials", ""]
        lines += [f"- {name} seed {t['seed']}, at {t['failure_stage']}: {t['failure']}"
                  + (f" ({t['flow_note']})" if t.get("flow_note") else "") for name, t in failed]
    return "\n".join(lines) + "\n"


def funnel_markdown(data: dict) -> str:
    """Trials surviving each stage of `STAGES`, per task (a trial fails at its first failing
    stage)."""
    lines = ["Trials surviving each stage (a trial fails at its first failing stage).", "",
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
    data = results_dict(suite, flow_source, results, wall_time)
    write_text_atomic(out / "results.json", json.dumps(data, indent=2))
    write_text_atomic(out / "summary.md", summary_markdown(data, wall_time))
    for name, trials in results.items():
        plot_task(out / f"{name}.png", name, trials)
    return data


def plot_task(path: Path, name: str, trials: list[TrialResult]) -> None:
    """Bar chart of the metric per trial, green for success and red for failure, with the
    success threshold drawn (per trial where it differs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    xs = range(len(trials))
    ax.bar(xs, [t.metric if math.isfinite(t.metric) else 0 for t in trials],
           color=["tab:green" if t.success else "tab:red" for t in trials])
    ax.set_xticks(list(xs), [f"seed {t.seed}\n{t.failure_stage or 'ok'}" for t in trials], fontsize=7)
    info = next((t.metric_info for t in trials if t.metric_info is not None), None)
    if info is not None:
        for x, t in zip(xs, trials, strict=True):
            if t.metric_info is not None:
                ax.hlines(t.metric_info.threshold, x - 0.45, x + 0.45, colors="black", linestyles="--", lw=1)
        ax.plot([], [], "k--", lw=1, label=f"success threshold ({'below' if info.below else 'at or above'})")
        ax.legend(fontsize=7, loc="best")
        ax.set_ylabel(f"{info.name}\n({info.unit})", fontsize=8)
    else:
        ax.set_ylabel("metric")
    ax.set_title(f"{name}: {sum(t.success for t in trials)}/{len(trials)} successes")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def comparison_markdown(per_source: dict[str, dict]) -> str:
    """The paper's layout: rows are tasks, columns flow sources, cells successes/trials with
    the Wilson 95% interval; then wall times, what each task's test is, and each source's
    failure funnel. ``per_source``: source -> its `results_dict`."""
    sources = list(per_source)
    tasks = list(dict.fromkeys(t for d in per_source.values() for t in d["tasks"]))
    suite = next(iter(per_source.values()))["suite"]
    lines = [f"# Comparison: suite `{suite}`", "",
             "Successes / trials per task and flow source, with Wilson's 95% interval.", "",
             "| task | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for task in tasks:
        cells = []
        for s in sources:
            e = per_source[s]["tasks"].get(task)
            cells.append(f"{e['successes']}/{len(e['trials'])} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
                         if e is not None else "-")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    walls = [per_source[s].get("wall_time") for s in sources]
    lines.append("| wall time (s) | " + " | ".join(f"{w:.0f}" if w is not None else "-" for w in walls) + " |")
    lines += ["", "Success tests:", ""]
    for task in tasks:
        m = next((d["tasks"][task]["metric"] for d in per_source.values()
                  if task in d["tasks"] and d["tasks"][task].get("metric")), None)
        if m is not None:
            lines.append(f"- {task}: {m['name']} ({m['unit']}); {m['success']}")
    for s in sources:
        lines += ["", f"## Failure funnel: {s}", "", funnel_markdown(per_source[s])]
    return "\n".join(lines) + "\n"


def plot_comparison(path: Path, per_source: dict[str, dict]) -> None:
    """Grouped bars: success rate per task and source, with Wilson 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sources = list(per_source)
    tasks = list(dict.fromkeys(t for d in per_source.values() for t in d["tasks"]))
    width = 0.8 / len(sources)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(tasks), 3.4), dpi=100)
    for i, s in enumerate(sources):
        xs, rates, lo, hi = [], [], [], []
        for j, task in enumerate(tasks):
            e = per_source[s]["tasks"].get(task)
            if e is None:
                continue
            rate = e["successes"] / len(e["trials"])
            xs.append(j - 0.4 + width * (i + 0.5))
            rates.append(rate)
            lo.append(rate - e["ci95"][0])
            hi.append(e["ci95"][1] - rate)
        ax.bar(xs, rates, width * 0.9, yerr=[lo, hi], capsize=2, label=s)
    ax.set_xticks(np.arange(len(tasks)), tasks, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (Wilson 95% interval)", fontsize=8)
    ax.legend(fontsize=7, ncol=len(sources), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_comparison(out_dir: str | os.PathLike[str], per_source: dict[str, dict]) -> str:
    """Write comparison.md and comparison.png into ``out_dir``; returns the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = comparison_markdown(per_source)
    write_text_atomic(out / "comparison.md", text)
    plot_comparison(out / "comparison.png", per_source)
    return text
