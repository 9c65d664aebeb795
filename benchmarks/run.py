"""Every speed benchmark in one run: ratios against references measured in the same process.

    python benchmarks/run.py            # about 6 minutes on 2 cores
    python benchmarks/run.py --full     # and a whole shipped-prior flow and video fit (+3 min)
    python benchmarks/run.py --only distillation    # one section (repeatable)

Rows (each reference runs in this process, on the same inputs, just before or after the
measured code; ratios are reference time / this build's time):

- rasteriser: forward + backward of 20k Gaussians at 240x136 (`benchmarks/raster.py`'s
  scene), the numba rasteriser against the plain-torch reference, with 1 and 2 threads;
- a view's frames (9 at 32x32, 7000 Gaussians, the shipped preset's renders), forward +
  backward: in one pass with a worker thread per frame (`flowgen.raster.frames`) against
  frame by frame through `render`, on 1 and 2 threads;
- skinning blend (4000 points x 8 controls, 9 frames x 16 channels), forward + backward: the
  numba kernel against torch's sparse product used before; its backward (two loops) against
  session 15's (one loop); the skinning weights (4000 points x 8 controls), forward + backward:
  the numba kernel (`flowgen.skin_weights`) against the torch ops, isotropic and per-axis;
- Fenwick query of every frame (41 frames, 500 controls): the vectorised `query_all` against
  walking each frame's path in Python (`naive_query`);
- ARAP local rotations (9 frames x 2000 points): Horn's method in numba against the batched
  3x3 SVD used before; and 9 frames x 3000 points (the cpu preset's set) on 2 threads against 1;
  the ARAP energy and gradient of 9 frames x 2852 points (the example laptop's set) in one
  numba pass against the torch ops (`arap_energy_torch`);
- trajectory optimisation (41 frames, 256 points, `benchmarks/plan.py`): the jitted warm
  solve against PyRoki's problem built and solved on every call; the cold plan and the whole
  warm plan as absolute times;
- distillation from the shipped prior at equal iterations on the shipped example: this
  build's cpu preset against the same run before issue #22 (the VAE checkpointed, the
  condition encoded alone, SVD rotations); and the same run with the cheaper gradient path
  (``--vae-gradient linear``, no VAE encoder backward) against the full one; and this build
  against the same code with session 15's three changes undone (the sparse blend, ARAP by torch
  ops, frame-by-frame renders; Horn's rotations stay the new ones), on 1 and 2 threads; and
  against session 16's changes undone (the VAE encoded chunk by chunk, the skinning weights by
  torch ops), on 1 and 2 threads;
- with --full: one whole shipped-prior flow (`chord_robot.generate_flow`, its own preset) and
  the demo's video fit, absolute.

Absolute times are this machine's; on a shared machine compare the ratios. Nothing here is
part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import chord_robot  # noqa: I001  (before torch: it sets OpenMP's spin count, read when torch loads)
from undo import before_issue_22, before_session_15, before_session_16

EXAMPLE = ROOT / "examples" / "laptop"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: seconds of the reference and of this build (None: no reference)."""

    name: str
    reference: str
    reference_s: float | None
    build_s: float


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rasteriser() -> list[Row]:
    import raster
    import torch

    scene = raster.object_scene()
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fast = raster.median_times(scene, "fast", 7, warmup=2)[0]
        reference = raster.median_times(scene, "reference", 2, warmup=1)[0]
        rows.append(Row(f"rasteriser fwd+bwd, 20k Gaussians 240x136, {threads} thread(s)",
                        "plain-torch rasteriser", reference, fast))
    torch.set_num_threads(1)
    return rows + view_frames()


def view_frames() -> list[Row]:
    """A view's 9 frames at 32x32 (7000 Gaussians), forward + backward, in one pass against
    frame by frame."""
    import raster
    import torch

    from flowgen.raster import render
    from flowgen.raster.frames import render_frames

    scene = raster.object_scene(n=7000, width=32, height=32)
    gen = torch.Generator().manual_seed(0)
    frames = 9
    means = (scene["means"][None] + 0.003 * torch.randn(frames, *scene["means"].shape, generator=gen))
    quats = scene["quats"][None].expand(frames, -1, -1).clone()
    feats = scene["features"][None].expand(frames, -1, -1).clone()
    leaves = [x.requires_grad_(True) for x in (means, quats, scene["scales"].clone(), scene["opacities"].clone(), feats)]
    camera = (scene["viewmat"], scene["K"], 32, 32)

    def batched() -> None:
        out = render_frames(*leaves, *camera)
        (out.color.sum() + out.alpha.sum() + out.depth.sum()).backward()

    def per_frame() -> None:
        outs = [render(leaves[0][f], leaves[1][f], leaves[2], leaves[3], leaves[4][f], *camera, backend="fast")
                for f in range(frames)]
        sum(o.color.sum() + o.alpha.sum() + o.depth.sum() for o in outs).backward()

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rows.append(Row(f"a view's 9 frames, 7000 Gaussians 32x32, {threads} thread(s)", "frame by frame (render)",
                        median_seconds(per_frame, 20, 2), median_seconds(batched, 20, 2)))
    torch.set_num_threads(1)
    return rows


