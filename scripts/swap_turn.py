"""Which of a carried object's path and turn a flow's plan fails on (docs/comparison/README.md, session 31).

    python scripts/swap_turn.py TASK SEEDS --flows DIR --keep path|turn|neither -o OUT_DIR

Per seed, the flow kept in DIR (TASK-SEED.zarr, as `scripts/perfect_prior.py --flows` and
`scripts/chord_sweep.py --flows` keep them) has each object the task's scripted motion carries
(`Task.oracle_flow`) replaced by a rigid motion of the flow's own frame-0 points about their
centroid: ``--keep path`` keeps the flow's centroid path and takes the scripted motion's turn,
``--keep turn`` keeps the flow's turn (per frame, the rotation of the rigid transform that best
carries the object's frame-0 points onto that frame's, Kabsch) on the scripted motion's path
(its transforms applied to the flow's centroid), and ``--keep neither`` takes both from the
scripted motion (the control: the scripted motion at the flow's frames, on the flow's points). The scripted motion is resampled linearly in time to the flow's
frames (`flowgen.priors.video_io.resample_time`). The other objects (and what the scripted motion leaves in place, a plate) are the flow's. Written to OUT_DIR/TASK-SEED.zarr beside a
``settings.json`` of no settings and no model, so that `scripts/chord_sweep.py TASK SEEDS --flows OUT_DIR --execute` plans
and executes them as the evaluation does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chord_sweep import parse_seeds


def swapped(flow, oracle, keep: str):
    """``flow`` with each object ``oracle`` carries (its centre travels at least 1 mm) moved
    rigidly about the flow's frame-0 centroid c: frame t's points R_t (p - c) + c_t, the turn R_t
    and the path c_t from the flow or from ``oracle`` (the rigid transforms that best carry each
    one's frame-0 points onto frame t's, applied to c for the scripted path) as ``keep`` says."""
    import dataclasses

    import numpy as np
    import torch

    from chord_robot.flow import ObjectFlow
    from chord_robot.geometry import kabsch
    from flowgen.priors.video_io import resample_time

    objects = dict(flow.objects)
    for name, scripted in oracle.moving().items():
        theirs = resample_time(torch.as_tensor(scripted.trajectories, dtype=torch.float64), flow.num_frames).numpy()
        if np.linalg.norm(theirs.mean(1) - theirs[0].mean(0), axis=1).max() < 1e-3:
            continue  # what the scripted motion does not carry (a plate) stays the flow's
        own = flow.objects[name]
        mine = own.trajectories.astype(np.float64)
        centre = mine[0].mean(0)
        flow_poses, scripted_poses = kabsch(mine[0], mine), kabsch(theirs[0], theirs)
        turns = (flow_poses if keep == "turn" else scripted_poses)[:, :3, :3]
        path = mine.mean(1) if keep == "path" else scripted_poses[:, :3, :3] @ centre + scripted_poses[:, :3, 3]
        moved = np.einsum("tij,nj->tni", turns, mine[0] - centre) + path[:, None]
        objects[name] = dataclasses.replace(own, trajectories=moved, centers=None, quats=None, translations=None,
                                            scales=None)
    return ObjectFlow(objects, flow.task, flow.fps, flow.prior, flow.config)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("seeds", type=parse_seeds)
    parser.add_argument("--flows", type=Path, required=True, help="the flows (TASK-SEED.zarr)")
    parser.add_argument("--keep", choices=("path", "turn", "neither"), required=True,
                        help="what of the flow's carried objects to keep (the rest is the scripted motion's)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the folder the swapped flows go to")
    args = parser.parse_args(argv)
    from chord_robot.app.evaluate import EvalConfig
    from chord_robot.flow import ObjectFlow
    from sim import world as simworld
    from sim.tasks import make

    missing = [s for s in args.seeds if not (args.flows / f"{args.task}-{s}.zarr").exists()]
    if missing:
        raise SystemExit(f"swap_turn: no flow {args.task}-{missing[0]}.zarr in {args.flows}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "settings.json").write_text(json.dumps({"set": [], "model": None}))  # chord_sweep's key
    world = simworld.create(direct=True)
    try:
        task = make(args.task, world)
        for seed in args.seeds:
            task.reset(seed)
            flow = ObjectFlow.load(args.flows / f"{args.task}-{seed}.zarr")
            swapped(flow, task.oracle_flow(num_frames=EvalConfig.num_frames), args.keep).save(
                args.out / f"{args.task}-{seed}.zarr")
            print(f"{args.task} {seed}: {args.out / f'{args.task}-{seed}.zarr'}", flush=True)
    finally:
        world.close()


if __name__ == "__main__":
    main(sys.argv[1:])
