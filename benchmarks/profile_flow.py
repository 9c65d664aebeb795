"""Where a flow's time goes: one distillation from the shipped prior and one video fit, profiled.

    python benchmarks/profile_flow.py [--iters 40] [--threads 1] [--wall]

Runs `chord_robot.generate_flow` on the shipped example (examples/laptop: its scan and words
for the shipped prior; its video and camera for the video fit) under cProfile and prints, per
stage, the seconds spent inside it (cumulative, the stage's callees included) and its share of
the run: deformation (skinning), rendering (the project's rasteriser, forward), the prior (for
Wan: the VAE encode, the transformer calls of the SDS gradient with classifier-free guidance,
the VAE backward as the rest of the SDS step), the backward pass through rendering and
skinning, the optimiser step, and what is left (regularisers, schedules, set-up, writing).
The stages nest as written; shares are of the run's wall time. This machine's figures are in
docs/performance.md.

With ``--wall`` no profiler runs (cProfile inflates Python-heavy stages): the loop's stages are
timed by wrapping their functions (`WALL_STAGES`), and the distillation alone is run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import chord_robot  # noqa: I001  (before torch: it sets OpenMP's spin count, read when torch loads)
EXAMPLE = ROOT / "examples" / "laptop"

STAGES = (  # (label, file suffix, function name): the functions whose cumulative time is a stage
    ("deform (skinning, forward)", "flowgen/objective.py", "_pose"),
    ("render (forward)", "flowgen/objective.py", "render_views"),
    ("SDS step (Wan prior)", "flowgen/priors/wan/prior.py", "sds"),
    ("  VAE encode", "flowgen/priors/wan/encode.py", "encode_video"),
    ("  transformer calls (CFG)", "flowgen/priors/sds.py", "rf_sds_gradient"),
    ("  VAE backward (torch.autograd.grad)", "torch/autograd/__init__.py", "grad"),
    ("video loss (video prior)", "flowgen/priors/video.py", "loss"),
    ("regularisers (ARAP, rigidity, smoothness ...)", "flowgen/losses.py", None),
    ("backward (render + skinning)", "torch/_tensor.py", "backward"),
    ("optimiser step", "torch/optim/adam.py", "step"),
)


WALL_STAGES = (  # (label, module, attribute): functions timed by wall clock with --wall
    ("motion objective (forward: all below but the backward)", "flowgen.optimize", "motion_objective"),
    ("  deform and shade (skinning, forward)", "flowgen.objective", "_pose"),
    ("  render a view's frames (forward)", "flowgen.objective", "_render_stacked"),
    ("  SDS step (VAE encode, transformer, VAE backward)", "flowgen.priors.sds_prior", "SdsPrior.loss"),
    ("  ARAP points deformed (skinning, forward)", "flowgen.objective", "deform_surface"),
    ("  ARAP energy and gradient", "flowgen.losses", "arap"),
    ("  part rigidity", "flowgen.losses", "part_rigidity"),
    ("backward (renders, skinning, regularisers)", "torch", "Tensor.backward"),
    ("optimiser step", "torch.optim", "Adam.step"),
)


def wall_stages(run) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``run()`` and of each of `WALL_STAGES` inside it, counted only inside the
    optimisation loop (`flowgen.optimize._optimize`; the set-up's mesh fits also call backward)."""
    import importlib

    totals = dict.fromkeys((label for label, _, _ in WALL_STAGES), 0.0)
    totals["the loop (all iterations)"] = 0.0
    inside = [False]
    kept = []
    for label, module_name, attribute in (*WALL_STAGES, ("the loop (all iterations)", "flowgen.optimize", "_optimize")):
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            loop = _label == "the loop (all iterations)"
            if not (inside[0] or loop):
                return _original(*args, **kwargs)
            inside[0] = True
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - start
                inside[0] = inside[0] and not loop

        setattr(owner, name, timed)
        kept.append((owner, name, original))
    start = time.perf_counter()
    try:
        run()
    finally:
        for owner, name, original in kept:
            setattr(owner, name, original)
    return time.perf_counter() - start, totals


def stage_times(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per stage of `STAGES` (a None name sums the file's top-level calls)."""
    out = {}
    for label, suffix, name in STAGES:
        total = 0.0
        for (file, _, func), (_, _, _, cumulative, callers) in stats.stats.items():
            if not file.replace("\\", "/").endswith(suffix):
                continue
            if name is None:  # only calls from outside the file, so nested ones count once
                if any(not c[0].replace("\\", "/").endswith(suffix) for c in callers):
                    total += sum(v[3] for c, v in callers.items() if not c[0].endswith(suffix))
            elif func == name:
                total += cumulative
        out[label] = total
    return out


def profile(label: str, run) -> tuple[float, dict[str, float]]:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    run()
    profiler.disable()
    wall = time.perf_counter() - start
    return wall, stage_times(pstats.Stats(profiler))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=40, help="Iterations of each run.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--wall", action="store_true", help="Time the loop's stages by wall clock (distillation).")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    scene = chord_robot.load_scan(EXAMPLE / "scan.ply")
    runs = {
        "distillation, shipped prior (32x32, 9 frames)": lambda out: chord_robot.generate_flow(
            scene, "close the laptop lid", output=out, iters=args.iters),
        "video fit, cpu preset": lambda out: chord_robot.generate_flow(
            scene, "close the laptop lid", video=EXAMPLE / "video.mp4", camera=EXAMPLE / "camera.json",
            background=EXAMPLE / "background.png", output=out, iters=args.iters),
    }
    if args.wall:
        name, run = next(iter(runs.items()))
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp) / "warm.zarr")
            wall, stages = wall_stages(lambda: run(Path(tmp) / "flow.zarr"))
        print(f"\n{name}: {args.iters} iterations, {wall:.1f} s wall, torch threads {args.threads}")
        print(f"  {'stage':<58} {'s':>7} {'ms/it':>7}")
        for label, seconds in stages.items():
            print(f"  {label:<58} {seconds:>7.2f} {1000 * seconds / args.iters:>7.1f}")
        return
    for name, run in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp) / "warm.zarr")  # loads, compiles and caches once, outside the profile
            wall, stages = profile(name, lambda run=run, tmp=tmp: run(Path(tmp) / "flow.zarr"))
        print(f"\n{name}: {args.iters} iterations, {wall:.1f} s ({1000 * wall / args.iters:.0f} ms per iteration, "
              f"profiled), torch threads {args.threads}")
        print(f"  {'stage':<46} {'s':>7} {'share':>6}")
        for label, seconds in stages.items():
            if seconds > 0:
                print(f"  {label:<46} {seconds:>7.2f} {100 * seconds / wall:>5.1f}%")
        rest = wall - sum(s for label, s in stages.items() if not label.startswith(" "))
        print(f"  {'the rest (set-up, schedules, export, writing)':<46} {rest:>7.2f} {100 * rest / wall:>5.1f}%")


if __name__ == "__main__":
    main()
