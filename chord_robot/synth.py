"""Synthetic tabletop scans with known answers, written in every supported scan format.

Used by the tests (load each format, compare object centres and extents with the truth) and
by `examples/make_examples.py`. Units: metres, z up, table top at z = 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from chord_robot.ply import write_ply
from chord_robot.scan import up_rotation
from chord_robot.scene import SH_C0

FORMATS = ("mesh-ply", "mesh-ply-labelled", "points-ply", "points-ply-labelled", "gaussians-ply",
           "gaussians-ply-labelled", "obj", "glb", "manifest")


@dataclass(frozen=True)
class SynthObject:
    """A mesh with a name and a colour; ``static`` for the table."""

    name: str
    mesh: trimesh.Trimesh
    color: tuple[float, float, float]
    static: bool = False


def tabletop(seed: int = 0) -> list[SynthObject]:
    """A table (0.9 x 0.6 m top) with three objects on it, placed with a little randomness."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.02, 0.02, (3, 2))
    table = trimesh.creation.box((0.9, 0.6, 0.04))
    table.apply_translation((0, 0, -0.02))
    box = trimesh.creation.box((0.12, 0.08, 0.10))
    box.apply_translation((0.18 + jitter[0, 0], 0.10 + jitter[0, 1], 0.05))
    can = trimesh.creation.cylinder(radius=0.04, height=0.12, sections=48)
    can.apply_translation((-0.2 + jitter[1, 0], 0.08 + jitter[1, 1], 0.06))
    block = trimesh.creation.box((0.06, 0.20, 0.08))
    block.apply_transform(trimesh.transformations.rotation_matrix(np.radians(30), (0, 0, 1)))
    block.apply_translation((0.0 + jitter[2, 0], -0.15 + jitter[2, 1], 0.04))
    return [
        SynthObject("table", table, (0.55, 0.40, 0.25), True),
        SynthObject("box", box, (0.85, 0.15, 0.10)),
        SynthObject("can", can, (0.10, 0.30, 0.85)),
        SynthObject("block", block, (0.15, 0.75, 0.20)),
    ]


def truth(objects: list[SynthObject]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (centre, extent) of the axis-aligned bounds, metres, z up."""
    return {o.name: (o.mesh.bounds.mean(0), o.mesh.bounds[1] - o.mesh.bounds[0]) for o in objects}


def _sample(objects: list[SynthObject], count: int, rng: np.random.Generator):
    areas = np.array([o.mesh.area for o in objects])
    per = np.maximum((count * areas / areas.sum()).astype(int), 200)
    pts, cols, labs = [], [], []
    for i, (o, n) in enumerate(zip(objects, per)):
        p, _ = trimesh.sample.sample_surface(o.mesh, n, seed=int(rng.integers(1 << 31)))
        pts.append(p)
        cols.append(np.tile(o.color, (n, 1)) + rng.normal(0, 0.02, (n, 3)))
        labs.append(np.full(n, i))
    return np.concatenate(pts), np.clip(np.concatenate(cols), 0, 1), np.concatenate(labs)


def write_scan(
    out_dir: str | os.PathLike[str],
    fmt: str,
    objects: list[SynthObject],
    up: str = "z",
    scale: float = 1.0,
    num_points: int = 40_000,
    seed: int = 0,
) -> Path:
    """Write ``objects`` as a scan in format ``fmt``; returns the path to load.

    ``up="y"`` writes a y-up scan and ``scale`` multiplies coordinates (1000 writes millimetres),
    so that loading with ``--up y --scale 1/scale`` recovers the truth.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    to_file = up_rotation(up).T * scale  # inverse of the loader's conversion (rotation transposed)

    def conv(p: np.ndarray) -> np.ndarray:
        return p @ to_file.T

    names = {str(i): o.name for i, o in enumerate(objects)}
    if fmt.startswith("mesh-ply"):
        verts, faces, cols, labs, off = [], [], [], [], 0
        for i, o in enumerate(objects):
            verts.append(o.mesh.vertices)
            faces.append(o.mesh.faces + off)
            cols.append(np.tile(o.color, (len(o.mesh.vertices), 1)))
            labs.append(np.full(len(o.mesh.vertices), i))
            off += len(o.mesh.vertices)
        v = conv(np.concatenate(verts))
        c = (np.concatenate(cols) * 255).astype(np.uint8)
        props = {"x": v[:, 0].astype(np.float32), "y": v[:, 1].astype(np.float32), "z": v[:, 2].astype(np.float32),
                 "red": c[:, 0], "green": c[:, 1], "blue": c[:, 2]}
        path = out / "scan.ply"
        if fmt == "mesh-ply-labelled":
            props["label"] = np.concatenate(labs).astype(np.int32)
            (out / "scan.labels.json").write_text(json.dumps(names))
        write_ply(path, props, np.concatenate(faces))
        return path
    if fmt.startswith("points-ply") or fmt.startswith("gaussians-ply"):
        p, c, lab = _sample(objects, num_points, rng)
        p = conv(p).astype(np.float32)
        props: dict[str, np.ndarray] = {"x": p[:, 0], "y": p[:, 1], "z": p[:, 2]}
        if fmt.startswith("points"):
            c8 = (c * 255).astype(np.uint8)
            props.update(red=c8[:, 0], green=c8[:, 1], blue=c8[:, 2])
        else:
            n = len(p)
            props.update({f"f_dc_{i}": ((c[:, i] - 0.5) / SH_C0).astype(np.float32) for i in range(3)})
            props.update({f"f_rest_{i}": np.zeros(n, np.float32) for i in range(45)})
            props["opacity"] = np.full(n, 3.0, np.float32)
            props.update({f"scale_{i}": np.full(n, np.log(0.004 * scale), np.float32) for i in range(3)})
            q = np.zeros((n, 4), np.float32)
            q[:, 0] = 1
            props.update({f"rot_{i}": q[:, i] for i in range(4)})
        path = out / "scan.ply"
        if fmt.endswith("labelled"):
            props["object_id" if fmt.startswith("points") else "segment"] = lab.astype(np.int32)
            (out / "scan.labels.json").write_text(json.dumps(names))
        write_ply(path, props)
        return path
    if fmt in ("obj", "glb"):
        scene = trimesh.Scene()
        for o in objects:
            m = o.mesh.copy()
            m.vertices = conv(m.vertices)
            m.visual.vertex_colors = np.tile((np.array(o.color) * 255).astype(np.uint8), (len(m.vertices), 1))
            scene.add_geometry(m, node_name=o.name, geom_name=o.name)
        path = out / f"scan.{fmt}"
        scene.export(str(path))
        return path
    if fmt == "manifest":
        lines = []
        for o in objects:
            c = o.mesh.bounds.mean(0)
            local = o.mesh.copy()
            local.apply_translation(-c)
            local.vertices = conv(local.vertices)
            cc = conv(c[None])[0]
            write_ply(out / f"{o.name}.ply", {"x": local.vertices[:, 0].astype(np.float32),
                      "y": local.vertices[:, 1].astype(np.float32), "z": local.vertices[:, 2].astype(np.float32)},
                      local.faces)
            lines.append(f'[[object]]\nname = "{o.name}"\nfile = "{o.name}.ply"\n'
                         f"pose = [{cc[0]}, {cc[1]}, {cc[2]}, 1.0, 0.0, 0.0, 0.0]\n")
        path = out / "scene.toml"
        path.write_text("\n".join(lines))
        return path
    raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
