"""`chord-robot batch`: scan x task x seed jobs from a TOML file, on a local pool or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def batch(
    jobs: Path = typer.Argument(..., help="Jobs file (TOML: \\[defaults] and \\[\\[job]] entries; see the README)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: jobs/<id>/ (flow.zarr, plan.zarr, "
                             "result.json), results.jsonl, summary.md. Re-running skips finished jobs."),
    workers: int = typer.Option(1, help="Local worker processes (with --ray local: the local Ray instance's CPUs)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="local|auto|HOST:PORT",
                                      help="Run the jobs on Ray: 'local' starts an instance on this machine, "
                                      "'auto' joins the cluster this machine belongs to (ray start), HOST:PORT "
                                      "that cluster; needs chord-robot\\[ray]. Default: the local process pool."),
    retries: int = typer.Option(2, help="Runs again a job whose worker process died, at most this many times."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run the jobs that failed before again."),
) -> None:
    """Generate, plan and simulate many scan x task x seed jobs; exit 1 if any job failed."""
    from rich.console import Console

    from chord_robot.app.batch import BatchProgress, load_jobs, run_batch
    from chord_robot.app.executors import Executor

    executor = Executor(workers, ray, retries)
    load_jobs(jobs)  # a malformed file stops here, before anything runs
    console = Console(stderr=True)

    def step(state: BatchProgress, row: dict | None) -> None:
        if row is not None:
            verdict = "[green]done[/green]" if row["status"] == "done" else f"[red]failed at {row['stage']}[/red]"
            detail = f": {row['message']}" if row["message"] else ""
            console.print(f"{row['id']}: {verdict}{detail}")
        eta = state.estimate()
        console.print(f"[bold]batch[/bold] {state.done} done, {state.failed} failed, {state.running} running, "
                      f"{state.remaining} remaining ({state.skipped} finished before); {state.elapsed:.0f} s"
                      + (f", about {eta:.0f} s left" if eta is not None else ""))

    console.print(f"running on {executor.label}")
    rows = run_batch(jobs, out, executor, retry_failed=retry_failed, progress=step)
    console.print((out / "summary.md").read_text())
    if any(r["status"] == "failed" for r in rows):
        raise typer.Exit(1)
