"""`chord-robot flow`: CHORD 4D generation, scan + task -> FLOW.zarr, guided by given videos
(``--prior video``) or by score distillation from a video model (``--prior wan``: the shipped
prior by default, or Wan 2.2 weights with ``--model``)."""

from __future__ import annotations

from pathlib import Path

import typer

from chord_robot.app.flowconfig import choose_prior, flow_config, with_overrides


def _flow(
    scan: Path = typer.Option(..., help="The scan (PLY, OBJ, GLB or scene.toml)."),
    task: str = typer.Option(..., help="The task in words, e.g. 'open the lid'."),
    out: Path = typer.Option(..., "-o", "--out", help="Write FLOW.zarr here."),
    prior: str | None = typer.Option(None, help="video (fit given videos) | wan (distil a video model: the shipped prior on a CPU, or Wan 2.2 weights). Default: video when --video is given, else wan."),
    model: Path | None = typer.Option(None, help="wan: a diffusers directory of Wan 2.2-layout weights, or a prior `train-prior` made (default: the shipped prior when --prior is not given, else the local Hugging Face cache)."),
    object_name: str | None = typer.Option(None, "--object", help="The one object to move; the others are held still (default for the shipped prior or a train-prior one: the object the task names)."),
    allow_cpu: bool = typer.Option(False, "--allow-cpu", help="wan: run without a CUDA GPU (slow; the estimate is printed)."),
    continue_from: Path | None = typer.Option(None, help="A previous FLOW.zarr: its last frame is this flow's rest pose (chaining)."),
    video: list[Path] = typer.Option([], help="A guidance video (mp4, ... or .npy); repeat for several."),
    camera: list[Path] = typer.Option([], help="The camera JSON of each --video, in the same order."),
    background: list[Path] = typer.Option([], help="Optional: per video, an image of the view without the movable objects."),
    preset: str | None = typer.Option(None, help="paper | fast | cpu | shipped (default: by situation: cpu for videos, shipped for the shipped prior or a train-prior one (at its clips' size), paper for Wan 2.2 on a CUDA GPU, else cpu)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its checkpoint (FLOW.zarr.ckpt)."),
    device: str = typer.Option("auto", help="Where the run lives: the 4D model, its optimiser, the renders (gsplat on CUDA) and the Wan prior. auto | cpu | cuda (auto: CUDA when a GPU is visible)."),
    threads: int | None = typer.Option(None, help="torch intra-op threads (default: torch's, one per core; on a busy machine 1 can be faster). Flows differ by micrometres between thread counts."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply scan coordinates by this to get metres."),
    **overrides,
) -> None:
    """Generate how the scene's objects move for the task (an ObjectFlow), guided by videos or by Wan 2.2."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from chord_robot.app.flowrun import prepare_flow, run_flow
    from chord_robot.errors import InputError

    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    if len(camera) != len(video):
        raise InputError(f"{len(video)} --video but {len(camera)} --camera: give one camera JSON per video")
    if background and len(background) != len(video):
        raise InputError(f"{len(video)} --video but {len(background)} --background: give one image per video")
    console = Console()
    choice = choose_prior(prior, model, preset, bool(video), task=task)
    console.print(f"prior: {choice.why}")
    config = flow_config(choice.preset, choice.prior, model=choice.model, **overrides)
    inputs = prepare_flow(scan, videos=video, cameras=camera, backgrounds=background or None, config=config,
                          task=task, up=up, scale=scale, model=choice.model, continue_from=continue_from,
                          allow_cpu=allow_cpu, object_name=object_name, device=device)
    for note in inputs.notes:
        console.print(note, style="yellow" if note.startswith("warning") else None)
    columns = (TextColumn("[bold]flow"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[terms]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task("flow", total=config.appearance_iterations + config.iterations, terms="")

        def progress(done: int, total: int, terms: dict[str, float]) -> None:
            shown = " ".join(f"{k[:5]}={v:.3g}" for k, v in terms.items())
            bar.update(job, completed=done, terms=shown)

        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        run = run_flow(inputs, task, out, resume=resume, progress=progress,
                            log=lambda m: bar.console.print(f"  {m}"))
    result = run.flow
    table = Table(title=f"{out.name}: {result.num_frames} frames at {result.fps:.3g} fps, prior {result.prior}")
    for col in ("object", "points", "static", "max displacement (m)", "LBS reproduction (mm)"):
        table.add_column(col)
    for name, motion in result.objects.items():
        repro = run.reproduction_mm.get(name)
        table.add_row(name, f"{len(motion.points):,}", "yes" if motion.static else "",
                      f"{float(motion.displacement.max()):.3f}", "" if repro is None else f"{repro:.2f}")
    console.print(table)
    grads = run.deform_grad
    if grads:
        console.print(f"deformation gradient norm: max {max(grads):.3g}, last {grads[-1]:.3g} "
                      f"({sum(g > 0 for g in grads)} of {len(grads)} motion iterations non-zero)")
    console.print(f"wrote {out} ({run.iterations} iterations, {run.seconds:.0f} s"
                  + (f", {run.rollbacks} rollbacks" if run.rollbacks else "") + ")")


flow = with_overrides(_flow)
"""The command: `_flow` with one option per flow override (`chord_robot.app.flowconfig`)."""