def skinning() -> list[Row]:
    import torch

    from flowgen.blend import blend_rows, blend_rows_sparse

    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 300, (4000, 8), generator=gen)
    weights = torch.softmax(torch.randn(4000, 8, generator=gen), -1).requires_grad_(True)
    values = torch.randn(300, 9 * 16, generator=gen, requires_grad=True)
    upstream = torch.randn(4000, 9 * 16, generator=gen)

    def run(fn) -> Callable[[], None]:
        return lambda: (fn(weights, index, values) * upstream).sum().backward()

    rows = [Row("skinning blend fwd+bwd, 4000 points x 8, 9 frames", "torch sparse product",
                median_seconds(run(blend_rows_sparse), 30), median_seconds(run(blend_rows), 30))]
    return rows + [blend_backward_row(), *skinning_weight_rows()]


@numba.njit(cache=True)
def _blend_backward_s15(weights, index, values, grad, grad_weights, grad_values) -> None:
    """Session 15's blend backward (one loop: each pair's dot product and its scatter)."""
    for n in range(index.shape[0]):
        for j in range(index.shape[1]):
            row, w = index[n, j], weights[n, j]
            dot = 0.0
            for d in range(values.shape[1]):
                g = grad[n, d]
                dot += g * values[row, d]
                grad_values[row, d] += w * g
            grad_weights[n, j] = dot


def blend_backward_row() -> Row:
    import numpy as np

    from flowgen import blend

    rng = np.random.default_rng(0)
    index = rng.integers(0, 400, (7000, 8))
    weights, values = rng.random((7000, 8), dtype=np.float32), rng.random((400, 144), dtype=np.float32)
    grad = rng.random((7000, 144), dtype=np.float32)

    def one_loop() -> None:
        _blend_backward_s15(weights, index, values, grad, np.empty_like(weights), np.zeros_like(values))

    def two_loops() -> None:
        blend._grad_weights(index, values, grad, np.empty_like(weights))
        blend._grad_values(weights, index, grad, np.zeros_like(values))

    return Row("skinning blend backward, 7000 points x 8, 144 channels", "one loop (session 15)",
               median_seconds(one_loop, 30), median_seconds(two_loops, 30))


def skinning_weight_rows() -> list[Row]:
    import torch

    from flowgen.quat import quat_normalize
    from flowgen.skin_weights import skinning_weights_torch
    from flowgen.skinning import Binding, ControlLevel, skinning_weights

    gen = torch.Generator().manual_seed(0)
    points, centres = torch.randn(4000, 3, generator=gen), torch.randn(300, 3, generator=gen)
    binding = Binding(torch.randint(0, 300, (4000, 8), generator=gen), torch.ones(4000, 8, dtype=torch.bool))
    upstream = torch.randn(4000, 8, generator=gen)
    rows = []
    rotated = quat_normalize(torch.randn(300, 4, generator=gen))
    for label, log_scales, rotations in (("isotropic", torch.randn(300, generator=gen), None),
                                         ("per-axis, rotated", torch.randn(300, 3, generator=gen), rotated)):
        leaves = [log_scales.requires_grad_(True)] + ([] if rotations is None else [rotations.requires_grad_(True)])
        level = ControlLevel(centres, log_scales, rotations)

        def run(fn, level=level, leaves=leaves) -> Callable[[], None]:
            return lambda: torch.autograd.grad((fn(points, level, binding) * upstream).sum(), leaves)

        rows.append(Row(f"skinning weights fwd+bwd, 4000 points x 8, {label}", "torch ops",
                        median_seconds(run(skinning_weights_torch), 30), median_seconds(run(skinning_weights), 30)))
    return rows


def fenwick() -> list[Row]:
    import torch

    from flowgen.fenwick import fenwick_identity, naive_query, query_all

    store = fenwick_identity(41, 500)
    gen = torch.Generator().manual_seed(0)
    store = dataclasses.replace(store, quats=store.quats + 0.1 * torch.randn(store.quats.shape, generator=gen),
                                trans=torch.randn(store.trans.shape, generator=gen))
    build = median_seconds(lambda: query_all(store), 20)
    naive = median_seconds(lambda: [naive_query(store, t) for t in range(41)], 5)
    return [Row("Fenwick query of 41 frames x 500 controls", "per-frame Python walk", naive, build)]


