"""`chord-robot demo`: the whole chain on the shipped example, on a CPU, in minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def demo(
    out: Path = typer.Option(Path("demo-out"), "-o", "--out", help="Output directory."),
    example: Optional[Path] = typer.Option(None, help="Example directory (default: the repository's examples/laptop)."),
    source: str = typer.Option("generated", help="generated (the task's words distilled from the shipped prior) | video (the example's video fitted by the video prior)."),
    iters: Optional[int] = typer.Option(None, help="Flow motion iterations (default: the source's preset's)."),
    frames: Optional[int] = typer.Option(None, help="Flow frames (default: the source's preset's)."),
) -> None:
    """Words -> flow (the shipped prior) -> plan -> PyBullet execution -> report, on the
    close-laptop example (`--source video`: the example's video fitted instead). Writes
    flow.zarr, plan.zarr, flow.mp4, execution.mp4, report.md and trajectory.png into OUT;
    exits 1 if the laptop is not closed."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chord_robot.app.demo import DEFAULT_EXAMPLE, STAGES, DemoConfig, run_demo

    config = DemoConfig(example or DEFAULT_EXAMPLE, source=source, iterations=iters, frames=frames)
    console = Console()
    start = time.perf_counter()
    columns = (TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=console) as bar:
        jobs = {s: bar.add_task(s, total=1, start=False, note="") for s in STAGES}
        current: list[str] = []

        def stage(name: str) -> None:
            if current:
                bar.update(jobs[current[-1]], completed=bar.tasks[jobs[current[-1]]].total)
                bar.stop_task(jobs[current[-1]])
            current.append(name)
            bar.start_task(jobs[name])

        def flow_progress(done: int, total: int, terms: dict) -> None:
            bar.update(jobs["flow"], total=total, completed=done, note=f"loss {terms.get('total', float('nan')):.4g}")

        result = run_demo(out, config, stage=stage, flow_progress=flow_progress,
                          log=lambda m: bar.console.print(f"  {m}"))
        stage_done = jobs[current[-1]]
        bar.update(stage_done, completed=bar.tasks[stage_done].total)
    console.print((out / "report.md").read_text())
    console.print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")
    if not result.success:
        raise typer.Exit(1)
