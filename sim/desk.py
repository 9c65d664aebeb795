"""A desk scan with several objects: the close-laptop task's laptop and the lower-lamp task's
lamp moved apart on one table, a mug and a book (labelled, coloured mesh PLY). For the headline
command's benchmark and test (`chord-robot plan --scan desk.ply --task ...`); ``desk.json``
keeps each articulated object's spec, base pose and joints so a flow can be measured against it
(`sim.articulation`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

PLACES = {"laptop": (0.42, -0.25), "lamp": (0.45, 0.22)}
"""Where each articulated object's base centre is put on the table (x, y), metres."""


def _moved(mesh, dx: float, dy: float):
    out = mesh.copy()
    out.apply_translation([dx, dy, 0.0])
    return out


def write_desk(out: str | os.PathLike[str], seed: int = 9101) -> dict:
    """Write ``desk.ply``, ``desk.labels.json`` and ``desk.json`` into ``out``; returns the
    articulated objects' info (spec, base pose, joints, start angle in degrees)."""
    import trimesh

    from chord_robot.atomic import write_text_atomic
    from sim import world as sim_world
    from sim.tasks.close_laptop import CloseLaptop
    from sim.tasks.flow_inputs import table_surface, write_labelled_scan
    from sim.tasks.lower_lamp import LowerLamp

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = sim_world.create()
    objects, info = {}, {}
    try:
        objects["table"] = table_surface(world)
        for kind, task in (("laptop", CloseLaptop(world)), ("lamp", LowerLamp(world))):
            task.reset(seed)
            mesh, colours = task.scan_surfaces()[kind]
            centre = np.asarray(task.base_pose)[:3, 3]
            dx, dy = PLACES[kind][0] - centre[0], PLACES[kind][1] - centre[1]
            objects[kind] = (_moved(mesh, dx, dy), colours)
            pose = np.asarray(task.base_pose, dtype=float).copy()
            pose[:2, 3] += (dx, dy)
            joints = [task.lid_angle()] if kind == "laptop" else [float(j) for j in task.joints()]
            info[kind] = {"spec": dict(vars(task.spec)), "base_pose": pose.tolist(), "joints": joints,
                          "start_deg": round(math.degrees(sum(joints)), 1)}
    finally:
        world.close()
    mug = trimesh.creation.cylinder(radius=0.04, height=0.1, sections=32)
    mug.apply_translation([0.68, 0.02, 0.05])
    book = trimesh.creation.box([0.2, 0.14, 0.03])
    book.apply_translation([0.25, 0.0, 0.015])
    objects["mug"] = (mug, np.tile([0.85, 0.2, 0.15], (len(mug.vertices), 1)))
    objects["book"] = (book, np.tile([0.15, 0.35, 0.75], (len(book.vertices), 1)))
    write_labelled_scan(out / "desk.ply", objects)
    write_text_atomic(out / "desk.json", json.dumps(info, indent=1, default=float))
    return info


def measure_flow(desk: str | os.PathLike[str], flow_path: str | os.PathLike[str]) -> dict:
    """The flow's figures: per articulated object its joint turn and base drift, per other
    moving-or-not object its largest mean displacement (mm)."""
    from chord_robot.flow import ObjectFlow
    from sim import articulation, assets

    info = json.loads((Path(desk) / "desk.json").read_text())
    flow = ObjectFlow.load(flow_path)
    figures: dict = {"objects": {}}
    for name, motion in flow.objects.items():
        moved = np.linalg.norm(motion.trajectories - motion.trajectories[:1], axis=-1).mean(axis=1)  # (T,)
        entry = {"static": bool(motion.static), "max_mean_displacement_mm": round(1000 * float(moved.max()), 2)}
        if name in info:
            spec = (assets.LaptopSpec if name == "laptop" else assets.LampSpec)(**info[name]["spec"])
            art = articulation.articulation(name, spec, np.asarray(info[name]["base_pose"]),
                                            tuple(info[name]["joints"]))
            m = articulation.measure(motion.trajectories, art)
            entry |= {"start_deg": info[name]["start_deg"], "turn_deg": round(m["final_deg"], 1),
                      "base_drift_max_mm": round(m["base_drift_max_mm"], 2)}
        figures["objects"][name] = entry
    return figures
