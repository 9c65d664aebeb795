"""Benchmark: fast CPU rasteriser vs the plain-torch reference, forward + backward.

Scene: 20k Gaussians on the surface of a ~30 cm object (ellipsoid 30 x 20 x 15 cm), scales
3-5 mm, features RGB + 3D flow (6 channels, one pass), seen by a 240x136 camera it fills.

    python benchmarks/raster.py               # fast vs reference, plus first-call JIT times
    python benchmarks/raster.py --no-reference --repeats 20

Prints median wall and CPU times over the repeats (after a warm-up), their ratio, and the
first call's time in a fresh process, with numba's on-disk cache cold (compile) and warm
(load). On a shared machine, CPU time is the steadier figure; multi-threaded torch slows
down badly when other processes hold the cores, so compare with --threads 1 too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch import Tensor

from flowgen.raster import render


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """camera_from_world (4, 4), OpenCV axes, at eye looking at target."""
    z = (target - eye) / (target - eye).norm()
    x = torch.linalg.cross(z, up)
    x = x / x.norm()
    rot = torch.stack([x, torch.linalg.cross(z, x), z])
    view = torch.eye(4)
    view[:3, :3], view[:3, 3] = rot, -rot @ eye
    return view


def object_scene(n: int = 20_000, width: int = 240, height: int = 136, seed: int = 0) -> dict:
    """`render` keyword arguments: n Gaussians on a 30 x 20 x 15 cm ellipsoid, float32."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(n, 3, generator=g)
    surface = directions / directions.norm(dim=-1, keepdim=True) * torch.tensor([0.15, 0.10, 0.075])
    eye = torch.tensor([0.12, -0.18, -0.38])
    f = 250.0
    return {
        "means": surface,
        "quats": torch.randn(n, 4, generator=g),
        "scales": 0.003 + 0.002 * torch.rand(n, 3, generator=g),
        "opacities": 0.5 + 0.5 * torch.rand(n, generator=g),
        "features": torch.rand(n, 6, generator=g),  # RGB + 3D flow
        "viewmat": look_at(eye, torch.zeros(3), torch.tensor([0.0, -1.0, 0.0])),
        "K": torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]]),
        "width": width,
        "height": height,
    }


DIFF = ("means", "quats", "scales", "opacities", "features")


def forward_backward(scene: dict, backend: str) -> tuple[float, float]:
    """Wall and process CPU seconds of one render + backward of a colour/alpha/depth loss."""
    leaves = {k: v.detach().requires_grad_(True) for k, v in scene.items() if k in DIFF}
    wall, cpu = time.perf_counter(), time.process_time()
    out = render(**{**scene, **leaves}, backend=backend)
    (out.color.square().sum() + out.alpha.sum() + out.depth.sum()).backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_times(scene: dict, backend: str, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `repeats` passes after `warmup` untimed ones."""
    for _ in range(warmup):
        forward_backward(scene, backend)
    walls, cpus = zip(*(forward_backward(scene, backend) for _ in range(repeats)), strict=True)
    return statistics.median(walls), statistics.median(cpus)


def first_call_seconds(cold: bool) -> float:
    """First fast forward + backward in a fresh process (numba cache cold or warm)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        done = subprocess.run(
            [sys.executable, __file__, "--first-call"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--reference-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: keep)")
    parser.add_argument("--no-reference", action="store_true", help="time the fast path only")
    parser.add_argument("--no-jit", action="store_true", help="skip the first-call timings")
    parser.add_argument("--first-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.first_call:  # child process of first_call_seconds
        print(forward_backward(object_scene(n=500), "fast")[0])
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    scene = object_scene(n=args.gaussians)
    print(
        f"{args.gaussians} Gaussians, {scene['width']}x{scene['height']}, "
        f"{scene['features'].shape[1]} feature channels + depth, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    alpha = render(**scene).alpha
    print(f"coverage: {(alpha > 0.5).float().mean().item():.0%} of pixels have alpha > 0.5")
    fast, fast_cpu = median_times(scene, "fast", args.repeats, warmup=2)
    print(
        f"fast      forward+backward: {fast * 1e3:8.1f} ms wall, {fast_cpu * 1e3:8.1f} ms CPU "
        f"(median of {args.repeats})"
    )
    if not args.no_reference:
        ref, ref_cpu = median_times(scene, "reference", args.reference_repeats, warmup=1)
        print(
            f"reference forward+backward: {ref * 1e3:8.1f} ms wall, {ref_cpu * 1e3:8.1f} ms CPU "
            f"(median of {args.reference_repeats})"
        )
        print(f"speed-up: {ref / fast:.1f}x wall, {ref_cpu / fast_cpu:.1f}x CPU")
    if not args.no_jit:
        print(f"first call, numba cache cold (compile): {first_call_seconds(cold=True):.1f} s")
        print(f"first call, numba cache warm (load):    {first_call_seconds(cold=False):.2f} s")


if __name__ == "__main__":
    main()
