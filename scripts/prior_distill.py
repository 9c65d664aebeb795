"""Distillation from a trained video prior on held-out sim scenes (issue #9, docs/trained-prior.md).

    python scripts/prior_distill.py scenes DIR
        Writes the held-out scans (the sim tasks' coloured labelled meshes at seeds they never
        use elsewhere: new sizes, poses and colours) and DIR/scenes.json (object, spec, base
        pose, joint values at frame 0).
    python scripts/prior_distill.py run DIR SCENE "PROMPT" OUT [extra flow arguments ...]
        `chord-robot flow --prior wan` on DIR/SCENE.ply, then measures the flow (OUT.json) and
        renders it (OUT.mp4). The model comes from $PRIOR (a `chord-robot train-prior`
        directory); the flow arguments default to the cpu preset at 32x32, 9 frames, 300
        iterations, --rigid-parts.
    python scripts/prior_distill.py measure DIR SCENE FLOW.zarr
        Prints the measurement (`sim.articulation.measure`) as JSON.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCENES = {  # name: (task, seed, task config overrides)
    "laptop-close": ("close-laptop", 9001, {}),
    "laptop-open": ("close-laptop", 9002, {"open_deg": (50.0, 55.0)}),
    "laptop-close-80": ("close-laptop", 9004, {"open_deg": (75.0, 85.0)}),
    "lamp-lower": ("lower-lamp", 9003, {}),
}
FLOW_ARGS = ["--allow-cpu", "--size", "32x32", "--frames", "9", "--iters", "300", "--rigid-parts"]


def write_scenes(out: Path) -> dict:
    from sim import world as sim_world
    from sim.tasks.flow_inputs import write_scan
    from sim.tasks.close_laptop import CloseLaptop, CloseLaptopConfig
    from sim.tasks.lower_lamp import LowerLamp

    out.mkdir(parents=True, exist_ok=True)
    world = sim_world.create()
    info = {}
    try:
        for name, (task_name, seed, overrides) in SCENES.items():
            task = (CloseLaptop(world, CloseLaptopConfig(**overrides)) if task_name == "close-laptop"
                    else LowerLamp(world))
            task.reset(seed)
            write_scan(task, out / f"{name}.ply")
            kind = "laptop" if task_name == "close-laptop" else "lamp"
            joints = [task.lid_angle()] if kind == "laptop" else [float(j) for j in task.joints()]
            info[name] = {"kind": kind, "task": task_name, "seed": seed, "spec": dict(vars(task.spec)),
                          "base_pose": np.asarray(task.base_pose).tolist(), "joints": joints,
                          "start_deg": round(math.degrees(sum(joints)), 1)}
            print(f"{name}: {kind}, start {info[name]['start_deg']} deg, seed {seed}")
    finally:
        world.close()
    (out / "scenes.json").write_text(json.dumps(info, indent=1, default=float))
    return info


def measure(scene_dir: Path, scene: str, flow_path: Path) -> dict:
    from chord_robot.flow import ObjectFlow
    from sim import articulation, assets

    info = json.loads((scene_dir / "scenes.json").read_text())[scene]
    spec = (assets.LaptopSpec if info["kind"] == "laptop" else assets.LampSpec)(**info["spec"])
    art = articulation.articulation(info["kind"], spec, np.asarray(info["base_pose"]), tuple(info["joints"]))
    flow = ObjectFlow.load(flow_path)
    return articulation.measure(flow.objects[info["kind"]].trajectories, art)


def write_close_up(flow_path: Path, video: Path, scene_dir: Path, scene: str, size: tuple[int, int] = (320, 240)) -> None:
    """The flow's points rendered from two sides of the object (front-left and side), frames
    side by side, as an mp4 at 4 frames per second."""
    import imageio.v3 as iio

    from chord_robot.camera import frame_points
    from chord_robot.flow import ObjectFlow
    from chord_robot.app.views.videos import render_flow

    info = json.loads((scene_dir / "scenes.json").read_text())[scene]
    flow = ObjectFlow.load(flow_path)
    points = flow.objects[info["kind"]].trajectories.reshape(-1, 3)
    pose = np.asarray(info["base_pose"])
    front = math.degrees(math.atan2(pose[1, 0], pose[0, 0]))  # the object's +x (its front)
    rows = []
    for azimuth in (front - 40.0, front + 90.0):
        camera = frame_points(points, *size, azimuth_deg=azimuth, elevation_deg=25.0, fov_y_deg=40.0, margin=1.15)
        rows.append(render_flow(flow, camera, *size))
    frames = np.concatenate(rows, axis=2)
    iio.imwrite(video, frames, fps=4, macro_block_size=2)


def run(scene_dir: Path, scene: str, prompt: str, out: Path, extra: list[str]) -> dict:
    prior = os.environ.get("PRIOR")
    if not prior:
        sys.exit("set PRIOR to a train-prior directory")
    flow_path = out.with_suffix(".zarr")
    args = ["chord-robot", "flow", "--scan", str(scene_dir / f"{scene}.ply"), "--task", prompt, "-o",
            str(flow_path), "--prior", "wan", "--model", prior, *FLOW_ARGS, *extra]
    start = time.time()
    with open(out.with_suffix(".log"), "w") as log:
        code = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - start
    if code:
        sys.exit(f"flow failed ({code}); see {out.with_suffix('.log')}")
    result = {"scene": scene, "prompt": prompt, "args": args[1:], "seconds": round(seconds, 1),
              **measure(scene_dir, scene, flow_path)}
    write_close_up(flow_path, out.with_suffix(".mp4"), scene_dir, scene)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("scene", "prompt", "seconds", "angle_deg", "base_drift_max_mm",
                                             "rigidity_mm", "joint_gap_mm")}))
    return result


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "scenes":
        write_scenes(Path(argv[1]))
    elif len(argv) >= 5 and argv[0] == "run":
        run(Path(argv[1]), argv[2], argv[3], Path(argv[4]), argv[5:])
    elif len(argv) == 4 and argv[0] == "measure":
        print(json.dumps(measure(Path(argv[1]), argv[2], Path(argv[3]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