def arap() -> list[Row]:
    import torch

    from flowgen.procrustes import procrustes_rotations, svd_rotations

    cross = torch.randn(9, 2000, 3, 3, generator=torch.Generator().manual_seed(0))
    build = median_seconds(lambda: procrustes_rotations(cross), 10)
    reference = median_seconds(lambda: svd_rotations(cross), 10)
    rows = [Row("ARAP rotations, 9 frames x 2000 points", "batched 3x3 SVD (torch)", reference, build)]
    cross = torch.randn(9, 3000, 3, 3, generator=torch.Generator().manual_seed(1))  # the cpu preset's set
    threads = torch.get_num_threads()
    try:
        one = median_seconds(lambda: procrustes_rotations(cross), 10)
        torch.set_num_threads(2)
        two = median_seconds(lambda: procrustes_rotations(cross), 10)
    finally:
        torch.set_num_threads(threads)
    rows.append(Row("ARAP rotations, 9 frames x 3000 points, 2 threads", "the same on 1 thread", one, two))
    return rows + [arap_energy_row()]


def arap_energy_row() -> Row:
    import torch

    from flowgen.arap import arap_energy, arap_energy_torch, arap_graph

    gen = torch.Generator().manual_seed(0)
    box = torch.tensor([0.3, 0.2, 0.02])  # a lid-like slab's near-surface set, 2852 points
    rest = (torch.rand(2852, 3, generator=gen) - 0.5) * box
    graph = arap_graph(rest, 10)
    deformed = (rest + 0.002 * torch.randn(9, *rest.shape, generator=gen)).requires_grad_(True)

    def run(fn) -> Callable[[], None]:
        return lambda: fn(graph, deformed).backward()

    return Row("ARAP energy + gradient, 9 frames x 2852 points", "torch ops (arap_energy_torch)",
               median_seconds(run(arap_energy_torch), 10), median_seconds(run(arap_energy), 10))


def trajopt() -> list[Row]:
    import numpy as np
    from loguru import logger

    logger.remove()
    import plan as plan_bench

    from chord_robot import geometry
    from planning import FlowPlanner, analytic, default_config
    from planning.region import RegionConfig

    planner = FlowPlanner(default_config(region=RegionConfig(points=256)))
    base = geometry.yaw_pose(0.0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(0)

    def run(k: int):
        flow = analytic.translation_flow(41, offset=(0.03 * (k % 3), 0.15 - 0.05 * k, 0.05 + 0.01 * k))
        start = time.perf_counter()
        result = planner.plan(flow, base=base, mode="grasp", rng=rng)
        return result, time.perf_counter() - start

    cold, cold_s = run(0)
    warm = [run(k + 1) for k in range(5)]
    solve = statistics.median(p.costs["solve_time_s"] for p, _ in warm)
    whole = statistics.median(t for _, t in warm)
    targets = geometry.pose_to_matrix(cold.ee_poses[cold.segment("manipulate")])
    targets = geometry.invert(geometry.pose_to_matrix(cold.robot_base)) @ targets
    naive = statistics.mean(plan_bench.naive_solve(planner.model, targets) for _ in range(2))
    return [Row("trajopt warm solve, 41 frames x 256 points", "PyRoki problem rebuilt per call", naive, solve),
            Row("trajopt cold plan (first call: compile)", "", None, cold_s),
            Row("whole warm plan (grasps, reach, solve, timing, checks)", "", None, whole)]


def distillation(iterations: int) -> list[Row]:
    import torch

    torch.set_num_threads(1)
    scene = chord_robot.load_scan(EXAMPLE / "scan.ply")
    with tempfile.TemporaryDirectory() as tmp:
        def run(name: str, **overrides) -> tuple[float, float]:
            """(seconds of the run, seconds per iteration after the first)."""
            stamps: list[float] = []
            start = time.perf_counter()
            chord_robot.generate_flow(scene, "close the laptop lid", output=Path(tmp) / f"{name}.zarr",
                                      iters=iterations, progress=lambda *_: stamps.append(time.perf_counter()),
                                      **overrides)
            return time.perf_counter() - start, (stamps[-1] - stamps[0]) / (len(stamps) - 1)

        run("warm")  # weights read, kernels compiled
        with before_issue_22():
            reference, reference_step = run("before")
        build, build_step = run("build")
        linear, linear_step = run("linear", vae_gradient="linear")
        session, session16 = [], []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with before_session_15():
                before = run(f"before-s15-{threads}")
            session.append((threads, before, run(f"build-{threads}")))
            with before_session_16():
                before = run(f"before-s16-{threads}")
            session16.append((threads, before, run(f"build16-{threads}")))
        torch.set_num_threads(1)
    full_sds, linear_sds = sds_steps()
    return [Row("shipped-prior distillation, one iteration, 1 thread", "before #22", reference_step, build_step),
            Row(f"  the run of {iterations} iterations (set-up included)", "before #22, same iterations",
                reference, build),
            *(Row(f"  one iteration, {threads} thread(s)", "s15 undone (Horn's Newton kept)", before[1], after[1])
              for threads, before, after in session),
            *(Row(f"  one iteration, {threads} thread(s)", "s16 undone (chunked VAE, torch weights)", before[1],
                  after[1]) for threads, before, after in session16),
            Row("  one iteration, --vae-gradient linear", "the full VAE gradient (above)", build_step, linear_step),
            Row(f"  the run of {iterations} iterations, --vae-gradient linear", "the full VAE gradient (above)",
                build, linear),
            Row("  the SDS step alone (9x32x32), --vae-gradient linear", "the full VAE gradient",
                full_sds, linear_sds)]


def sds_steps(repeats: int = 20) -> tuple[float, float]:
    """Median seconds of one shipped-prior SDS step (encode, guided velocity, pull-back to the
    pixels, backward of the surrogate) with the full VAE gradient and with the linear one,
    interleaved on the same video."""
    import torch

    from chord_robot.app.flowconfig import flow_config
    from flowgen.priors import shipped
    from flowgen.priors.wan import load_wan_prior

    wan = dataclasses.replace(flow_config("shipped", "wan").wan, vae_gradient="linear")
    linear = load_wan_prior(shipped.MODEL_DIR, prompt=shipped.prompts()[0], config=wan)
    full = dataclasses.replace(linear, linear=None)
    video = torch.rand(1, *shipped.clip_size(), 3, generator=torch.Generator().manual_seed(0))

    def step(prior) -> None:
        v = video.clone().requires_grad_(True)
        prior.sds(v, None, 150, 300, seed=0).loss.backward()

    times: dict[str, list[float]] = {"full": [], "linear": []}
    for _ in range(repeats):
        for name, prior in (("full", full), ("linear", linear)):
            start = time.perf_counter()
            step(prior)
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["full"][1:]), statistics.median(times["linear"][1:])


