"""`chord-robot flow`: CHORD 4D generation, scan + task -> FLOW.zarr, guided by given videos
(``--prior video``) or by Wan 2.2 score distillation (``--prior wan``)."""

from __future__ import annotations

from pathlib import Path

import typer


def flow(
    scan: Path = typer.Option(..., help="The scan (PLY, OBJ, GLB or scene.toml)."),
    task: str = typer.Option(..., help="The task in words, e.g. 'open the lid'."),
    out: Path = typer.Option(..., "-o", "--out", help="Write FLOW.zarr here."),
    prior: str = typer.Option("video", help="video (given videos, CPU) | wan (Wan 2.2 SDS, GPU)."),
    model: Path | None = typer.Option(None, help="wan: the diffusers directory of the Wan 2.2 weights (default: the local Hugging Face cache)."),
    variant: str | None = typer.Option(None, help="wan: i2v-a14b (the paper's, default) | ti2v-5b."),
    size: str | None = typer.Option(None, help="wan: render size WIDTHxHEIGHT, multiples of the model's 16 (A14B) or 32 (5B), e.g. 64x48 (default: the preset's long side at 832:464)."),
    tau_schedule: str | None = typer.Option(None, help="wan: noise levels per iteration: annealed (the paper's W(tau) schedule, default) | uniform (ablation)."),
    store: str | None = typer.Option(None, help="Deformations over time: fenwick (the paper's tree, default) | per-frame (ablation: independent frames)."),
    rigid_parts: bool = typer.Option(False, "--rigid-parts", help="The moving objects are made of rigid parts (a laptop, a lamp; not cloth): penalise each part's deviation from a rigid motion, hold touching parts together, and turn each part not resting on the table about its joint as a whole."),
    allow_cpu: bool = typer.Option(False, "--allow-cpu", help="wan: run without a CUDA GPU (slow; the estimate is printed)."),
    continue_from: Path | None = typer.Option(None, help="A previous FLOW.zarr: its last frame is this flow's rest pose (chaining)."),
    video: list[Path] = typer.Option([], help="A guidance video (mp4, ... or .npy); repeat for several."),
    camera: list[Path] = typer.Option([], help="The camera JSON of each --video, in the same order."),
    background: list[Path] = typer.Option([], help="Optional: per video, an image of the view without the movable objects."),
    preset: str = typer.Option("cpu", help="paper | fast | cpu."),
    frames: int | None = typer.Option(None, help="Frames of the flow (default: the preset's; wan: 1 + 4k, e.g. 9, 17, 41)."),
    iters: int | None = typer.Option(None, help="Motion iterations (default: the preset's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its checkpoint (FLOW.zarr.ckpt)."),
    seed: int | None = typer.Option(None, help="Seed (default: the preset's)."),
    threads: int = typer.Option(1, help="torch intra-op threads; 1 is fastest on a shared or 2-core CPU."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply scan coordinates by this to get metres."),
    mesh_fit: bool = typer.Option(True, "--mesh-fit/--no-mesh-fit", help="Fit mesh objects' Gaussians to renders of the mesh (off: the surface samples as they are)."),
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

    from chord_robot.errors import InputError
    from chord_robot.app.flowrun import flow_config, generate_flow, parse_size, prepare_flow

    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    console = Console()
    config = flow_config(preset, prior, frames, iters, seed, variant=variant,
                         size=parse_size(size) if size is not None else None, tau_schedule=tau_schedule,
                         store=store, rigid_parts=rigid_parts)
    if not mesh_fit:
        import dataclasses

        config = dataclasses.replace(config, mesh_fit=dataclasses.replace(config.mesh_fit, enabled=False))
    inputs = prepare_flow(scan, videos=video, cameras=camera, backgrounds=background or None, config=config,
                          task=task, up=up, scale=scale, model=model, continue_from=continue_from,
                          allow_cpu=allow_cpu)
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

        torch.set_num_threads(threads)
        result, summary = generate_flow(inputs, task, out, resume=resume, progress=progress,
                                        log=lambda m: bar.console.print(f"  {m}"))
    table = Table(title=f"{out.name}: {result.num_frames} frames at {result.fps:.3g} fps, prior {result.prior}")
    for col in ("object", "points", "static", "max displacement (m)", "LBS reproduction (mm)"):
        table.add_column(col)
    for name, motion in result.objects.items():
        repro = summary["reproduction_mm"].get(name)
        table.add_row(name, f"{len(motion.points):,}", "yes" if motion.static else "",
                      f"{float(motion.displacement.max()):.3f}", "" if repro is None else f"{repro:.2f}")
    console.print(table)
    grads = summary["deform_grad"]
    if grads:
        console.print(f"deformation gradient norm: max {max(grads):.3g}, last {grads[-1]:.3g} "
                      f"({sum(g > 0 for g in grads)} of {len(grads)} motion iterations non-zero)")
    console.print(f"wrote {out} ({summary['iterations']} iterations, {summary['seconds']:.0f} s"
                  + (f", {summary['rollbacks']} rollbacks" if summary["rollbacks"] else "") + ")")
