"""How well a trained prior's VAE keeps the moving object, frame by frame.

    python scripts/vae_frames.py MODEL_DIR [--motions pick] [--clips 32] [--seed S]

Renders ``--clips`` clips of the given motions that the prior never saw (the seed train-prior
uses for its reconstruction check: its training seed, from its log, + 20000), at the prior's own clip size
(`flowgen.priors.shipped.clip_size`), encodes and decodes them with the prior's VAE, and prints
per frame the share of pixels where the moving object departs from the clip's median
(`flowgen.priors.train_checks.departed_pixels`: the object where it is, or where it stood), the
PSNR there and over the whole frame (`psnr_by_frame`), as a table and as JSON.

The causal VAE encodes frame 0 alone and the later frames four to a latent frame, so the table
tells a lost object (low everywhere) from one blurred by the time compression (low after frame 0).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a directory written by chord-robot train-prior")
    parser.add_argument("--motions", default="pick", help="motions of the clips (laptop, lamp, pick, fold)")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None, help="the prior's training seed (default: its log's)")
    args = parser.parse_args()

    import torch
    from diffusers import AutoencoderKLWan

    from flowgen.priors.shipped import clip_size
    from flowgen.priors.train_checks import departed_pixels, psnr_by_frame
    from sim import world as sim_world
    from sim.clips import MOTIONS, ClipConfig, generate

    torch.set_num_threads(2)
    if args.seed is None:
        args.seed = json.loads((Path(args.model) / "train_log.json").read_text())["config"]["seed"]
    frames, height, width = clip_size(args.model)
    if height != width:
        raise SystemExit(f"the clip generator renders square clips; {args.model} has {width}x{height}")
    kinds = set(args.motions.split(","))
    prompts = tuple(p for p, m in MOTIONS.items() if m.kind in kinds)
    world = sim_world.create()
    try:
        clips = generate(world, args.clips, args.seed + 20_000, ClipConfig(size=height, num_frames=frames), prompts)
    finally:
        world.close()
    vae = AutoencoderKLWan.from_pretrained(args.model, subfolder="vae")
    departed = departed_pixels(clips.videos)
    there, whole = psnr_by_frame(vae, clips.videos, departed), psnr_by_frame(vae, clips.videos)
    share = departed.mean(axis=(0, 2, 3))
    print(f"{args.model}: {args.clips} unseen {args.motions} clips, {frames} frames of {width}x{height}")
    print("frame | object's pixels | PSNR there | PSNR, whole frame")
    for t in range(frames):
        print(f"{t:5d} | {share[t]:14.1%} | {there[t]:7.1f} dB | {whole[t]:7.1f} dB")
    print(json.dumps({"model": args.model, "size": [width, height], "frames": frames, "clips": args.clips,
                      "object_share": np.round(share, 4).tolist(), "object_psnr_db": _finite(there),
                      "frame_psnr_db": _finite(whole)}))


def _finite(values: np.ndarray) -> list[float | None]:
    """Rounded to 0.01 dB; a frame without pixels (NaN) or without error (inf) as null."""
    return [round(float(v), 2) if np.isfinite(v) else None for v in values]


if __name__ == "__main__":
    main()
