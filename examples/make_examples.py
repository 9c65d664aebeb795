"""Regenerate the small assets in examples/ (run: python examples/make_examples.py).

tabletop/scan.ply  an unlabelled, coloured point-cloud scan of a table with three objects
                   (the `chord-robot scene` example; segmentation finds them)
"""

from pathlib import Path

from chord_robot import synth

HERE = Path(__file__).parent


def main() -> None:
    synth.write_scan(HERE / "tabletop", "points-ply", synth.tabletop(seed=0), num_points=20_000)


if __name__ == "__main__":
    main()
