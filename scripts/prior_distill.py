"""Distillation from a trained video prior on held-out scenes (issues #9, #16; docs/shipped-prior.md).

    python scripts/prior_distill.py scenes DIR
        Writes the held-out scans and DIR/scenes.json (object, spec, base pose, joint values
        at frame 0 ...): the sim tasks' coloured labelled meshes at seeds they never use
        elsewhere (built by the tasks, not the clip generator: other assets' code, patch
        textures, the task's own start states), and scans built another way: a laptop of two
        checkerboard boxes (lid at 105 degrees) on a grey table, and a duck (pybullet_data's
        mesh, never in the clips) beside a plate; a pick scene with a mug and a book on the
        table as well (`banana-plate-clutter`), and one with the banana already on the plate
        (`banana-on-plate`, put there by the task's scripted motion, to be taken off).
    python scripts/prior_distill.py run DIR SCENE "PROMPT" OUT [extra flow arguments ...]
        `chord-robot flow` on DIR/SCENE.ply, then measures the flow (OUT.json) and renders it
        (OUT.mp4). The model: $PRIOR (a `chord-robot train-prior` directory; flow arguments
        the cpu preset at its clips' size and frames, 300 iterations, --rigid-parts) or, without $PRIOR,
        the shipped prior with its own preset (what `chord-robot flow --scan --task` runs).
    python scripts/prior_distill.py measure DIR SCENE FLOW.zarr
        Prints the measurement (`sim.articulation.measure`) as JSON.
    python scripts/prior_distill.py quality DIR OUT [extra flow arguments ...]
        The shipped prior's quality figures (docs/shipped-prior.md, docs/performance.md): `run`
        over seeds 0-3 x {laptop-open opens, laptop-open closes, lamp-lower lowers} into OUT,
        then one line per motion (final angle, base drift, seconds per seed) in OUT/table.txt.
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
    "lamp-raise": ("lower-lamp", 9007, {"arm_start": (0.55, 0.65), "head_start": (0.5, 0.7)}),
    "banana-plate": ("pick-banana", 9005, {}),
    "cloth-fold": ("fold-fabric", 9006, {}),
    "checker-laptop": ("built", 9008, {}),
    "duck-plate": ("built", 9009, {}),
    "banana-plate-clutter": ("pick-banana", 9010, {}),
    "banana-on-plate": ("pick-banana", 9011, {}),
}
CLUTTER = ("banana-plate-clutter",)
"""Pick scenes that also get two still distractors (a mug, a book: `_distractors`)."""
ON_PLATE = ("banana-on-plate",)
"""Pick scenes scanned after the task's scripted motion has put the banana on the plate (to be
taken off)."""
FLOW_ARGS = ["--preset", "cpu", "--allow-cpu", "--iters", "300", "--rigid-parts"]
"""Flow arguments for $PRIOR, with its own clips' frames and size (`shipped.clip_size`): the cpu
preset named, as these runs were measured (a `train-prior` directory given by `--model` would
otherwise get the shipped preset)."""


def _checker(points: np.ndarray, cell: float, a, b) -> np.ndarray:
    """(M, 3) RGB: a 3D checkerboard of ``cell`` metres over ``points`` (M, 3), colours a / b."""
    k = np.floor(points / cell).astype(int).sum(1) % 2
    return np.where(k[:, None] == 0, np.asarray(a), np.asarray(b))


def _grey_table() -> tuple:
    import trimesh

    table = trimesh.creation.box((1.2, 1.2, 0.05), transform=trimesh.transformations.translation_matrix([0.4, 0, -0.025]))
    return table, np.tile([0.55, 0.55, 0.55], (len(table.vertices), 1))


def _built_scene(name: str, path: Path) -> dict:
    """The scans built outside the sim tasks and the clip generator."""
    import pybullet_data
    import trimesh

    from sim import assets
    from sim.tasks.flow_inputs import write_labelled_scan

    if name == "checker-laptop":
        spec = assets.LaptopSpec(width=0.3, depth=0.21)
        angle = math.radians(105.0)
        pose = np.eye(4)
        pose[:3, :3] = trimesh.transformations.rotation_matrix(math.radians(25.0), [0, 0, 1])[:3, :3]
        pose[:3, 3] = [0.5, 0.0, spec.base_thickness / 2]
        meshes, links = assets.laptop_meshes(spec), assets.laptop_link_poses(spec, angle)
        parts, colours = [], []
        for link, (a, b) in (("base", ((0.1, 0.1, 0.1), (0.9, 0.9, 0.9))), ("lid", ((0.8, 0.1, 0.1), (0.95, 0.95, 0.95)))):
            local = meshes[link].subdivide_to_size(0.006)
            colours.append(_checker(np.asarray(local.vertices), 0.03, a, b))
            parts.append(local.apply_transform(pose @ links[link]))
        laptop = trimesh.util.concatenate(parts)
        write_labelled_scan(path, {"table": _grey_table(), "laptop": (laptop, np.concatenate(colours))})
        return {"kind": "laptop", "task": "built", "spec": dict(vars(spec)), "base_pose": pose.tolist(),
                "joints": [angle], "start_deg": 105.0}
    duck = trimesh.load(Path(pybullet_data.getDataPath()) / "duck_vhacd.obj", force="mesh")
    duck.apply_scale(0.09 / float(duck.extents.max()))
    duck.apply_translation(-duck.bounds.mean(0))
    duck.apply_translation([0.42, -0.12, duck.extents[2] / 2])
    duck = duck.subdivide_to_size(0.008)
    plate_spec = assets.PlateSpec(radius=0.11)
    plate = assets.plate_mesh(plate_spec).subdivide_to_size(0.01)
    plate.apply_translation([0.5, 0.12, plate_spec.thickness / 2])
    write_labelled_scan(path, {"table": _grey_table(), "duck": (duck, np.tile([0.95, 0.75, 0.1], (len(duck.vertices), 1))),
                               "plate": (plate, np.tile([0.3, 0.6, 0.9], (len(plate.vertices), 1)))})
    return {"kind": "pick", "object": "duck", "task": "built", "plate_centre": [0.5, 0.12, plate_spec.thickness],
            "start_centroid": duck.vertices.mean(0).tolist()}


def _distractors(banana: np.ndarray, plate: np.ndarray, rng: np.random.Generator) -> dict:
    """A mug (8 cm across, 10 cm tall) and a book (20 x 14 x 3 cm) at random free spots of the
    table, their centres at least 20 cm from the banana, the plate and the straight way between
    them, 25 cm apart; SystemExit if a turned book's corner still reaches the plate's rim."""
    import trimesh

    def clear(p: np.ndarray, placed: list) -> bool:
        a, b = banana[:2], plate[:2]
        s = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        return (np.linalg.norm(p - (a + s * (b - a))) > 0.2
                and all(np.linalg.norm(p - q) > 0.25 for q in placed))

    spots: list[np.ndarray] = []
    while len(spots) < 2:
        p = rng.uniform([0.25, -0.35], [0.75, 0.35])
        if clear(p, spots):
            spots.append(p)
    mug = trimesh.creation.cylinder(radius=0.04, height=0.1, sections=32).subdivide_to_size(0.01)
    mug.apply_translation([*spots[0], 0.05])
    book = trimesh.creation.box([0.2, 0.14, 0.03]).subdivide_to_size(0.01)
    book.apply_transform(trimesh.transformations.rotation_matrix(rng.uniform(0, np.pi), [0, 0, 1]))
    book.apply_translation([*spots[1], 0.015])
    reach = min(np.linalg.norm(np.asarray(m.vertices)[:, :2] - plate[:2], axis=1).min() for m in (mug, book))
    if reach < 0.13:  # the plates' radius is at most 12.5 cm
        raise SystemExit(f"prior_distill: a distractor comes {reach * 1000:.0f} mm from the plate's centre")
    return {"mug": (mug, np.tile([0.85, 0.2, 0.15], (len(mug.vertices), 1))),
            "book": (book, np.tile([0.15, 0.35, 0.75], (len(book.vertices), 1)))}


def write_scenes(out: Path) -> dict:
    from sim import assets
    from sim import world as sim_world
    from sim.tasks.close_laptop import CloseLaptop, CloseLaptopConfig
    from sim.tasks.flow_inputs import table_surface, write_labelled_scan, write_scan
    from sim.tasks.fold_fabric import FoldFabric
    from sim.tasks.lower_lamp import LowerLamp, LowerLampConfig
    from sim.tasks.pick_banana import PickBanana
    from sim.world import base_matrix

    out.mkdir(parents=True, exist_ok=True)
    world = sim_world.create()
    info = {}
    try:
        for name, (task_name, seed, overrides) in SCENES.items():
            if task_name == "built":
                info[name] = _built_scene(name, out / f"{name}.ply")
                print(f"{name}: {info[name]['kind']}, built")
                continue
            if task_name == "close-laptop":
                task = CloseLaptop(world, CloseLaptopConfig(**overrides))
            elif task_name == "lower-lamp":
                task = LowerLamp(world, LowerLampConfig(**overrides))
            else:
                task = PickBanana(world) if task_name == "pick-banana" else FoldFabric(world)
            task.reset(seed)
            if name in ON_PLATE:
                task.play_oracle()
            if name in CLUTTER:
                extra = _distractors(task.banana_start[:3, 3], task.plate_start[:3, 3], np.random.default_rng(seed))
                write_labelled_scan(out / f"{name}.ply", {"table": table_surface(world), **task.scan_surfaces(), **extra})
            else:
                write_scan(task, out / f"{name}.ply")
            if task_name == "pick-banana":
                top = float(task.plate_start[2, 3] + assets.plate_top(task.plate_spec))
                start = task.banana_start[:3, 3] if name not in ON_PLATE else base_matrix(world, task.banana)[:3, 3]
                info[name] = {"kind": "pick", "object": "banana", "task": task_name, "seed": seed,
                              "plate_centre": [*task.plate_start[:2, 3].tolist(), top],
                              "start_centroid": start.tolist()}
            elif task_name == "fold-fabric":
                info[name] = {"kind": "fold", "task": task_name, "seed": seed,
                              "corners": task.start_nodes[[task.corner, task.opposite]].tolist()}
            else:
                kind = "laptop" if task_name == "close-laptop" else "lamp"
                joints = [task.lid_angle()] if kind == "laptop" else [float(j) for j in task.joints()]
                info[name] = {"kind": kind, "task": task_name, "seed": seed, "spec": dict(vars(task.spec)),
                              "base_pose": np.asarray(task.base_pose).tolist(), "joints": joints,
                              "start_deg": round(math.degrees(sum(joints)), 1)}
            print(f"{name}: {info[name]['kind']}, seed {seed}")
    finally:
        world.close()
    (out / "scenes.json").write_text(json.dumps(info, indent=1, default=float))
    return info


def _measure_pick(traj: np.ndarray, info: dict) -> dict:
    """The carried object: its centroid's final distance to the plate centre (xy), its height
    profile (rise of the centroid per frame), its lowest point's final height above the plate's
    top, and how rigid it stayed (worst frame's RMS residual of a rigid fit)."""
    from sim.articulation import _kabsch

    centroid = traj.mean(1)
    plate = np.asarray(info["plate_centre"])
    worst = 0.0
    for t in range(len(traj)):
        r, tr = _kabsch(traj[0], traj[t])
        worst = max(worst, float(np.sqrt(((traj[t] - (traj[0] @ r.T + tr)) ** 2).sum(1).mean())))
    rise = (centroid[:, 2] - centroid[0, 2]) * 1000
    return {"plate_distance_mm": round(float(np.linalg.norm(centroid[-1, :2] - plate[:2])) * 1000, 1),
            "start_plate_distance_mm": round(float(np.linalg.norm(centroid[0, :2] - plate[:2])) * 1000, 1),
            "rise_mm": rise.round(1).tolist(), "lift_max_mm": round(float(rise.max()), 1),
            "final_bottom_above_plate_mm": round(float((traj[-1, :, 2].min() - plate[2]) * 1000), 1),
            "rigidity_mm": round(worst * 1000, 2)}


def _measure_fold(traj: np.ndarray, info: dict) -> dict:
    """The cloth: the corner that moved most, its final distance to the opposite corner and to
    the nearest other corner (a corner-to-corner fold lands on the opposite one, an edge-to-edge
    fold on a neighbour), how far the corner across from it drifted, and its highest lift."""
    from scipy.spatial import cKDTree

    rest = traj[0]
    centre = rest.mean(0)
    c0 = rest[np.argmax(np.linalg.norm(rest - centre, axis=1))]
    c2 = rest[np.argmax(np.linalg.norm(rest - c0, axis=1))]
    side = np.cross(c2 - c0, rest - c0)[:, 2]
    corners = [c0, rest[np.argmax(side)], c2, rest[np.argmin(side)]]
    idx = cKDTree(rest).query(np.asarray(corners))[1]
    moved = np.linalg.norm(traj[-1, idx] - rest[idx], axis=1)
    m = int(np.argmax(moved))
    final = traj[-1, idx]
    others = [k for k in range(4) if k != m]
    return {"corner_moved_mm": round(float(moved[m]) * 1000, 1),
            "to_opposite_mm": round(float(np.linalg.norm(final[m] - final[(m + 2) % 4])) * 1000, 1),
            "to_nearest_corner_mm": round(float(min(np.linalg.norm(final[m] - final[k]) for k in others)) * 1000, 1),
            "opposite_drift_mm": round(float(moved[(m + 2) % 4]) * 1000, 1),
            "corner_lift_max_mm": round(float((traj[:, idx[m], 2] - rest[idx[m], 2]).max()) * 1000, 1)}


def measure(scene_dir: Path, scene: str, flow_path: Path) -> dict:
    """The moving object's figures, and the largest displacement of every other object's points."""
    from chord_robot.flow import ObjectFlow
    from sim import articulation, assets

    info = json.loads((scene_dir / "scenes.json").read_text())[scene]
    flow = ObjectFlow.load(flow_path)
    name = {"pick": info.get("object"), "fold": "cloth"}.get(info["kind"], info["kind"])
    traj = np.asarray(flow.objects[name].trajectories, dtype=np.float64)
    if info["kind"] == "pick":
        out = _measure_pick(traj, info)
    elif info["kind"] == "fold":
        out = _measure_fold(traj, info)
    else:
        spec = (assets.LaptopSpec if info["kind"] == "laptop" else assets.LampSpec)(**info["spec"])
        art = articulation.articulation(info["kind"], spec, np.asarray(info["base_pose"]), tuple(info["joints"]))
        out = articulation.measure(traj, art)
    out["others_drift_max_mm"] = {k: round(float(np.linalg.norm(m.trajectories - m.trajectories[:1], axis=-1).max())
                                           * 1000, 2) for k, m in flow.objects.items() if k != name}
    return out


def write_close_up(flow_path: Path, video: Path, scene_dir: Path, scene: str, size: tuple[int, int] = (320, 240)) -> None:
    """The flow's points rendered from two sides of the object (front-left and side), frames
    side by side, as an mp4 at 4 frames per second."""
    import imageio.v3 as iio

    from chord_robot.app.views.videos import render_flow
    from chord_robot.camera import frame_points
    from chord_robot.flow import ObjectFlow

    info = json.loads((scene_dir / "scenes.json").read_text())[scene]
    flow = ObjectFlow.load(flow_path)
    name = {"pick": info.get("object"), "fold": "cloth"}.get(info["kind"], info["kind"])
    points = flow.objects[name].trajectories.reshape(-1, 3)
    pose = np.asarray(info.get("base_pose", np.eye(4)))
    front = math.degrees(math.atan2(pose[1, 0], pose[0, 0]))  # the object's +x (its front)
    rows = []
    for azimuth in (front - 40.0, front + 90.0):
        camera = frame_points(points, *size, azimuth_deg=azimuth, elevation_deg=25.0, fov_y_deg=40.0, margin=1.15)
        rows.append(render_flow(flow, camera, *size))
    frames = np.concatenate(rows, axis=2)
    iio.imwrite(video, frames, fps=4, macro_block_size=2)


def run(scene_dir: Path, scene: str, prompt: str, out: Path, extra: list[str]) -> dict:
    prior = os.environ.get("PRIOR")
    flow_path = out.with_suffix(".zarr")
    model = []
    if prior:
        from flowgen.priors.shipped import clip_size

        frames, height, width = clip_size(prior)
        model = ["--prior", "wan", "--model", prior, *FLOW_ARGS, "--size", f"{width}x{height}", "--frames", str(frames)]
    args = ["chord-robot", "flow", "--scan", str(scene_dir / f"{scene}.ply"), "--task", prompt, "-o",
            str(flow_path), *model, *extra]
    start = time.time()
    with open(out.with_suffix(".log"), "w") as log:
        code = subprocess.run(args, check=False, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - start
    if code:
        sys.exit(f"flow failed ({code}); see {out.with_suffix('.log')}")
    result = {"scene": scene, "prompt": prompt, "args": args[1:], "seconds": round(seconds, 1),
              **measure(scene_dir, scene, flow_path)}
    write_close_up(flow_path, out.with_suffix(".mp4"), scene_dir, scene)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    keys = ("scene", "prompt", "seconds", "final_deg", "attached_final_deg", "base_drift_max_mm", "plate_distance_mm",
            "lift_max_mm", "final_bottom_above_plate_mm", "corner_moved_mm", "to_opposite_mm", "to_nearest_corner_mm",
            "opposite_drift_mm", "rigidity_mm", "others_drift_max_mm")
    print(json.dumps({k: result[k] for k in keys if k in result}))
    return result


QUALITY = (("laptop-open", "the laptop lid opens", "open"), ("laptop-open", "the laptop lid closes", "close"),
           ("lamp-lower", "the lamp lowers its head", "lamp"))
"""The motions of the quality protocol: (scene, prompt, tag)."""


def quality(scene_dir: Path, out: Path, extra: list[str], seeds: tuple[int, ...] = (0, 1, 2, 3)) -> str:
    """`run` over ``seeds`` x `QUALITY` (a finished run is kept: a killed protocol resumes);
    returns and writes the table."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"extra arguments: {' '.join(extra) or '(none)'}"]
    for scene, prompt, tag in QUALITY:
        rows = []
        for seed in seeds:
            path = out / f"{tag}-s{seed}"
            done = path.with_suffix(".json")
            rows.append(json.loads(done.read_text()) if done.exists() else
                        run(scene_dir, scene, prompt, path, [*extra, "--seed", str(seed)]))
        lines.append(f"{prompt}: final deg " + " / ".join(f"{r['final_deg']:+.1f}" for r in rows)
                     + " | base drift mm " + " / ".join(f"{r['base_drift_max_mm']:.2f}" for r in rows)
                     + " | s " + " / ".join(f"{r['seconds']:.0f}" for r in rows))
    table = "\n".join(lines) + "\n"
    (out / "table.txt").write_text(table)
    return table


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "scenes":
        write_scenes(Path(argv[1]))
    elif len(argv) >= 5 and argv[0] == "run":
        run(Path(argv[1]), argv[2], argv[3], Path(argv[4]), argv[5:])
    elif len(argv) >= 3 and argv[0] == "quality":
        print(quality(Path(argv[1]), Path(argv[2]), argv[3:]), end="")
    elif len(argv) == 4 and argv[0] == "measure":
        print(json.dumps(measure(Path(argv[1]), argv[2], Path(argv[3]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
