"""The demo's video fit, timed, and its error against the task's scripted motion.

    python benchmarks/video_fit.py [--seeds 0 1 2 3] [--threads 2]

Runs `chord_robot.app.flowrun.run_flow` as `chord-robot demo --source video` does (the shipped
example's scan, video, camera and background image, the demo's preset), once per flow seed,
and prints per seed the run's wall seconds (set-up, the fit, the export; not the video's
decoding) and the flow's error against the task's oracle motion (`demo.flow_error_mm`: mean
over frames and at the final frame, mm). The demo itself runs one torch thread; ``--threads``
sets them here. Another checkout's code is measured with ``PYTHONPATH=DIR``. This machine's
figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: another checkout given in PYTHONPATH is the one measured
import chord_robot  # before torch: it sets OpenMP's spin count, read when torch loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="Flow seeds, one run each.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads.")
    args = parser.parse_args()

    import torch

    from chord_robot.app.demo import DemoConfig, flow_error_mm, load_example
    from chord_robot.app.flowconfig import flow_config
    from chord_robot.app.flowrun import prepare_flow, run_flow
    from sim import world as simworld
    from sim.tasks import make

    config = DemoConfig()
    example = load_example(ROOT / "examples" / "laptop")
    task = make(example.task, simworld.create(direct=True))
    task.reset(example.seed)
    guides = {"videos": [example.path("video.mp4")], "cameras": [example.path("camera.json")],
              "backgrounds": [example.path("background.png")]}
    torch.set_num_threads(args.threads)
    print(f"code: {Path(chord_robot.__file__).parents[1]}; torch threads {args.threads}")
    for seed in args.seeds:
        fconfig = flow_config(config.preset or "cpu", "video", frames=config.frames, iters=config.iterations,
                              seed=seed)
        inputs = prepare_flow(example.path("scan.ply"), config=fconfig, task=example.text, **guides)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            flow = run_flow(inputs, example.text, Path(tmp) / "flow.zarr").flow
            seconds = time.perf_counter() - start
        errors = flow_error_mm(flow, task.oracle_flow(num_frames=flow.num_frames))
        cells = ", ".join(f"{name} {e['mean']:.2f} / {e['final']:.2f} mm" for name, e in errors.items())
        print(f"seed {seed}: {seconds:.1f} s, error (mean / final frame) {cells}")


if __name__ == "__main__":
    main()