def full_runs() -> list[Row]:
    import torch

    scene = chord_robot.load_scan(EXAMPLE / "scan.ply")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        chord_robot.generate_flow(scene, "close the laptop lid", output=Path(tmp) / "words.zarr")
        rows.append(Row(f"whole shipped-prior flow (its preset), {torch.get_num_threads()} threads", "", None,
                        time.perf_counter() - start))
        start = time.perf_counter()
        chord_robot.generate_flow(scene, "close the laptop lid", video=EXAMPLE / "video.mp4",
                                  camera=EXAMPLE / "camera.json", output=Path(tmp) / "video.zarr")
        rows.append(Row(f"demo's video fit (cpu preset), {torch.get_num_threads()} threads", "", None,
                        time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also a whole flow and a video fit")
    parser.add_argument("--iters", type=int, default=40, help="iterations of the distillation pair")
    sections = {"rasteriser": rasteriser, "skinning": skinning, "fenwick": fenwick, "arap": arap, "trajopt": trajopt,
                "distillation": lambda: distillation(args.iters)}
    parser.add_argument("--only", choices=sections, action="append", help="run only these sections")
    args = parser.parse_args()
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(1)  # the references and the build alike; the rasteriser sets its own
    rows: list[Row] = []
    for name, section in sections.items():
        if args.only is None or name in args.only:
            rows += section()
    if args.full:
        torch.set_num_threads(threads)
        rows += full_runs()
    print(f"\nthis machine: {threads} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"| {'benchmark':<58} | {'reference':<33} | reference | this build | ratio |")
    print(f"|{'-' * 60}|{'-' * 35}|-----------|------------|-------|")
    for r in rows:
        ref = f"{r.reference_s * 1e3:7.1f} ms" if r.reference_s is not None else " " * 10
        ratio = f"{r.reference_s / r.build_s:5.1f}x" if r.reference_s is not None else " " * 6
        build = f"{r.build_s * 1e3:8.1f} ms" if r.build_s < 10 else f"{r.build_s:9.1f} s"
        print(f"| {r.name:<58} | {r.reference:<33} | {ref}| {build} | {ratio}|")


if __name__ == "__main__":
    main()
