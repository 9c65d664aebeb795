"""One SDS iteration of the paper's run on a CUDA GPU, timed stage by stage (issue #19 item 6).

    python benchmarks/gpu_iteration.py                          # the paper's size (80 GB GPU)
    python benchmarks/gpu_iteration.py --views 1 --frames 17 --size 416x240   # a 40-48 GB GPU
    python benchmarks/gpu_iteration.py --tiny --device cpu      # the code path on a CPU, toy sizes

What runs is the loop's own code on one device (`chord-robot flow --device cuda`): the example
laptop scan's 4D model at the ``paper`` preset (`flowgen.model.to_device`), gsplat renders of
every frame from the prior's sampled cameras, and Wan 2.2 I2V A14B's SDS step - its high-noise
expert built from the real configuration (40 layers, width 5120, FFN 13824: 14.3 B parameters,
bf16) and the Wan 2.1 VAE likewise, both with random weights (the time does not depend on the
values; nothing is downloaded), and random prompt embeddings (the text encoder runs once per
run, not per iteration). In the loop's order: the pose (skinning, forward) once; per view, the
render (forward), the VAE encode with graph, the transformer on the conditional and
unconditional branches as one batch of two, and the VAE backward to the pixels; then the
regularisers (ARAP, temporal flow), one backward through every render, the skinning and the
regularisers, and the optimiser step.

Prints each stage's median over ``--repeats`` iterations (after one warm-up), the peak device
memory (`torch.cuda.max_memory_allocated`), and the projected time of a run of ``--iters``
iterations (default the paper's 2000) against the paper's 17.7 h on an H200. Without CUDA it
exits 2 saying so (``--tiny --device cpu`` runs the same code at toy sizes, to check it).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "laptop"

A14B_TRANSFORMER = {  # Wan-AI/Wan2.2-I2V-A14B-Diffusers transformer/config.json
    "patch_size": (1, 2, 2), "num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 36,
    "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "image_dim": None,
    "added_kv_proj_dim": None, "rope_max_seq_len": 1024}
TINY_TRANSFORMER = {**A14B_TRANSFORMER, "num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 64,
                    "num_layers": 2, "text_dim": 32}
TINY_VAE = {"base_dim": 8, "num_res_blocks": 1}  # the Wan 2.1 VAE's layout (8x, 4x, 16 channels), narrow
PAPER_HOURS = 17.7
"""The paper's run time on an H200 (2000 iterations, supp. §A.1)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (only with --tiny)")
    parser.add_argument("--frames", type=int, default=41, help="frames T (1 + 4k; paper 41)")
    parser.add_argument("--size", default="832x464", help="render WIDTHxHEIGHT (multiples of 16; paper 832x464)")
    parser.add_argument("--views", type=int, default=4, help="cameras per iteration (paper 4)")
    parser.add_argument("--gaussians", type=int, default=None, help="Gaussians per moving object (default the preset's)")
    parser.add_argument("--repeats", type=int, default=3, help="measured iterations after one warm-up")
    parser.add_argument("--iters", type=int, default=2000, help="iterations of the projected run")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer transformer and a narrow VAE, 9 frames "
                        "at 64x48, 1 view, 4000 Gaussians (checks the code path anywhere)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.frames, args.size, args.views, args.gaussians = 9, "64x48", 1, args.gaussians or 4000
    return args


class Stages:
    """Wall time per named stage, synchronising the device around each."""

    def __init__(self, device):
        self.device = device
        self.times: dict[str, list[float]] = defaultdict(list)
        self.current: dict[str, float] = defaultdict(float)

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.current[name] += time.perf_counter() - start

    def close_iteration(self) -> None:
        for name, seconds in self.current.items():
            self.times[name].append(seconds)
        self.current = defaultdict(float)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(t) for name, t in self.times.items()}


def _random_init(module, std: float = 0.02) -> None:
    """Weights materialised from ``meta`` get values: N(0, std) matrices, unit norms, zero biases."""
    import torch

    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, std)
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def build_prior(args, device):
    """(WanPrior without experts, the expert) at random weights: the real configurations
    (or the tiny ones)."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from flowgen.priors.sds import Embeddings
    from flowgen.priors.tau import noise_levels
    from flowgen.priors.wan import VARIANTS, WanConfig, WanPrior

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = TINY_TRANSFORMER if args.tiny else A14B_TRANSFORMER
    with torch.device("meta"):  # no host copy of 14 B parameters
        expert = WanTransformer3DModel(**config)
    expert = expert.to(dtype).to_empty(device=device)  # bf16 straight onto the device (26.6 GiB)
    _random_init(expert)
    expert.rope = type(expert.rope)(config["attention_head_dim"], config["patch_size"],  # its buffers
                                    config["rope_max_seq_len"]).to(device)
    keep = set(expert._keep_in_fp32_modules or ())  # what from_pretrained(torch_dtype=bf16) keeps in float32
    for name, p in expert.named_parameters():
        if keep & set(name.split(".")):
            p.data = p.data.float()
    expert = expert.eval().requires_grad_(False)
    vae = AutoencoderKLWan(**(TINY_VAE if args.tiny else {})).to(device, dtype).eval().requires_grad_(False)
    text = torch.randn(2, 512, config["text_dim"], device=device, dtype=dtype)
    wan = WanConfig()  # the paper's: the VAE checkpointed, the condition encoded alone
    prior = WanPrior(config=wan, spec=VARIANTS["i2v-a14b"], root=Path("."), vae=vae,
                     embeddings=Embeddings(text[:1], text[1:]), levels=noise_levels(wan.tau_weight, 5.0),
                     num_train_timesteps=1000, patch_size=tuple(config["patch_size"]), device=device, dtype=dtype,
                     experts=None)
    count = sum(p.numel() for p in expert.parameters())
    return prior, expert, count


def build_model(args, device):
    """The example scan's 4D model at the paper preset (at ``--frames``), on ``device``."""
    import dataclasses

    from chord_robot.app.flowconfig import flow_config, parse_size
    from chord_robot.app.scenes import load_scene
    from flowgen.model import build_model as build
    from flowgen.model import to_device

    config = flow_config("paper", "wan")
    width, height = parse_size(args.size)
    changes = {"num_frames": args.frames, "render_size": (width, height)}
    if args.gaussians:
        changes["num_gaussians"] = args.gaussians
    config = dataclasses.replace(config, **changes)
    start = time.perf_counter()
    model = to_device(build(load_scene(EXAMPLE / "scan.ply"), config), device)
    return model, config, time.perf_counter() - start


