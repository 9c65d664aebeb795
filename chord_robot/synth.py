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


# --------------------------------------------------------------------------- hinged box


@dataclass(frozen=True)
class Hinge:
    """A revolute joint with a known motion: the lid turns by ``turn_deg`` over the clip.

    Attributes:
        origin: (3,) a point on the hinge axis, world frame.
        axis: (3,) unit axis; a positive angle turns the lid open (right-hand rule).
        turn_deg: total turn over the clip, degrees.
    """

    origin: np.ndarray
    axis: np.ndarray
    turn_deg: float

    def angle(self, s: float | np.ndarray) -> np.ndarray:
        """Joint angle (radians) at clip time ``s`` in [0, 1]: smoothstep ease-in-out from 0."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
        return np.radians(self.turn_deg) * s * s * (3 - 2 * s)

    def pose(self, s: float | np.ndarray) -> np.ndarray:
        """(..., 4, 4) world transform taking frame-0 lid points to clip time ``s``."""
        a = self.angle(s)
        k = self.axis / np.linalg.norm(self.axis)
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.eye(3) + np.sin(a)[..., None, None] * kx + (1 - np.cos(a))[..., None, None] * (kx @ kx)
        out = np.zeros(a.shape + (4, 4))
        out[..., :3, :3] = rot
        out[..., :3, 3] = self.origin - rot @ self.origin
        out[..., 3, 3] = 1.0
        return out

    def move(self, points: np.ndarray, s: np.ndarray) -> np.ndarray:
        """(S, N, 3) positions of frame-0 points (N, 3) at clip times ``s`` (S,)."""
        pose = self.pose(np.asarray(s, dtype=np.float64))
        return np.einsum("sij,nj->sni", pose[:, :3, :3], points) + pose[:, None, :3, 3]


@dataclass(frozen=True)
class PatchedPart:
    """A watertight mesh coloured by patches (Voronoi cells of a few surface seeds).

    Attributes:
        mesh: the triangle mesh (world frame, frame 0), shared vertices.
        vertex_colors: (V, 3) RGB in [0, 1], the patch colour at each vertex.
        face_patch: (F,) patch index of each face (its centroid's cell).
        palette: (P, 3) RGB of each patch.
    """

    mesh: trimesh.Trimesh
    vertex_colors: np.ndarray
    face_patch: np.ndarray
    palette: np.ndarray


@dataclass(frozen=True)
class HingedBox:
    """A table and a two-part box whose lid turns about a hinge on the base's back top edge.

    Attributes:
        table: the static support (uniform colour).
        base: the box body.
        lid: the lid at frame 0 (already ajar by ``start_deg``, so base and lid touch only
            along the hinge and stay separate parts).
        hinge: the lid's motion.
        start_deg: opening of the lid at frame 0, degrees.
    """

    table: SynthObject
    base: PatchedPart
    lid: PatchedPart
    hinge: Hinge
    start_deg: float


def _patched(mesh: trimesh.Trimesh, base_color: np.ndarray, patches: int, rng: np.random.Generator) -> PatchedPart:
    """Colour a mesh by the Voronoi cells of ``patches`` random surface seeds."""
    from scipy.spatial import cKDTree

    seeds, _ = trimesh.sample.sample_surface_even(mesh, patches, seed=int(rng.integers(1 << 31)))
    palette = np.clip(base_color + rng.uniform(-0.3, 0.3, (len(seeds), 3)), 0.05, 0.95)
    tree = cKDTree(seeds)
    face_patch = tree.query(mesh.triangles_center)[1].astype(np.int64)
    vertex_colors = palette[tree.query(mesh.vertices)[1]]
    return PatchedPart(mesh, vertex_colors, face_patch, palette)


def hinged_box(
    size: tuple[float, float, float] = (0.30, 0.20, 0.10),
    lid_thickness: float = 0.02,
    start_deg: float = 20.0,
    turn_deg: float = 60.0,
    patches: int = 10,
    resolution: float = 0.01,
    seed: int = 0,
) -> HingedBox:
    """A hinged box on a table: base ``size`` (x, y, z), lid of the same footprint.

    The hinge is the base's back top edge (y = +size_y / 2, z = size_z), along -x so that a
    positive angle lifts the lid's front. Meshes are subdivided to ``resolution`` so vertex
    colours carry the patch pattern. Units: metres, z up, table top at z = 0.
    """
    rng = np.random.default_rng(seed)
    sx, sy, sz = size
    table = trimesh.creation.box((0.9, 0.6, 0.04))
    table.apply_translation((0, 0, -0.02))
    base = trimesh.creation.box(size)
    base.apply_translation((0, 0, sz / 2))
    lid = trimesh.creation.box((sx, sy, lid_thickness))
    lid.apply_translation((0, 0, sz + lid_thickness / 2))
    hinge = Hinge(np.array([0.0, sy / 2, sz]), np.array([-1.0, 0.0, 0.0]), turn_deg)
    ajar = Hinge(hinge.origin, hinge.axis, start_deg).pose(1.0)
    lid.apply_transform(ajar)
    base, lid = (m.subdivide_to_size(resolution) for m in (base, lid))
    return HingedBox(
        table=SynthObject("table", table, (0.55, 0.45, 0.35), True),
        base=_patched(base, np.array([0.75, 0.35, 0.2]), patches, rng),
        lid=_patched(lid, np.array([0.25, 0.45, 0.75]), patches, rng),
        hinge=hinge,
        start_deg=start_deg,
    )


def write_hinged_box_scan(out_dir: str | os.PathLike[str], box: HingedBox) -> Path:
    """A labelled mesh PLY (``table`` and ``box`` = base + lid, two connected components)
    with vertex colours, and its ``scan.labels.json``; returns the PLY path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = box.table.mesh
    parts = [
        (table.vertices, table.faces, np.tile(box.table.color, (len(table.vertices), 1)), 0),
        (box.base.mesh.vertices, box.base.mesh.faces, box.base.vertex_colors, 1),
        (box.lid.mesh.vertices, box.lid.mesh.faces, box.lid.vertex_colors, 1),
    ]
    verts, faces, cols, labs, off = [], [], [], [], 0
    for v, f, c, label in parts:
        verts.append(v)
        faces.append(f + off)
        cols.append(c)
        labs.append(np.full(len(v), label))
        off += len(v)
    v = np.concatenate(verts).astype(np.float32)
    c = np.round(np.concatenate(cols) * 255).astype(np.uint8)
    props = {"x": v[:, 0], "y": v[:, 1], "z": v[:, 2], "red": c[:, 0], "green": c[:, 1], "blue": c[:, 2],
             "label": np.concatenate(labs).astype(np.int32)}
    (out / "scan.labels.json").write_text(json.dumps({"0": "table", "1": "box"}))
    path = out / "scan.ply"
    write_ply(path, props, np.concatenate(faces))
    return path
