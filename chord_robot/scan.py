"""Reading scans: mesh PLY/OBJ/GLB, point-cloud PLY, 3DGS PLY, and `scene.toml` manifests.

`read_scan` returns a `RawScan`: geometry in metres, z up, and per-point labels when the file
carries them (a vertex property, named geometries of an OBJ/GLB, or a manifest). Scans without
labels are segmented geometrically by `flowgen.segment`. Scans are untrusted: every problem is
a `ScanError` with one line saying what is wrong and what to do.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tomllib

from chord_robot.errors import ScanError
from chord_robot.ply import read_ply
from chord_robot.scene import SH_C0, GaussianAttrs, MeshTexture, Scene, SceneObject

LABEL_KEYS = ("label", "object_id", "instance", "segment")
STATIC_NAMES = ("table", "floor", "ground", "support", "desk", "counter")
MAX_POINTS = 400_000
_MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".off")


@dataclass(frozen=True)
class RawScan:
    """A loaded scan before segmentation.

    Attributes:
        kind: "mesh", "points" or "gaussians".
        points: (N, 3) vertices / points / means, metres, z up.
        colors: (N, 3) in [0, 1] or None.
        faces: (F, 3) for meshes, else None.
        gaussians: 3DGS attributes or None.
        labels: (N,) int per point, or None when the scan is unlabelled.
        names: label -> object name (from a sidecar or the file), may be partial.
        static: names that are static, when the file says so (a manifest); None infers static
            objects from their names (a "table").
        notes: messages for the user.
        texture: texture images and per-vertex UVs of a textured mesh, else None.
    """

    kind: str
    points: np.ndarray
    colors: np.ndarray | None = None
    faces: np.ndarray | None = None
    gaussians: GaussianAttrs | None = None
    labels: np.ndarray | None = None
    names: dict[int, str] | None = None
    static: frozenset[str] | None = None
    notes: tuple[str, ...] = ()
    texture: MeshTexture | None = None


def up_rotation(up: str) -> np.ndarray:
    """(3, 3) rotation taking a scan with ``up`` ("z" or "y") to z up."""
    if up == "z":
        return np.eye(3)
    if up == "y":
        return np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # +90 deg about x: y -> z
    raise ScanError(f"--up must be 'z' or 'y', got {up!r}")


def read_scan(path: str | os.PathLike[str], up: str = "z", scale: float = 1.0, max_points: int = MAX_POINTS) -> RawScan:
    """Load a scan file and convert it to metres, z up.

    Args:
        path: .ply (mesh, point cloud or 3DGS), .obj/.glb/.gltf/.stl/.off, or scene.toml.
        up: the scan's up axis, "z" or "y".
        scale: multiply coordinates by this to get metres (0.001 for millimetres).
        max_points: point clouds and 3DGS scans above this are randomly downsampled.
    """
    path = Path(path)
    if not path.exists():
        raise ScanError(f"scan not found: {path}")
    if not (scale > 0 and np.isfinite(scale)):
        raise ScanError(f"--scale must be a positive number, got {scale}")
    rot = up_rotation(up)
    suffix = path.suffix.lower()
    if suffix == ".ply":
        raw = _from_ply(path)
    elif suffix in _MESH_SUFFIXES:
        raw = _from_trimesh(path)
    elif suffix == ".toml":
        raw = _from_manifest(path)
    else:
        raise ScanError(f"unsupported scan format {suffix or path.name!r}: use PLY, OBJ, GLB or a scene.toml manifest")
    bad = ~np.all(np.isfinite(raw.points), axis=1)
    if bad.any():
        raise ScanError(
            f"{path}: {int(bad.sum())} of {len(bad)} points have NaN or infinite coordinates; "
            "clean the scan (remove invalid points) and try again"
        )
    raw = _transform(raw, rot, scale)
    return _downsample(raw, max_points)


def scene_from_labels(raw: RawScan, source: str = "") -> Scene:
    """Split a labelled scan into named objects (static if named like a support)."""
    assert raw.labels is not None
    names = raw.names or {}
    ids = np.unique(raw.labels)
    unknown = sorted(set(names) - set(ids.tolist()))
    if unknown:
        raise ScanError(
            f"{source}: the label file names ids {unknown} that no point carries "
            f"(the scan's ids are {ids.tolist()}); fix the labels JSON"
        )
    objects = []
    for i in ids:
        name = names.get(int(i), f"object_{int(i)}")
        static = name.lower() in STATIC_NAMES if raw.static is None else name in raw.static
        objects.append(_subset(raw, raw.labels == i, name, static))
    return Scene(_ordered(objects), source, raw.notes)


def ordered_scene(objects: list[SceneObject], source: str, notes: tuple[str, ...]) -> Scene:
    """A Scene with static objects first, then by point count (largest first)."""
    return Scene(_ordered(objects), source, notes)


def _ordered(objects: list[SceneObject]) -> dict[str, SceneObject]:
    objs = sorted(objects, key=lambda o: (not o.static, -len(o.points)))
    names = [o.name for o in objs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ScanError(f"object names are not unique: {sorted(dup)}")
    return {o.name: o for o in objs}


def subset_object(raw: RawScan, mask: np.ndarray, name: str, static: bool) -> SceneObject:
    """The part of ``raw`` selected by a per-point ``mask`` as one SceneObject."""
    return _subset(raw, mask, name, static)


def _subset(raw: RawScan, mask: np.ndarray, name: str, static: bool) -> SceneObject:
    idx = np.flatnonzero(mask)
    colors = raw.colors[idx] if raw.colors is not None else None
    if raw.kind == "mesh":
        assert raw.faces is not None
        keep = mask[raw.faces].all(1)
        faces = raw.faces[keep]
        if len(faces) == 0:
            return SceneObject(name, "points", raw.points[idx], colors, static=static)
        remap = -np.ones(len(raw.points), np.int64)
        remap[idx] = np.arange(len(idx))
        texture = raw.texture.subset(idx) if raw.texture is not None else None
        if texture is not None and not (texture.image_id >= 0).any():
            texture = None  # an untextured geometry of a scan where others have textures
        return SceneObject(name, "mesh", raw.points[idx], colors, remap[faces], static=static, texture=texture)
    gaussians = raw.gaussians.subset(idx) if raw.gaussians is not None else None
    return SceneObject(name, raw.kind, raw.points[idx], colors, gaussians=gaussians, static=static)


def _from_ply(path: Path) -> RawScan:
    ply = read_ply(path)
    v = ply.vertex
    pts = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    if len(pts) == 0:
        raise ScanError(f"{path} has no vertices; the scan is empty")
    labels, names = _labels(path, v)
    if all(k in v for k in ("f_dc_0", "opacity", "scale_0", "rot_0")):
        rest = sorted((k for k in v if k.startswith("f_rest_")), key=lambda k: int(k[7:]))
        if len(rest) not in (0, 9, 24, 45):
            raise ScanError(f"{path} has {len(rest)} f_rest_* properties; a 3DGS scan has 9, 24 or 45 "
                            "(spherical harmonics of degree 1, 2 or 3) or none")
        g = GaussianAttrs(
            scales=np.stack([v[f"scale_{i}"] for i in range(3)], 1).astype(np.float64),
            rotations=np.stack([v[f"rot_{i}"] for i in range(4)], 1).astype(np.float64),
            opacities=np.asarray(v["opacity"], np.float64),
            sh_dc=np.stack([v[f"f_dc_{i}"] for i in range(3)], 1).astype(np.float64),
            sh_rest=np.stack([v[k] for k in rest], 1).astype(np.float64) if rest else np.zeros((len(pts), 0)),
        )
        colors = np.clip(0.5 + SH_C0 * g.sh_dc, 0, 1)
        return RawScan("gaussians", pts, colors, gaussians=g, labels=labels, names=names)
    colors = _colors(v)
    if ply.faces is not None:
        return RawScan("mesh", pts, colors, ply.faces, labels=labels, names=names)
    return RawScan("points", pts, colors, labels=labels, names=names)


def _colors(v: dict[str, np.ndarray]) -> np.ndarray | None:
    for keys in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(k in v for k in keys):
            c = np.stack([v[k] for k in keys], 1)
            return c.astype(np.float64) / 255.0 if np.issubdtype(c.dtype, np.integer) else c.astype(np.float64)
    return None


def _labels(path: Path, v: dict[str, np.ndarray]) -> tuple[np.ndarray | None, dict[int, str] | None]:
    key = next((k for k in LABEL_KEYS if k in v), None)
    sidecar = path.with_name(path.stem + ".labels.json")
    if key is None:
        if sidecar.exists():
            raise ScanError(f"{sidecar.name} names objects but {path.name} has no per-vertex label property ({', '.join(LABEL_KEYS)})")
        return None, None
    labels = np.asarray(v[key])
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise ScanError(f"{path}: vertex property '{key}' must hold integer object ids")
    labels = labels.astype(np.int64)
    names = None
    if sidecar.exists():
        try:
            data = json.loads(sidecar.read_text())
            names = {int(k): str(n) for k, n in data.items()}
        except (json.JSONDecodeError, ValueError, AttributeError, UnicodeDecodeError):
            raise ScanError(f"{sidecar} must be a JSON object mapping ids to names, like {{\"3\": \"lamp\"}}") from None
    return labels, names


def _from_trimesh(path: Path) -> RawScan:
    import trimesh

    try:
        extra = {"split_objects": True, "group_material": False} if path.suffix.lower() == ".obj" else {}
        loaded = trimesh.load(str(path), force="scene", process=False, **extra)
    except Exception as e:  # trimesh raises many types on malformed files
        raise ScanError(f"cannot read {path.name} as a mesh: {e}") from None
    geoms = []
    for node in loaded.graph.nodes_geometry:
        transform, geom_name = loaded.graph[node]
        geom = loaded.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        geoms.append((str(node), geom.copy().apply_transform(transform), _mesh_texture(geom)))
    if not geoms:
        raise ScanError(f"{path} holds no triangle mesh")
    return _merge_meshes(geoms, labelled=len(geoms) > 1)


def _merge_meshes(geoms: list, labelled: bool) -> RawScan:
    """One RawScan of (name, trimesh, MeshTexture or None) geometries."""
    pts, faces, colors, labels, names, offset = [], [], [], [], {}, 0
    for i, (name, mesh, _) in enumerate(geoms):
        v = np.asarray(mesh.vertices, np.float64)
        pts.append(v)
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        colors.append(_mesh_colors(mesh))
        labels.append(np.full(len(v), i))
        names[i] = name
        offset += len(v)
    return RawScan(
        "mesh", np.concatenate(pts), np.concatenate(colors), np.concatenate(faces),
        labels=np.concatenate(labels) if labelled else None, names=names if labelled else None,
        texture=_merge_textures([(len(m.vertices), t) for _, m, t in geoms]),
    )


def _mesh_texture(mesh) -> MeshTexture | None:
    """The base-colour texture and UVs of a trimesh, or None when it has none."""
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    if getattr(visual, "kind", None) != "texture" or uv is None or len(uv) != len(mesh.vertices):
        return None
    material = visual.material
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    rgb = np.asarray(image.convert("RGB"), np.float64)
    factor = getattr(material, "baseColorFactor", None)  # uint8 RGBA in trimesh
    if factor is not None:
        rgb = rgb * np.asarray(factor, np.float64)[:3] / 255.0
    image_id = np.zeros(len(uv), np.int64)
    return MeshTexture(np.asarray(uv, np.float64), image_id, (np.clip(rgb, 0, 255).round().astype(np.uint8),))


def _merge_textures(parts: list[tuple[int, MeshTexture | None]]) -> MeshTexture | None:
    """The textures of concatenated geometries ((vertex count, texture) each), or None if none has one."""
    if all(t is None for _, t in parts):
        return None
    uv, ids, images = [], [], []
    for n, t in parts:
        if t is None:
            uv.append(np.zeros((n, 2)))
            ids.append(np.full(n, -1, np.int64))
            continue
        uv.append(t.uv)
        ids.append(np.where(t.image_id >= 0, t.image_id + len(images), -1))
        images.extend(t.images)
    return MeshTexture(np.concatenate(uv), np.concatenate(ids), tuple(images))


def _mesh_colors(mesh) -> np.ndarray:
    """(V, 3) vertex colours: the file's vertex colours, face colours averaged at the vertices,
    or a texture sampled at the vertices; grey 0.7 for an uncoloured mesh."""
    visual = mesh.visual
    try:
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind is not None:  # "vertex" or "face" colours; None: the file has none
            c = np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0
            if len(c) == len(mesh.vertices):
                return c
    except Exception:  # trimesh raises many types on odd materials; fall back to grey
        pass
    return np.full((len(mesh.vertices), 3), 0.7)


def _from_manifest(path: Path) -> RawScan:
    """scene.toml: ``[[object]] name, file, pose = [x, y, z, qw, qx, qy, qz], static``."""
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScanError(f"{path} is not valid TOML: {e}") from None
    entries = data.get("object")
    if not isinstance(entries, list) or not entries:
        raise ScanError(f"{path} lists no [[object]] entries (each with name and file)")
    geoms, statics = [], set()
    import trimesh

    for e in entries:
        if not isinstance(e, dict) or "name" not in e or "file" not in e:
            raise ScanError(f"{path}: every [[object]] needs a name and a file")
        if not isinstance(e["name"], str) or not isinstance(e["file"], str) or not e["name"]:
            raise ScanError(f"{path}: an [[object]]'s name and file must be strings, got name = {e['name']!r}, "
                            f"file = {e['file']!r}")
        if not isinstance(e.get("static", False), bool):
            raise ScanError(f"{path}: static of {e['name']!r} must be true or false, got {e['static']!r}")
        sub = read_scan(path.parent / e["file"], max_points=10**9)
        if sub.kind != "mesh":
            raise ScanError(f"{path}: object {e['name']!r} file must be a mesh (got {sub.kind})")
        mesh = trimesh.Trimesh(sub.points, sub.faces, vertex_colors=sub.colors, process=False)
        try:
            pose = np.asarray(e.get("pose", [0, 0, 0, 1, 0, 0, 0]), np.float64)
        except (TypeError, ValueError):
            pose = np.zeros(0)
        if pose.shape != (7,) or not np.isfinite(pose).all() or np.linalg.norm(pose[3:]) < 1e-9:
            raise ScanError(f"{path}: pose of {e['name']!r} must be [x, y, z, qw, qx, qy, qz] (finite, a non-zero "
                            "quaternion)")
        m = np.eye(4)
        m[:3, :3] = trimesh.transformations.quaternion_matrix(pose[3:] / np.linalg.norm(pose[3:]))[:3, :3]
        m[:3, 3] = pose[:3]
        geoms.append((str(e["name"]), mesh.apply_transform(m), sub.texture))
        if e.get("static", str(e["name"]).lower() in STATIC_NAMES):
            statics.add(str(e["name"]))
    # objects named like a support are static unless the manifest says `static = false`
    return replace(_merge_meshes(geoms, labelled=True), static=frozenset(statics))


def _transform(raw: RawScan, rot: np.ndarray, scale: float) -> RawScan:
    if np.allclose(rot, np.eye(3)) and scale == 1.0:
        return raw
    g = raw.gaussians
    if g is not None:
        from chord_robot.flow import matrix_to_quat

        q_up = matrix_to_quat(rot)
        g = replace(g, scales=g.scales + np.log(scale), rotations=_quat_mul(q_up, g.rotations),
                    sh_frame=rot @ g.sh_frame)
    return replace(raw, points=raw.points @ rot.T * scale, gaussians=g)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of wxyz quaternions (broadcast)."""
    aw, ax, ay, az = np.moveaxis(np.broadcast_to(a, b.shape), -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], -1)


def _downsample(raw: RawScan, max_points: int) -> RawScan:
    n = len(raw.points)
    if raw.kind == "mesh" or n <= max_points:
        return raw
    idx = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))
    g = raw.gaussians.subset(idx) if raw.gaussians is not None else None
    return replace(
        raw,
        points=raw.points[idx],
        colors=raw.colors[idx] if raw.colors is not None else None,
        gaussians=g,
        labels=raw.labels[idx] if raw.labels is not None else None,
        notes=raw.notes + (f"downsampled {n:,} points to {max_points:,} (random, seed 0)",),
    )
