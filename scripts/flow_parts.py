"""How the distillation splits a task's moving objects into parts, and where each part turns.

    python scripts/flow_parts.py TASK SEEDS [--model DIR] [--set FIELD=VALUE ...] [-o OUT.json]

A diagnostic of the chord source's representation (docs/comparison/README.md, session 38), not
the method. Per seed, the task is reset, its scene written as the labelled scan the chord source
distils (`sim.tasks.flow_inputs.write_scan`) and the 4D model built as `chord-robot eval
--flow-source chord` builds it (the preset of ``--model``, default the shipped model the task's
words choose, each ``--set`` applied as in `scripts/chord_sweep.py`; `flowgen.model.build_model`):
no prior is run. Prints one line of JSON per seed
(``model``: the prior whose preset built it): per moving object, each part (`flowgen.control`:
the scan's mesh components, merged where sunk into each other or one stands on the other;
`flowgen.sdf`) with its Gaussians, its height
range (m), whether it rests on a static object, and with part motion the point it turns about
and the part it hangs from (`flowgen.parts.part_joints`: the mean midpoint of its contacts with
that part; -1: it hangs from none, and turns about the midpoint of all its contacts). For an
articulated task (close-laptop, lower-lamp: `Task.articulated`) each part also says how many of its Gaussians lie
nearest each of the object's links; the joint hinged to the base (`sim.articulation.Articulation`:
a point on its axis) is printed, and each part that hangs from a part resting on a static object
(a lid, a lamp's arm) gives its pivot's distance from that joint's axis (mm; a pivot anywhere on
the axis turns the part the same way) and its height above or below the joint (mm).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chord_sweep import adjuster, parse_seeds


def parts_of(task_name: str, seed: int, model: str | None, settings: list[str] | None = None) -> dict:
    from scipy.spatial import cKDTree

    from chord_robot.app.flowconfig import choose_prior, flow_config, shipped_model
    from chord_robot.app.flowrun import prepare_flow
    from flowgen.model import build_model
    from sim import world as simworld
    from sim.tasks import make
    from sim.tasks.flow_inputs import write_scan

    world = simworld.create(direct=True)
    try:
        task = make(task_name, world)
        task.reset(seed)
        choice = choose_prior("wan", model if model is not None else shipped_model(task.text), None, False)
        config = flow_config(choice.preset, "wan", model=choice.model)
        with tempfile.TemporaryDirectory(prefix="flow-parts-") as tmp:
            scan = write_scan(task, Path(tmp) / "scan.ply")
            inputs = prepare_flow(scan, config=config, task=task.text, model=choice.model,
                                  adjust=adjuster(settings or []))
            built = build_model(inputs.scene, inputs.config)
        art = task.articulated() if hasattr(task, "articulated") else None  # close-laptop, lower-lamp
        row: dict = {"task": task_name, "seed": seed, "model": str(choice.model), "objects": {}}
        for obj in built.moving:
            means, part = obj.rest.means.numpy(), obj.part.numpy()
            supported = set(obj.supported.tolist())
            pivots = obj.part_pivot.numpy() if obj.part_pivot is not None else None
            parents = obj.part_parent.numpy() if obj.part_parent is not None else None
            owner = None
            if art is not None and obj.name == art.kind:
                owner = np.stack([cKDTree(s).query(means)[0] for s in art.samples], 1).argmin(1)
            parts = []
            for p in np.unique(part):
                sel = part == p
                entry = {"part": int(p), "gaussians": int(sel.sum()),
                         "height_m": [round(float(means[sel, 2].min()), 3), round(float(means[sel, 2].max()), 3)],
                         "rests_on_static": int(p) in supported}
                if owner is not None:
                    entry["links"] = {link: int((owner[sel] == k).sum()) for k, link in enumerate(art.links)}
                if pivots is not None:
                    entry["pivot"] = [round(float(v), 4) for v in pivots[p]]
                    entry["hangs_from"] = int(parents[p])
                    if owner is not None and int(parents[p]) in supported:  # hinged to the still part
                        off = pivots[p] - art.origin
                        entry["pivot_below_joint_mm"] = round(-1000 * float(off[2]), 1)
                        off = off - np.dot(off, art.axis) * art.axis  # from the joint's axis line
                        entry["pivot_off_joint_axis_mm"] = round(1000 * float(np.linalg.norm(off)), 1)
                parts.append(entry)
            row["objects"][obj.name] = {"parts": parts}
            if owner is not None:
                row["objects"][obj.name]["joint"] = [round(float(v), 4) for v in art.origin]
        return row
    finally:
        world.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task")
    parser.add_argument("seeds", type=parse_seeds, help="e.g. 100-107 or 100,103")
    parser.add_argument("--model", default=None, help="a prior's directory (default: the shipped model the task's words choose)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("-o", "--out", type=Path, help="also write the rows here (JSON list)")
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        rows.append(parts_of(args.task, seed, args.model, args.settings))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
