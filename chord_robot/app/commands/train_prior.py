"""`chord-robot train-prior`: clips -> a small Wan-architecture video prior -> a Wan 2.2 directory.

Wires `sim.clips` (rendered clips of prompted motions) to `flowgen.priors.train` and saves a
directory that `chord-robot flow --prior wan --model DIR` loads like the 14B model. With
``--check N`` it then samples the saved model with diffusers' own WanImageToVideoPipeline from
N held-out laptop first frames (a different seed: sizes, poses, colours and cameras it never
saw), fits the lid angle on every sampled frame (`sim.clips.fit_angles`) and counts the samples
whose lid moved the prompted way; the figures go to DIR/check.json and the clips to
DIR/check.png (rows: sample, ground truth).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

LAPTOP_PROMPTS = ("the laptop lid closes", "the laptop lid opens")


def check_prior(model_dir: Path, count: int, seed: int, guidance: float, steps: int, threshold_deg: float = 10.0,
                textured: float = 0.0, split_starts: bool = False, log=print) -> dict:
    """Sample ``count`` held-out laptop clips (prompts alternating close/open; a fraction
    ``textured`` with patch textures) and measure them.

    A sample moves "the prompted way" when its fitted lid angle changes by more than
    ``threshold_deg`` in the prompted direction between the first and the last frame.
    """
    import numpy as np

    from flowgen.priors.train import sample_videos
    from sim import world as sim_world
    from sim.clips import ClipConfig, fit_angles, generate

    world = sim_world.create()
    try:
        held = generate(world, count, seed=seed + 10_000, config=ClipConfig(textured=textured, split_starts=split_starts),
                        prompts=LAPTOP_PROMPTS)
        prompts = [held.prompts[k] for k in held.prompt_ids]
        samples = sample_videos(model_dir, held.videos[:, 0], prompts, seed=seed, steps=steps, guidance=guidance,
                                num_frames=held.videos.shape[1])
        rows, good = [], 0
        for i, prompt in enumerate(prompts):
            fitted = fit_angles(world, held.scenes[i], samples[i])
            change = float(fitted[-1] - fitted[0])
            sign = -1.0 if "closes" in prompt else 1.0
            ok = sign * change > threshold_deg
            good += ok
            rows.append({"prompt": prompt, "fitted_deg": fitted.round(1).tolist(),
                         "truth_deg": held.angles[i].round(1).tolist(), "change_deg": round(change, 1), "ok": bool(ok)})
            log(f"  {prompt:24s} fitted {fitted[0]:6.1f} -> {fitted[-1]:6.1f} deg (truth "
                f"{held.angles[i][0]:6.1f} -> {held.angles[i][-1]:6.1f}) {'ok' if ok else 'WRONG'}")
    finally:
        world.close()
    grid = np.concatenate([np.concatenate([np.concatenate(list(s), 1), np.concatenate(list(t), 1)], 0)
                           for s, t in zip(samples, held.videos, strict=True)], 0)
    return {"samples": count, "moved_as_prompted": int(good), "threshold_deg": threshold_deg, "guidance": guidance,
            "steps": steps, "textured": textured, "clips": rows, "_grid": grid}


def train_prior_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="Write the model directory here (Wan 2.2 I2V diffusers layout)."),
    minutes: float | None = typer.Option(None, help="Wall-clock cap for training (stops early; steps done are logged)."),
    seed: int = typer.Option(0, help="Seeds the clips, the initialisation and every batch."),
    clips: int = typer.Option(3000, help="Training clips to render."),
    steps: int | None = typer.Option(None, help="Transformer steps (default: the config's)."),
    vae_steps: int | None = typer.Option(None, help="VAE steps (default: the config's; with --init, 0 keeps its VAE)."),
    vae_frames: int | None = typer.Option(None, help="Frames per VAE training window, 1 + 4k (default: the config's)."),
    dataset: Path | None = typer.Option(None, help="Clip set .npz: read if it exists, else written there."),
    textured: float = typer.Option(0.0, help="Fraction of rendered clips (training and check) whose object carries the sim tasks' coloured patches."),
    textured_clips: int = typer.Option(0, help="Extra training clips, every one textured, rendered from seed + 1 and appended."),
    split_starts: bool = typer.Option(False, "--split-starts", help="Disjoint start states per prompt (how the v1/v2 priors were trained; see docs/trained-prior.md)."),
    init: Path | None = typer.Option(None, help="Fine-tune this trained prior (its VAE and text encoder kept) instead of starting afresh."),
    check: int = typer.Option(10, help="Held-out laptop samples to generate and measure after training (0: none)."),
    check_only: bool = typer.Option(False, "--check-only", help="Skip training: only check the model already in --out."),
    guidance: float = typer.Option(4.0, help="Guidance scale of the check's sampling."),
    sample_steps: int = typer.Option(30, help="Denoising steps of the check's sampling."),
    threads: int = typer.Option(1, help="Torch threads, and processes rendering the clips (the machine is shared: 1 by default)."),
) -> None:
    """Train a small video prior of the Wan 2.2 I2V architecture on rendered clips of prompted motions."""
    from dataclasses import replace

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chord_robot.atomic import write_text_atomic
    from chord_robot.errors import InputError

    if clips < 8 or check < 0 or textured_clips < 0 or (minutes is not None and minutes <= 0):
        raise InputError("--clips must be >= 8, --check and --textured-clips >= 0 and --minutes > 0")
    if init is not None and not (init / "train_log.json").is_file():
        raise InputError(f"--init needs a directory written by train-prior ({init / 'train_log.json'} is missing)")
    if not 0.0 <= textured <= 1.0:
        raise InputError(f"--textured must be in [0, 1], got {textured}")
    if check_only and not (out / "model_index.json").is_file():
        raise InputError(f"--check-only needs a trained model in {out} (no model_index.json there)")
    import torch

    torch.set_num_threads(max(1, threads))
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    if not check_only:
        from flowgen.priors.train import (
            TrainConfig,
            load_trained,
            reconstruction_psnr,
            save_prior,
            train_prior,
        )
        from sim import world as sim_world
        from sim.clips import ClipConfig, concatenate_clips, generate, load_clips, save_clips

        start = load_trained(init) if init is not None else None
        config = replace(start.config, seed=seed) if start is not None else TrainConfig(seed=seed)
        config = replace(config, steps=steps or config.steps,
                         vae_steps=config.vae_steps if vae_steps is None else vae_steps,
                         vae_frames=vae_frames or config.vae_frames)
        with Progress(*columns, console=console) as bar:
            if dataset is not None and dataset.is_file():
                clip_set = load_clips(dataset)
                console.print(f"read {len(clip_set)} clips from {dataset}")
            else:
                task = bar.add_task("rendering clips", total=clips + textured_clips)
                world = sim_world.create()
                try:
                    clip_set = generate(world, clips, seed, ClipConfig(textured=textured, split_starts=split_starts),
                                        progress=lambda i, n: bar.update(task, completed=i), workers=threads)
                    if textured_clips:
                        extra = generate(world, textured_clips, seed + 1,
                                         ClipConfig(textured=1.0, split_starts=split_starts),
                                         progress=lambda i, n: bar.update(task, completed=clips + i), workers=threads)
                        clip_set = concatenate_clips(clip_set, extra)
                finally:
                    world.close()
                if dataset is not None:
                    save_clips(dataset, clip_set)
            tasks = {"vae": bar.add_task("VAE", total=config.vae_steps),
                     "latents": bar.add_task("encoding clips", total=len(clip_set)),
                     "transformer": bar.add_task("transformer", total=config.steps)}

            def progress(stage: str, step: int, total: int, loss: float) -> None:
                label = {"vae": "VAE", "latents": "encoding clips", "transformer": "transformer"}[stage]
                text = f"{label} loss {loss:.4f}" if stage != "latents" else label
                bar.update(tasks[stage], completed=step, description=text)

            trained = train_prior(clip_set.videos, clip_set.prompt_ids, clip_set.prompts, config, progress, minutes,
                                  start)
        world = sim_world.create()
        try:  # reconstruction of clips the VAE never saw
            unseen = generate(world, 32, seed + 20_000, ClipConfig(textured=textured, split_starts=split_starts))
        finally:
            world.close()
        psnr = reconstruction_psnr(trained.vae, unseen.videos)
        trained.log["vae"]["psnr_db"] = psnr
        save_prior(trained, out)
        log = trained.log
        console.print(f"VAE: {len(log['vae']['loss'])} steps, {log['vae']['seconds']:.0f} s, reconstruction "
                      f"PSNR {psnr:.1f} dB (unseen clips); transformer: {len(log['transformer']['loss'])} steps, "
                      f"{log['transformer']['seconds']:.0f} s, loss {log['transformer']['loss'][0]:.3f} -> "
                      f"{sum(log['transformer']['loss'][-100:]) / len(log['transformer']['loss'][-100:]):.3f}")
        console.print(f"wrote {out}")
    if check:
        console.print(f"sampling {check} held-out laptop clips with WanImageToVideoPipeline ...")
        result = check_prior(out, check, seed, guidance, sample_steps, textured=textured, split_starts=split_starts,
                             log=console.print)
        import imageio.v3 as iio

        from chord_robot.atomic import atomic_path

        grid = result.pop("_grid")
        with atomic_path(out / "check.png") as tmp:
            iio.imwrite(tmp, grid.repeat(2, 0).repeat(2, 1), extension=".png")
        write_text_atomic(out / "check.json", json.dumps(result, indent=1))
        console.print(f"lid moved as prompted in {result['moved_as_prompted']}/{check} samples "
                      f"(check.json, check.png in {out})")