def iteration(model, optimizer, prior, expert, config, cameras, it: int, stages: Stages) -> None:
    """One SDS iteration over ``cameras`` (one view each), stage by stage, in the loop's order
    (`flowgen.objective.motion_objective`): the model posed once; per view its render and the
    SDS step, whose gradient is pulled back to the pixels at once (the VAE's graph freed view by
    view); then the regularisers, one backward through every render, the skinning and the
    regularisers, and the optimiser step."""
    import torch

    from flowgen import losses
    from flowgen.motion import deform_surface
    from flowgen.objective import _pose, render_views
    from flowgen.priors.sds import rf_sds_gradient, surrogate_loss
    from flowgen.priors.video import View

    frames = torch.arange(config.num_frames)
    slot = {f: f for f in range(config.num_frames)}
    tau, scale = prior.tau(it, config.iterations), prior.guidance(it, config.iterations)
    optimizer.zero_grad(set_to_none=True)
    with stages("pose (skinning, forward)"):
        posed = _pose(model, frames, use_fine=True)
    terms, temporal = [], []
    for v, camera in enumerate(cameras):
        with stages("render (forward)"):
            (_, rgb, flow, _, _), = render_views(model, [View(v, camera, frames, None)], posed, slot)
        temporal.append(losses.temporal_flow(flow))
        with stages("VAE encode (with graph)"):
            leaf, z, condition = prior._encode(rgb.detach(), rgb[0].detach())
        with stages("transformer x2 (CFG, one batch of 2)"):
            noise = torch.randn(z.shape, device=z.device, dtype=torch.float32)
            g = rf_sds_gradient(z, tau, prior.embeddings, prior.velocity_model(expert, condition), scale, noise)
        with stages("VAE backward"):
            (gx,) = torch.autograd.grad(z, leaf, g.to(z.dtype))
        terms.append(surrogate_loss(rgb, gx.to(rgb) / len(cameras)))
        del leaf, z, g, gx, condition
    with stages("regularisers (ARAP, temporal), forward"):
        arap = sum(losses.arap(obj.arap, deform_surface(obj, frames, True)) for obj in model.moving)
        total = sum(terms) + arap + torch.stack(temporal).mean()
    with stages("backward (renders, skinning, regularisers)"):
        total.backward()
    with stages("optimiser step"):
        optimizer.step()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks/gpu_iteration.py needs a CUDA GPU (torch.cuda.is_available() is False here); "
              "on a GPU machine: python benchmarks/gpu_iteration.py (see its docstring); "
              "--tiny --device cpu checks the code path at toy sizes", file=sys.stderr)
        return 2
    if args.device != "cuda" and not args.tiny:
        print("without CUDA only --tiny runs (the paper's size would take hours per iteration on a CPU)",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    torch.manual_seed(0)
    from chord_robot.app.flowconfig import parse_size
    from flowgen.model import parameters
    from flowgen.optimize import make_optimizer
    from flowgen.priors.cameras import sample_cameras

    model, config, build_s = build_model(args, device)
    prior, expert, count = build_prior(args, device)
    width, height = parse_size(args.size)
    targets = torch.cat([o.rest.means for o in model.moving]).cpu().numpy()
    optimizer = make_optimizer(parameters(model))
    stages = Stages(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for it in range(1 + args.repeats):
        cameras = sample_cameras(targets, width, height, prior.config.cameras, args.views, 0, it)
        iteration(model, optimizer, prior, expert, config, cameras, it, stages)
        if it == 0:
            stages.current.clear()  # the warm-up (kernels compiled, allocator grown)
        else:
            stages.close_iteration()
    medians = stages.medians()
    total = sum(medians.values())
    gaussians = sum(o.rest.num for o in model.moving) + sum(o.rest.num for o in model.static)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{name}: {'tiny stand-ins' if args.tiny else 'Wan 2.2 I2V A14B expert'} ({count / 1e9:.2f} B "
          f"parameters), {args.views} view(s) x {args.frames} frames at {width}x{height}, {gaussians:,} Gaussians "
          f"(model built in {build_s:.0f} s)")
    print(f"| {'stage (median of ' + str(args.repeats) + ')':<44} | {'s / iteration':>13} | share |")
    print(f"|{'-' * 46}|{'-' * 15}|-------|")
    for stage, seconds in medians.items():
        print(f"| {stage:<44} | {seconds:13.3f} | {100 * seconds / total:4.0f}% |")
    print(f"| {'iteration':<44} | {total:13.3f} |  100% |")
    if device.type == "cuda":
        print(f"peak device memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    hours = total * args.iters / 3600
    print(f"projected {args.iters} iterations: {hours:.1f} h (the paper: {PAPER_HOURS} h for 2000 on an H200; "
          f"ratio {hours * 2000 / args.iters / PAPER_HOURS:.2f} at equal iterations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
