"""Regenerate the small assets in examples/ (run: python examples/make_examples.py).

tabletop/scan.ply  an unlabelled, coloured point-cloud scan of a table with three objects
                   (the `chord-robot scene` example; segmentation finds them)
laptop/            the `chord-robot demo` example: the close-laptop sim task at seed LAPTOP_SEED
                   - scan.ply + scan.labels.json: labelled mesh PLY with the colours the sim renders
                   - video.mp4 + camera.json: the lid closing (the task's scripted motion), 41 frames
                   - background.png: the same view without the laptop
                   - example.json: task name, seed and text
"""

import json
import tempfile
from pathlib import Path

from chord_robot import synth

HERE = Path(__file__).parent
LAPTOP_SEED = 0
"""Seed of the close-laptop task the demo runs."""


def make_laptop(out: Path, seed: int = LAPTOP_SEED) -> None:
    """The demo example: the close-laptop task's flow inputs at ``seed`` (assets cached in a
    temporary directory, so nothing outside ``out`` is written)."""
    from sim import world as simworld
    from sim.tasks import make
    from sim.tasks.flow_inputs import write_flow_inputs

    world = simworld.create(direct=True)
    try:
        with tempfile.TemporaryDirectory() as assets:
            task = make("close-laptop", world, asset_root=assets)
            task.reset(seed)
            write_flow_inputs(task, out, num_frames=41)
            meta = {"task": task.name, "seed": seed, "text": task.text}
            (out / "example.json").write_text(json.dumps(meta, indent=1) + "\n")
    finally:
        world.close()


def main() -> None:
    synth.write_scan(HERE / "tabletop", "points-ply", synth.tabletop(seed=0), num_points=20_000)
    make_laptop(HERE / "laptop")


if __name__ == "__main__":
    main()
