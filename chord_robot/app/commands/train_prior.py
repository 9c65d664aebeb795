"""`chord-robot train-prior`: clips -> a small Wan-architecture video prior -> a Wan 2.2 directory.

Wires `sim.clips` (rendered clips of prompted motions) to `flowgen.priors.train` and saves a
directory that `chord-robot flow --prior wan --model DIR` loads like the 14B model. With
``--check N`` it then samples the saved model with diffusers' own WanImageToVideoPipeline from
N held-out first frames per motion (a different seed: sizes, poses, colours, looks and cameras
it never saw), fits the moving object's state on every sampled frame (`sim.clips.fit_angles`)
and counts the samples that moved the prompted way; the figures go to DIR/check.json and two
clips per motion to DIR/check.png (rows: sample, ground truth).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from chord_robot.errors import InputError

THRESHOLDS = {"laptop": 10.0, "lamp": 10.0, "pick": 30.0, "fold": 30.0}
"""How far a sampled clip's measured state must move the prompted way to count: degrees (lid,
lamp head, fold), percent of the carry (pick)."""


def check_prior(model_dir: Path, count: int, seed: int, guidance: float, steps: int, config=None,
                log=print) -> dict:
    """Sample ``count`` held-out clips per motion the prior knows and measure them.

    The held-out clips come from another seed (sizes, poses, colours, looks and cameras the
    prior never saw), drawn with ``config`` (a `sim.clips.ClipConfig`, the training one). Each
    sample's state is fitted per frame (`sim.clips.fit_angles`); it moves "the prompted way"
    when the state changes by more than `THRESHOLDS` in the prompted direction between the
    first and the last frame.
    """
    import numpy as np

    from flowgen.priors.shipped import prompts as trained_prompts
    from flowgen.priors.train_checks import sample_videos
    from sim import world as sim_world
    from sim.clips import MOTIONS, ClipConfig, fit_angles, generate

    config = config or ClipConfig()
    rows, per_motion, strips = [], {}, []
    world = sim_world.create()
    try:
        for k, prompt in enumerate(trained_prompts(model_dir)):
            motion = MOTIONS[prompt]
            held = generate(world, count, seed=seed + 10_000 + k, config=config, prompts=(prompt,))
            samples = sample_videos(model_dir, held.videos[:, 0], [prompt] * count, seed=seed, steps=steps,
                                    guidance=guidance, num_frames=held.videos.shape[1])
            good, threshold = 0, THRESHOLDS[motion.kind]
            for i in range(count):
                fitted = fit_angles(world, held.scenes[i], samples[i])
                change = float(fitted[-1] - fitted[0])
                ok = motion.direction * change > threshold
                good += ok
                rows.append({"prompt": prompt, "fitted": fitted.round(1).tolist(),
                             "truth": held.angles[i].round(1).tolist(), "change": round(change, 1), "ok": bool(ok)})
                log(f"  {prompt:34s} fitted {fitted[0]:6.1f} -> {fitted[-1]:6.1f} (truth "
                    f"{held.angles[i][0]:6.1f} -> {held.angles[i][-1]:6.1f}) {'ok' if ok else 'WRONG'}")
            per_motion[prompt] = {"moved_as_prompted": int(good), "samples": count, "threshold": threshold}
            strips += [np.concatenate([np.concatenate(list(s), 1), np.concatenate(list(t), 1)], 0)
                       for s, t in zip(samples[:2], held.videos[:2], strict=True)]
    finally:
        world.close()
    total = sum(m["moved_as_prompted"] for m in per_motion.values())
    return {"samples": count * len(per_motion), "moved_as_prompted": total, "per_motion": per_motion,
            "guidance": guidance, "steps": steps, "clips": rows, "_grid": np.concatenate(strips, 0)}


def _range(text: str, kind, option: str) -> tuple:
    """"0-2" -> (0, 2) (InputError naming ``option`` otherwise)."""
    try:
        lo, hi = (kind(x) for x in text.split("-"))
    except ValueError:
        raise InputError(f"{option} must be a range like 0-2, got {text!r}") from None
    return lo, hi


def train_prior_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="Write the model directory here (Wan 2.2 I2V diffusers layout)."),
    minutes: float | None = typer.Option(None, help="Wall-clock cap for training (stops early; steps done are logged)."),
    seed: int = typer.Option(0, help="Seeds the clips, the initialisation and every batch."),
    clips: int = typer.Option(3000, help="Training clips to render."),
    size: int | None = typer.Option(None, help="Clip height and width in pixels, a multiple of 16 (default: "
                                    "--init's or, with --check-only, the prior's own; else 32)."),
    steps: int | None = typer.Option(None, help="Transformer steps (default: the config's)."),
    vae_steps: int | None = typer.Option(None, help="VAE steps on clip windows (default: the config's; with --init, 0 and no --vae-image-steps keep its VAE)."),
    vae_image_steps: int | None = typer.Option(None, help="VAE steps on single frames before --vae-steps (default: 0)."),
    vae_frames: int | None = typer.Option(None, help="Frames per VAE training window, 1 + 4k (default: the config's)."),
    vae_width: int | None = typer.Option(None, help="VAE width: channels of its first stage, x2 in the others (default: the config's, 16; a new prior only)."),
    latent_channels: int | None = typer.Option(None, help="VAE latent channels (default: the config's, 8; a new prior only)."),
    vae_noise: float | None = typer.Option(None, help="Scale of the posterior's noise in the VAE's training samples (default: the config's, 1; 0: its mean)."),
    vae_downsample: int | None = typer.Option(None, help="The VAE's spatial factor, 2, 4 or 8 (default: the config's, 4; 2 halves time once, 4 and 8 twice; a new prior only)."),
    vae_motion_weight: float | None = typer.Option(None, help="Extra weight of the pixels where something moves in the VAE's loss (default: the config's, 0)."),
    vae_first_frame_weight: float | None = typer.Option(None, help="Extra weight of each clip's first frame in the VAE's loss (default: the config's, 0)."),
    dataset: Path | None = typer.Option(None, help="Clip set .npz: read if it exists, else written there."),
    textured: float = typer.Option(0.0, help="Fraction of rendered clips (training and check) whose object carries the sim tasks' coloured patches."),
    textured_clips: int = typer.Option(0, help="Extra training clips, every one textured, rendered from seed + 1 and appended."),
    split_starts: bool = typer.Option(False, "--split-starts", help="Disjoint start states per prompt (how the v1/v2 priors were trained; see docs/trained-prior.md)."),
    init: Path | None = typer.Option(None, help="Fine-tune this trained prior (its VAE and text encoder kept; --motions may add motions) instead of starting afresh."),
    motions: str = typer.Option("laptop,lamp,pick,fold", help="Which motions to train (both directions of each): laptop, lamp, pick, fold (comma-separated)."),
    looks: float = typer.Option(0.0, help="Probability that each surface (table, floor, object parts, distractors) carries a procedural texture."),
    distractors: str = typer.Option("0-0", help="Range of static distractor objects on the table, e.g. 0-2."),
    free_colours: float = typer.Option(0.0, help="Fraction of clips whose moving object takes any colours."),
    floor: bool = typer.Option(False, "--floor", help="A coloured or textured floor below the table."),
    arm_share: str = typer.Option("0.2-0.5", help="Range of the share of a lamp head's tilt carried by its arm joint."),
    pick_distance: str | None = typer.Option(None, help="Range of a pick clip's object-to-plate distance in metres, e.g. 0.2-0.45 (at least the plate's radius + 0.07; default: 0.16-0.30)."),
    move_share: str | None = typer.Option(None, help="Range of the arm's share of the tilt a lamp clip moves through, e.g. 0.5-0.8 (its rest pose keeps --arm-share; default: --arm-share throughout)."),
    check: int = typer.Option(10, help="Held-out samples per motion to generate and measure after training (0: none)."),
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

    if clips < 8 or check < 0 or textured_clips < 0 or (minutes is not None and minutes <= 0):
        raise InputError("--clips must be >= 8, --check and --textured-clips >= 0 and --minutes > 0")
    if (vae_width is not None and vae_width < 1) or (latent_channels is not None and latent_channels < 1):
        raise InputError("--vae-width and --latent-channels must be >= 1")
    if init is not None and (vae_width is not None or latent_channels is not None or vae_downsample is not None):
        raise InputError("--vae-width, --latent-channels and --vae-downsample shape a new prior; --init keeps its VAE")
    if vae_downsample is not None and vae_downsample not in (2, 4, 8):
        raise InputError(f"--vae-downsample must be 2, 4 or 8, got {vae_downsample}")
    if vae_image_steps is not None and vae_image_steps < 0:
        raise InputError(f"--vae-image-steps must be >= 0, got {vae_image_steps}")
    if vae_noise is not None and vae_noise < 0:
        raise InputError(f"--vae-noise must be >= 0, got {vae_noise}")
    if vae_motion_weight is not None and vae_motion_weight < 0:
        raise InputError(f"--vae-motion-weight must be >= 0, got {vae_motion_weight}")
    if vae_first_frame_weight is not None and vae_first_frame_weight < 0:
        raise InputError(f"--vae-first-frame-weight must be >= 0, got {vae_first_frame_weight}")
    if init is not None and not (init / "train_log.json").is_file():
        raise InputError(f"--init needs a directory written by train-prior ({init / 'train_log.json'} is missing)")
    if not 0.0 <= textured <= 1.0:
        raise InputError(f"--textured must be in [0, 1], got {textured}")
    if check_only and not (out / "model_index.json").is_file():
        raise InputError(f"--check-only needs a trained model in {out} (no model_index.json there)")
    from chord_robot.errors import ConfigError
    from flowgen.priors.shipped import clip_size
    from sim.clips import MOTIONS, ClipConfig

    if size is None:  # the prior's own clips, when there is one
        own = out if check_only else init
        _, size, width = clip_size(own) if own is not None else (0, 32, 32)
        if size != width:
            raise InputError(f"{own} was trained on {width}x{size} clips; train-prior renders square ones (--size)")

    kinds = [k.strip() for k in motions.split(",") if k.strip()]
    if not kinds or any(k not in {m.kind for m in MOTIONS.values()} for k in kinds):
        raise InputError(f"--motions must list some of laptop, lamp, pick, fold; got {motions!r}")
    try:
        clip_config = ClipConfig(size=size, textured=textured, split_starts=split_starts, looks=looks,
                                 distractors=_range(distractors, int, "--distractors"), free_colours=free_colours,
                                 floor=floor, arm_share=_range(arm_share, float, "--arm-share"),
                                 move_share=None if move_share is None else _range(move_share, float, "--move-share"),
                                 pick_distance=None if pick_distance is None else _range(pick_distance, float,
                                                                                         "--pick-distance"))
    except ConfigError as e:
        raise InputError(f"train-prior: {e.named('--' + e.field.replace('_', '-'))}") from None
    prompts = tuple(p for p, m in MOTIONS.items() if m.kind in kinds)
    if init is not None:  # the prior's own prompts first (their ids), then the added ones
        from flowgen.priors.shipped import prompts as trained_prompts

        known = trained_prompts(init)
        if set(known) - set(prompts):
            raise InputError(f"--init {init} knows {list(known)}; --motions must include its motions "
                             f"(it may add others), got {motions!r}")
        prompts = known + tuple(p for p in prompts if p not in known)
    import torch

    torch.set_num_threads(max(1, threads))
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    if not check_only:
        from flowgen.priors.train import TrainConfig, load_trained, save_prior, train_prior
        from flowgen.priors.train_checks import changing_pixels, reconstruction_psnr
        from sim import world as sim_world
        from sim.clip_files import concatenate_clips, load_clips, save_clips
        from sim.clips import generate

        start = load_trained(init) if init is not None else None
        config = replace(start.config, seed=seed) if start is not None else TrainConfig(seed=seed)
        config = replace(config, steps=steps or config.steps,
                         vae_steps=config.vae_steps if vae_steps is None else vae_steps,
                         vae_image_steps=vae_image_steps or 0,
                         vae_frames=vae_frames or config.vae_frames,
                         vae_base_dim=vae_width or config.vae_base_dim, z_dim=latent_channels or config.z_dim,
                         vae_downsample=vae_downsample or config.vae_downsample,
                         vae_noise=config.vae_noise if vae_noise is None else vae_noise,
                         vae_motion_weight=config.vae_motion_weight if vae_motion_weight is None else vae_motion_weight,
                         vae_first_frame_weight=(config.vae_first_frame_weight if vae_first_frame_weight is None
                                                 else vae_first_frame_weight))
        with Progress(*columns, console=console) as bar:
            if dataset is not None and dataset.is_file():
                clip_set = load_clips(dataset)
                console.print(f"read {len(clip_set)} clips from {dataset}")
                if clip_set.videos.shape[2:4] != (size, size):
                    raise InputError(f"--dataset {dataset} holds {clip_set.videos.shape[3]}x{clip_set.videos.shape[2]} "
                                     f"clips; --size is {size}")
            else:
                task = bar.add_task("rendering clips", total=clips + textured_clips)
                world = sim_world.create()
                try:
                    clip_set = generate(world, clips, seed, clip_config, prompts,
                                        progress=lambda i, n: bar.update(task, completed=i), workers=threads)
                    if textured_clips:
                        extra = generate(world, textured_clips, seed + 1, replace(clip_config, textured=1.0), prompts,
                                         progress=lambda i, n: bar.update(task, completed=clips + i), workers=threads)
                        clip_set = concatenate_clips(clip_set, extra)
                finally:
                    world.close()
                if dataset is not None:
                    save_clips(dataset, clip_set)
            tasks = {"vae": bar.add_task("VAE", total=config.vae_image_steps + config.vae_steps),
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
            unseen = generate(world, 32, seed + 20_000, clip_config, prompts)
        finally:
            world.close()
        psnr = reconstruction_psnr(trained.vae, unseen.videos)
        moving = changing_pixels(unseen.videos)
        moving_psnr = reconstruction_psnr(trained.vae, unseen.videos, pixels=moving)
        trained.log["vae"].update(psnr_db=psnr, moving_psnr_db=moving_psnr, moving_fraction=float(moving.mean()))
        save_prior(trained, out)
        log = trained.log
        console.print(f"VAE: {len(log['vae']['loss'])} steps, {log['vae']['seconds']:.0f} s, reconstruction "
                      f"PSNR {psnr:.1f} dB (unseen clips; {moving_psnr:.1f} dB where they move, "
                      f"{moving.mean():.1%} of the pixels); transformer: {len(log['transformer']['loss'])} steps, "
                      f"{log['transformer']['seconds']:.0f} s, loss {log['transformer']['loss'][0]:.3f} -> "
                      f"{sum(log['transformer']['loss'][-100:]) / len(log['transformer']['loss'][-100:]):.3f}")
        console.print(f"wrote {out}")
    if check:
        console.print(f"sampling {check} held-out clips per motion with WanImageToVideoPipeline ...")
        result = check_prior(out, check, seed, guidance, sample_steps, clip_config, log=console.print)
        import imageio.v3 as iio

        from chord_robot.atomic import atomic_path

        grid = result.pop("_grid")
        with atomic_path(out / "check.png") as tmp:
            iio.imwrite(tmp, grid.repeat(2, 0).repeat(2, 1), extension=".png")
        write_text_atomic(out / "check.json", json.dumps(result, indent=1))
        for prompt, m in result["per_motion"].items():
            console.print(f"  {prompt}: {m['moved_as_prompted']}/{m['samples']} moved as prompted")
        console.print(f"moved as prompted in {result['moved_as_prompted']}/{result['samples']} samples "
                      f"(check.json, check.png in {out})")
