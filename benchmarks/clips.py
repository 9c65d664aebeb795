"""Clip rendering speed of the prior's training set: worker processes against one process.

    python benchmarks/clips.py [--clips 200] [--textured-clips 60] [--workers 2]

Renders the same clip sets (plain, then textured) with one process and with ``--workers``
processes and prints ms per clip and the ratio; the sets are checked to be identical. Spawning
the workers is included in their time (a real `train-prior` run pays it once).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--textured-clips", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from sim import world as sim_world
    from sim.clips import ClipConfig, generate

    world = sim_world.create()
    try:
        for label, count, textured in (("plain", args.clips, 0.0), ("textured", args.textured_clips, 1.0)):
            seconds, videos = [], []
            for workers in (1, args.workers):
                t0 = time.perf_counter()
                videos.append(generate(world, count, 77, ClipConfig(textured=textured), workers=workers).videos)
                seconds.append(time.perf_counter() - t0)
            assert np.array_equal(videos[0], videos[1]), "worker processes rendered a different set"
            print(f"{label:8s} {count:4d} clips: 1 process {1000 * seconds[0] / count:6.1f} ms/clip, "
                  f"{args.workers} processes {1000 * seconds[1] / count:6.1f} ms/clip, "
                  f"speed-up {seconds[0] / seconds[1]:.2f}x")
    finally:
        world.close()


if __name__ == "__main__":
    main()
