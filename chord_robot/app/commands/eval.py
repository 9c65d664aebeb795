"""`chord-robot eval`: the simulated evaluation suite."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def eval_(
    out: Path = typer.Option(..., "-o", "--out", help="Output directory (results.json, summary.md, plots, videos; "
                             "with several sources one folder per source and comparison.md/.png)."),
    suite: str = typer.Option("paper", help="Task suite."),
    tasks: Optional[str] = typer.Option(None, help="Comma-separated task names (default: the whole suite)."),
    flow_source: str = typer.Option(
        "oracle", help="Comma-separated sources: oracle (the scripted motion) | video (flowgen, cpu preset, fitted "
        "to the task's rendered video, its camera chosen from the scan alone, no background image; ~1-2 min per "
        "trial) | video-privileged (the same with a camera framed from the scripted motion and the object-free "
        "background) | chord (the task's scan and words distilled from the shipped prior, or --model; ~2.5 min per trial)."),
    trials: int = typer.Option(8, help="Trials per task (seeds seed..seed+trials-1)."),
    seed: int = typer.Option(0, help="First seed."),
    workers: int = typer.Option(1, help="Worker processes (with --ray local: the local Ray instance's CPUs)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="local|auto|HOST:PORT",
                                      help="Run the trials on Ray: 'local' starts an instance on this machine, "
                                      "'auto' joins the cluster this machine belongs to (ray start), HOST:PORT "
                                      "that cluster; needs chord-robot\\[ray]. Default: the local process pool."),
    frames: int = typer.Option(41, help="Frames per oracle flow and of the reference video (video flows have "
                               "the cpu preset's 21 frames over the same clip)."),
    record: bool = typer.Option(True, help="Record a video of the first trial of each task."),
    model: Optional[Path] = typer.Option(None, help="Wan 2.2 weights for the chord source (default: the shipped "
                                         "prior; other weights need a CUDA GPU)."),
    flow_iters: Optional[int] = typer.Option(None, help="Iterations of the video and chord sources' runs "
                                             "(default: their presets'; fewer for a quick look)."),
    flow_frames: Optional[int] = typer.Option(None, help="Frames of the video and chord sources' flows "
                                              "(default: their presets')."),
) -> None:
    """Run the simulated evaluation suite: flow -> plan -> PyBullet execution -> success, per trial."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chord_robot.app.evaluate import EvalConfig, run_suite, suite_tasks
    from chord_robot.app.results import write_comparison, write_results
    from chord_robot.errors import InputError

    names = tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else ()
    sources = list(dict.fromkeys(s.strip() for s in flow_source.split(",") if s.strip()))
    if not sources:
        raise InputError("--flow-source names no source")
    if flow_iters is not None and flow_iters < 1:
        raise InputError("--flow-iters must be at least 1")
    configs = {s: EvalConfig(suite, names, s, trials, seed, workers, frames, record,
                             str(model) if model is not None else None, flow_iters, flow_frames, ray) for s in sources}
    for config in configs.values():  # every source checked before any trial runs
        names = suite_tasks(config)
    console = Console()
    per_source = {}
    for source, config in configs.items():
        folder = out / source if len(sources) > 1 else out
        start = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            job = bar.add_task(f"eval {suite} ({source} flows)", total=len(names) * trials)

            def step(name, r) -> None:
                verdict = "[green]success[/green]" if r.success else f"[red]failed at {r.failure_stage}[/red]"
                bar.console.print(f"{name} seed {r.seed}: {verdict} (metric {r.metric:.3f})"
                                  + (f": {r.failure}" if r.failure else ""))
                bar.advance(job)

            results = run_suite(config, folder, progress=step)
        wall = time.perf_counter() - start
        per_source[source] = write_results(folder, suite, source, results, wall_time=wall)
        console.print((folder / "summary.md").read_text())
        console.print(f"wrote {folder / 'results.json'} ({wall:.0f} s)")
    write_comparison(out, per_source)
    console.print(f"wrote {out / 'comparison.md'}")
    if not any(e["successes"] for data in per_source.values() for e in data["tasks"].values()):
        raise typer.Exit(1)
