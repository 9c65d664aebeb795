"""`chord-robot eval`: the simulated evaluation suite."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def eval_(
    out: Path = typer.Option(..., "-o", "--out", help="Output directory (results.json, summary.md, plots, videos)."),
    suite: str = typer.Option("paper", help="Task suite."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated task names (default: the whole suite)."),
    flow_source: str = typer.Option(
        "oracle", help="oracle (the scripted motion) | video (flowgen, cpu preset, fitted to the task's rendered "
        "video; ~1-2 min per trial) | wan (GPU)."),
    trials: int = typer.Option(8, help="Trials per task (seeds seed..seed+trials-1)."),
    seed: int = typer.Option(0, help="First seed."),
    workers: int = typer.Option(1, help="Worker processes."),
    frames: int = typer.Option(41, help="Frames per oracle flow and of the reference video (video flows have "
                               "the cpu preset's 21 frames over the same clip)."),
    record: bool = typer.Option(True, help="Record a video of the first trial of each task."),
) -> None:
    """Run the simulated evaluation suite: flow -> plan -> PyBullet execution -> success, per trial."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chord_robot.app.evaluate import EvalConfig, run_suite, suite_tasks
    from chord_robot.app.results import write_results

    names = tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else ()
    config = EvalConfig(suite, names, flow_source, trials, seed, workers, frames, record)
    names = suite_tasks(config)
    console = Console()
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        job = bar.add_task(f"eval {suite} ({flow_source} flows)", total=len(names) * trials)

        def step(name, r) -> None:
            verdict = "[green]success[/green]" if r.success else f"[red]failed at {r.failure_stage}[/red]"
            bar.console.print(f"{name} seed {r.seed}: {verdict} (metric {r.metric:.3f})")
            bar.advance(job)

        results = run_suite(config, out, progress=step)
    wall = time.perf_counter() - start
    data = write_results(out, suite, flow_source, results, wall_time=wall)
    console.print((out / "summary.md").read_text())
    console.print(f"wrote {out / 'results.json'} ({wall:.0f} s)")
    if not any(e["successes"] for e in data["tasks"].values()):
        raise typer.Exit(1)
