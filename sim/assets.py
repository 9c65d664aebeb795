"""Procedural task assets: URDFs and meshes written by project code into a cache directory.

Every asset is described by a frozen spec dataclass; the files are named by a hash of the
spec, written atomically, and reused when they exist, so parallel workers can share a cache.
Each asset also exposes its geometry as trimesh meshes in its link frames (for surface
sampling) and, for articulated ones, its forward kinematics in numpy (for oracle motions).

Frames: every base link frame is its inertial frame (PyBullet reports base poses in that
frame), z up. Articulated children are described by their URDF link frames.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "chord-robot-assets"


def cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The asset cache directory (created): ``root`` or ``$TMPDIR/chord-robot-assets``."""
    path = Path(root) if root is not None else DEFAULT_CACHE
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_once(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically unless it already exists (same name, same content)."""
    if path.exists():
        return path
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.replace(tmp, path)
    return path


def _spec_key(kind: str, spec: object) -> str:
    text = kind + repr(sorted(asdict(spec).items()))  # type: ignore[call-overload]
    return f"{kind}_{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _obj_text(mesh: trimesh.Trimesh) -> str:
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
    return "\n".join(lines) + "\n"


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """(4, 4) rotation about a unit ``axis`` through the origin."""
    m = np.eye(4)
    m[:3, :3] = trimesh.transformations.rotation_matrix(angle, axis)[:3, :3]
    return m


def _trans(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = [x, y, z]
    return m


# --------------------------------------------------------------------------- URDF writing


def _inertial(
    mass: float, inertia: np.ndarray, xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> str:
    i = np.asarray(inertia, dtype=np.float64)
    return (
        f'<inertial><origin xyz="{xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f}"/><mass value="{mass:.6f}"/>'
        f'<inertia ixx="{i[0, 0]:.8f}" ixy="{i[0, 1]:.8f}" ixz="{i[0, 2]:.8f}" '
        f'iyy="{i[1, 1]:.8f}" iyz="{i[1, 2]:.8f}" izz="{i[2, 2]:.8f}"/></inertial>'
    )


def _box_inertia(mass: float, size: tuple[float, float, float]) -> np.ndarray:
    x, y, z = size
    return mass / 12 * np.diag([y * y + z * z, x * x + z * z, x * x + y * y])


def _cyl_inertia(mass: float, r: float, h: float, axis: int = 2) -> np.ndarray:
    d = np.full(3, mass * (3 * r * r + h * h) / 12)
    d[axis] = mass * r * r / 2
    return np.diag(d)


def _geom(kind: str, geometry: str, xyz=(0.0, 0.0, 0.0), rpy=(0.0, 0.0, 0.0), rgba=None) -> str:
    mat = ""
    if rgba:
        name = "c" + "_".join(f"{round(c * 255)}" for c in rgba)
        mat = f'<material name="{name}"><color rgba="{" ".join(f"{c:.4f}" for c in rgba)}"/></material>'
    o = f'<origin xyz="{xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f}" rpy="{rpy[0]:.6f} {rpy[1]:.6f} {rpy[2]:.6f}"/>'
    return f"<{kind}>{o}<geometry>{geometry}</geometry>{mat}</{kind}>"


def _box(size) -> str:
    return f'<box size="{size[0]:.6f} {size[1]:.6f} {size[2]:.6f}"/>'


def _cylinder(r: float, h: float) -> str:
    return f'<cylinder radius="{r:.6f}" length="{h:.6f}"/>'


def _mesh(path: Path) -> str:
    return f'<mesh filename="{path}" scale="1 1 1"/>'


def _urdf(name: str, body: str) -> str:
    return f'<?xml version="1.0"?>\n<robot name="{name}">\n{body}\n</robot>\n'


# --------------------------------------------------------------------------- patch textures


@dataclass(frozen=True)
class PatchTexture:
    """A link's visual surface coloured by patches (Voronoi cells of a few surface seeds), so
    that a video of it carries its motion and a scan of it has the colours the sim renders.

    Attributes:
        mesh: the link's surface subdivided to the texture's resolution, link frame.
        face_patch: (F,) patch index of each face (its centroid's cell).
        palette: (P, 3) RGB in [0, 1] of each patch.
        vertex_colors: (V, 3) RGB in [0, 1], the patch colour at each vertex.
    """

    mesh: trimesh.Trimesh
    face_patch: np.ndarray
    palette: np.ndarray
    vertex_colors: np.ndarray


def patch_texture(
    mesh: trimesh.Trimesh,
    rgb: tuple[float, ...],
    seed: int,
    link: str,
    patches: int = 10,
    resolution: float = 0.01,
) -> PatchTexture:
    """Colour ``mesh`` by ``patches`` cells around ``rgb`` (each channel +-0.3), the palette
    and seeds drawn from (``seed``, ``link``): the same seed gives the same texture."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng([seed, int(hashlib.sha1(link.encode()).hexdigest()[:8], 16)])
    fine = mesh.subdivide_to_size(resolution)
    areas = fine.area_faces
    count = min(patches, len(fine.faces))
    seeds = fine.triangles_center[rng.choice(len(fine.faces), count, replace=False, p=areas / areas.sum())]
    palette = np.clip(np.asarray(rgb[:3]) + rng.uniform(-0.3, 0.3, (count, 3)), 0.05, 0.95)
    tree = cKDTree(seeds)
    face_patch = tree.query(fine.triangles_center)[1].astype(np.int64)
    return PatchTexture(fine, face_patch, palette, palette[tree.query(fine.vertices)[1]])


def flat_obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """An OBJ with one flat normal per face (vertices duplicated per face)."""
    tri = vertices[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    n = len(faces)
    if n == 0:
        return "\n"
    i = np.arange(1, n + 1)
    corners = np.stack([3 * i - 2, i, 3 * i - 1, i, 3 * i, i], axis=1)
    # one %-format per block (C speed; the text equals f"{x:.6f}" per value)
    return (("v %.6f %.6f %.6f\n" * (3 * n)) % tuple(tri.reshape(-1).tolist())
            + ("vn %.6f %.6f %.6f\n" * n) % tuple(normals.reshape(-1).tolist())
            + ("f %d//%d %d//%d %d//%d\n" * n) % tuple(corners.reshape(-1).tolist()))


def _patched_visuals(texture: PatchTexture, d: Path, key: str) -> str:
    """URDF <visual> elements of a textured link, one OBJ per patch (files under ``d``)."""
    xml = []
    vertices = np.asarray(texture.mesh.vertices)
    for p, colour in enumerate(texture.palette):
        faces = texture.mesh.faces[texture.face_patch == p]
        if len(faces):
            obj = _write_once(d / f"{key}_p{p}.obj", flat_obj_text(vertices, faces))
            xml.append(_geom("visual", _mesh(obj), rgba=(*colour, 1.0)))
    return "".join(xml)


def link_texture(spec: object, link: str, mesh: trimesh.Trimesh, rgba: tuple[float, ...]) -> PatchTexture | None:
    """The patch texture of one link of an asset whose spec has a ``texture_seed`` (None: plain)."""
    seed = getattr(spec, "texture_seed", None)
    return None if seed is None else patch_texture(mesh, rgba, seed, link)


def _visual(spec: object, link: str, mesh: trimesh.Trimesh, rgba: tuple[float, ...], plain: str,
            d: Path, key: str) -> str:
    """The visual XML of a link: ``plain`` for an untextured spec, else its coloured patches
    (``mesh`` is the link's surface in its link frame)."""
    texture = link_texture(spec, link, mesh, rgba)
    return plain if texture is None else _patched_visuals(texture, d, f"{key}_{link}")


# --------------------------------------------------------------------------- laptop


@dataclass(frozen=True)
class LaptopSpec:
    """A laptop: a base slab and a lid on a revolute hinge along the base's back top edge.

    Frame: the base box centre; +x points to the front (the user), y across, z up. The hinge
    joint ``lid_hinge`` has value 0 when the lid lies closed on the base and opens positive.
    """

    width: float = 0.30
    """Size along y, metres."""
    depth: float = 0.21
    """Size along x of base and lid, metres."""
    base_thickness: float = 0.018
    """Metres."""
    lid_thickness: float = 0.008
    """Metres."""
    base_mass: float = 1.2
    """kg."""
    lid_mass: float = 0.4
    """kg."""
    open_limit: float = math.radians(130.0)
    """Upper limit of the hinge, rad."""
    texture_seed: int | None = None
    """Seed of the coloured patches on the visual meshes (None: plain colours)."""


LAPTOP_BASE_RGBA = (0.55, 0.57, 0.62, 1.0)
LAPTOP_LID_RGBA = (0.25, 0.27, 0.33, 1.0)


def laptop_hinge(spec: LaptopSpec) -> np.ndarray:
    """(4, 4) hinge joint frame in the base frame (axis -y: opening lifts the front edge)."""
    return _trans(-spec.depth / 2, 0.0, spec.base_thickness / 2)


LAPTOP_HINGE_AXIS = np.array([0.0, -1.0, 0.0])


def laptop_link_poses(spec: LaptopSpec, angle: float) -> dict[str, np.ndarray]:
    """Forward kinematics: link name -> (4, 4) pose in the base frame at hinge ``angle``."""
    return {"base": np.eye(4), "lid": laptop_hinge(spec) @ _rot(LAPTOP_HINGE_AXIS, angle)}


def laptop_meshes(spec: LaptopSpec) -> dict[str, trimesh.Trimesh]:
    """Link name -> geometry in the link frame."""
    base = trimesh.creation.box((spec.depth, spec.width, spec.base_thickness))
    lid = trimesh.creation.box(
        (spec.depth, spec.width, spec.lid_thickness),
        transform=_trans(spec.depth / 2, 0, spec.lid_thickness / 2),
    )
    return {"base": base, "lid": lid}


def write_laptop(spec: LaptopSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the laptop URDF (links ``base``, ``lid``; joint ``lid_hinge``) and return its path."""
    d = cache_dir(root)
    key = _spec_key("laptop", spec)
    meshes = laptop_meshes(spec)
    bsize = (spec.depth, spec.width, spec.base_thickness)
    lsize = (spec.depth, spec.width, spec.lid_thickness)
    lxyz = (spec.depth / 2, 0.0, spec.lid_thickness / 2)
    h = laptop_hinge(spec)[:3, 3]
    body = f"""
<link name="base">{_inertial(spec.base_mass, _box_inertia(spec.base_mass, bsize))}
{_visual(spec, "base", meshes["base"], LAPTOP_BASE_RGBA, _geom("visual", _box(bsize), rgba=LAPTOP_BASE_RGBA), d, key)}
{_geom("collision", _box(bsize))}</link>
<link name="lid">{_inertial(spec.lid_mass, _box_inertia(spec.lid_mass, lsize), lxyz)}
{_visual(spec, "lid", meshes["lid"], LAPTOP_LID_RGBA, _geom("visual", _box(lsize), lxyz, rgba=LAPTOP_LID_RGBA), d, key)}
{_geom("collision", _box(lsize), lxyz)}</link>
<joint name="lid_hinge" type="revolute"><parent link="base"/><child link="lid"/>
<origin xyz="{h[0]:.6f} {h[1]:.6f} {h[2]:.6f}"/><axis xyz="0 -1 0"/>
<limit lower="0" upper="{spec.open_limit:.6f}" effort="50" velocity="5"/><dynamics damping="0.02"/></joint>"""
    return _write_once(d / f"{key}.urdf", _urdf("laptop", body))


# --------------------------------------------------------------------------- desk lamp


@dataclass(frozen=True)
class LampSpec:
    """A desk lamp: a heavy base, an arm on a revolute joint, a head (neck + conical shade)
    on a second revolute joint at the arm's tip.

    Frame: the base disc centre; +x is the direction the lamp faces, z up. Joint ``arm``
    (axis +y) is 0 with the arm vertical and tilts it forward when positive; joint ``head``
    (axis +y) is 0 with the shade pointing along the arm frame's +x and tilts it down.
    """

    base_radius: float = 0.075
    base_height: float = 0.025
    base_mass: float = 2.0
    post_height: float = 0.04
    """A fixed post on the base carrying the arm joint, metres."""
    arm_length: float = 0.26
    arm_radius: float = 0.01
    arm_mass: float = 0.15
    neck_length: float = 0.04
    shade_length: float = 0.09
    shade_radius: float = 0.045
    """Radius of the shade's open end, metres."""
    shade_top_radius: float = 0.015
    head_mass: float = 0.15
    texture_seed: int | None = None
    """Seed of the coloured patches on the visual meshes (None: plain colours)."""


LAMP_RGBA = (0.15, 0.35, 0.6, 1.0)
LAMP_HEAD_RGBA = (0.9, 0.8, 0.3, 1.0)
LAMP_AXIS = np.array([0.0, 1.0, 0.0])


def lamp_arm_joint(spec: LampSpec) -> np.ndarray:
    """(4, 4) arm joint frame in the base frame."""
    return _trans(0.0, 0.0, spec.base_height / 2 + spec.post_height)


def lamp_head_joint(spec: LampSpec) -> np.ndarray:
    """(4, 4) head joint frame in the arm frame."""
    return _trans(0.0, 0.0, spec.arm_length)


def lamp_head_centre(spec: LampSpec) -> np.ndarray:
    """(3,) the shade's centre in the head frame: the point whose height lower-lamp measures."""
    return np.array([spec.neck_length + spec.shade_length / 2, 0.0, 0.0])


def lamp_link_poses(spec: LampSpec, arm: float, head: float) -> dict[str, np.ndarray]:
    """Forward kinematics: link name -> (4, 4) pose in the base frame."""
    arm_pose = lamp_arm_joint(spec) @ _rot(LAMP_AXIS, arm)
    head_pose = arm_pose @ lamp_head_joint(spec) @ _rot(LAMP_AXIS, head)
    return {"base": np.eye(4), "arm": arm_pose, "head": head_pose}


def _frustum(r0: float, r1: float, length: float, sections: int = 24) -> trimesh.Trimesh:
    """A closed truncated cone along +x from radius r0 at x = 0 to r1 at x = length."""
    a = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    ring = np.stack([np.zeros_like(a), np.cos(a), np.sin(a)], 1)
    pts = np.concatenate([ring * [0, r0, r0], ring * [0, r1, r1] + [length, 0, 0]])
    return trimesh.convex.convex_hull(pts)


def _cyl_mesh(r: float, h: float, transform: np.ndarray) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=r, height=h, sections=24, transform=transform)


def lamp_meshes(spec: LampSpec) -> dict[str, trimesh.Trimesh]:
    """Link name -> geometry in the link frame."""
    base = trimesh.util.concatenate(
        [
            _cyl_mesh(spec.base_radius, spec.base_height, np.eye(4)),
            _cyl_mesh(
                spec.arm_radius * 1.4,
                spec.post_height,
                _trans(0, 0, spec.base_height / 2 + spec.post_height / 2),
            ),
        ]
    )
    arm = _cyl_mesh(spec.arm_radius, spec.arm_length, _trans(0, 0, spec.arm_length / 2))
    y_to_x = _rot(np.array([0.0, 1.0, 0.0]), np.pi / 2)  # cylinder axis z -> x
    neck = _cyl_mesh(
        spec.arm_radius * 0.8, spec.neck_length, _trans(spec.neck_length / 2, 0, 0) @ y_to_x
    )
    shade = _frustum(spec.shade_top_radius, spec.shade_radius, spec.shade_length)
    shade.apply_translation([spec.neck_length, 0, 0])
    return {"base": base, "arm": arm, "head": trimesh.util.concatenate([neck, shade])}


def write_lamp(spec: LampSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the lamp URDF (links ``base``, ``arm``, ``head``; joints ``arm``, ``head``)."""
    d = cache_dir(root)
    key = _spec_key("lamp", spec)
    shade = _frustum(spec.shade_top_radius, spec.shade_radius, spec.shade_length)
    shade_path = _write_once(d / f"{key}_shade.obj", _obj_text(shade))
    post_z = spec.base_height / 2 + spec.post_height / 2
    aj = lamp_arm_joint(spec)[:3, 3]
    hc = lamp_head_centre(spec)
    neck_geom = _cylinder(spec.arm_radius * 0.8, spec.neck_length)
    neck_xyz = (spec.neck_length / 2, 0.0, 0.0)
    neck_rpy = (0.0, math.pi / 2, 0.0)
    shade_xyz = (spec.neck_length, 0.0, 0.0)
    meshes = lamp_meshes(spec)
    base_vis = (_geom("visual", _cylinder(spec.base_radius, spec.base_height), rgba=LAMP_RGBA)
                + _geom("visual", _cylinder(spec.arm_radius * 1.4, spec.post_height), (0, 0, post_z), rgba=LAMP_RGBA))
    arm_vis = _geom("visual", _cylinder(spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2), rgba=LAMP_RGBA)
    head_vis = (_geom("visual", neck_geom, neck_xyz, neck_rpy, rgba=LAMP_RGBA)
                + _geom("visual", _mesh(shade_path), shade_xyz, rgba=LAMP_HEAD_RGBA))
    body = f"""
<link name="base">{_inertial(spec.base_mass, _cyl_inertia(spec.base_mass, spec.base_radius, spec.base_height))}
{_visual(spec, "base", meshes["base"], LAMP_RGBA, base_vis, d, key)}
{_geom("collision", _cylinder(spec.base_radius, spec.base_height))}
{_geom("collision", _cylinder(spec.arm_radius * 1.4, spec.post_height), (0, 0, post_z))}</link>
<link name="arm">{_inertial(spec.arm_mass, _cyl_inertia(spec.arm_mass, spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2))}
{_visual(spec, "arm", meshes["arm"], LAMP_RGBA, arm_vis, d, key)}
{_geom("collision", _cylinder(spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2))}</link>
<link name="head">{_inertial(spec.head_mass, _cyl_inertia(spec.head_mass, spec.shade_radius, spec.shade_length, 0), tuple(hc))}
{_visual(spec, "head", meshes["head"], LAMP_HEAD_RGBA, head_vis, d, key)}
{_geom("collision", neck_geom, neck_xyz, neck_rpy)}{_geom("collision", _mesh(shade_path), shade_xyz)}</link>
<joint name="arm" type="revolute"><parent link="base"/><child link="arm"/>
<origin xyz="{aj[0]:.6f} {aj[1]:.6f} {aj[2]:.6f}"/><axis xyz="0 1 0"/>
<limit lower="-0.6" upper="1.4" effort="50" velocity="5"/><dynamics damping="0.02"/></joint>
<joint name="head" type="revolute"><parent link="arm"/><child link="head"/>
<origin xyz="0 0 {spec.arm_length:.6f}"/><axis xyz="0 1 0"/>
<limit lower="-0.8" upper="1.8" effort="50" velocity="5"/><dynamics damping="0.01"/></joint>"""
    return _write_once(d / f"{key}.urdf", _urdf("lamp", body))


# --------------------------------------------------------------------------- banana and plate


@dataclass(frozen=True)
class BananaSpec:
    """A curved banana: a tube swept along a circular arc in the xy-plane, tapered to its ends.

    Frame: the centre of mass, z up, the arc's chord along x, bulging toward +y.
    """

    arc_radius: float = 0.13
    """Radius of the centreline arc, metres."""
    arc_angle: float = 1.2
    """Angle the centreline spans, rad."""
    radius: float = 0.018
    """Largest cross-section radius, metres."""
    end_radius: float = 0.006
    """Cross-section radius at the tips, metres."""
    rings: int = 25
    sides: int = 8
    pieces: int = 6
    """Convex pieces of the collision shape."""
    mass: float = 0.15
    texture_seed: int | None = None
    """Seed of the coloured patches on the visual meshes (None: plain colours)."""


BANANA_RGBA = (0.95, 0.82, 0.2, 1.0)
PLATE_RGBA = (0.93, 0.93, 0.9, 1.0)


def _banana_rings(spec: BananaSpec) -> np.ndarray:
    """(rings, sides, 3) cross-section rings before centring."""
    s = np.linspace(0.0, 1.0, spec.rings)
    phi = (s - 0.5) * spec.arc_angle
    centre = np.stack(
        [spec.arc_radius * np.sin(phi), spec.arc_radius * np.cos(phi), np.zeros_like(phi)], 1
    )
    normal = np.stack([np.sin(phi), np.cos(phi), np.zeros_like(phi)], 1)  # outward in-plane
    up = np.array([0.0, 0.0, 1.0])
    r = spec.end_radius + (spec.radius - spec.end_radius) * np.sin(np.pi * s) ** 0.6
    a = (
        np.linspace(0, 2 * np.pi, spec.sides, endpoint=False) + np.pi / spec.sides
    )  # a flat face down
    ring = np.cos(a)[None, :, None] * normal[:, None] + np.sin(a)[None, :, None] * up[None, None]
    return centre[:, None] + r[:, None, None] * ring


def _tube(rings: np.ndarray) -> trimesh.Trimesh:
    n, m, _ = rings.shape
    verts = np.concatenate(
        [rings.reshape(-1, 3), rings[0].mean(0, keepdims=True), rings[-1].mean(0, keepdims=True)]
    )
    faces = []
    for i in range(n - 1):
        for j in range(m):
            a, b = i * m + j, i * m + (j + 1) % m
            faces += [[a, b, b + m], [a, b + m, a + m]]
    cap0, cap1 = n * m, n * m + 1
    for j in range(m):
        faces.append([cap0, (j + 1) % m, j])
        faces.append([cap1, (n - 1) * m + j, (n - 1) * m + (j + 1) % m])
    mesh = trimesh.Trimesh(verts, np.asarray(faces), process=True)
    trimesh.repair.fix_normals(mesh)
    return mesh


def _banana_centre(spec: BananaSpec) -> np.ndarray:
    return _tube(_banana_rings(spec)).center_mass


def banana_mesh(spec: BananaSpec) -> trimesh.Trimesh:
    """The banana surface in its frame (centre of mass at the origin)."""
    rings = _banana_rings(spec)
    mesh = _tube(rings)
    mesh.apply_translation(-mesh.center_mass)
    return mesh


def banana_pieces(spec: BananaSpec) -> list[trimesh.Trimesh]:
    """The convex pieces of the collision shape, in the banana frame."""
    rings = _banana_rings(spec) - _banana_centre(spec)
    bounds = np.linspace(0, spec.rings - 1, spec.pieces + 1).round().astype(int)
    return [
        trimesh.convex.convex_hull(rings[a : b + 1].reshape(-1, 3))
        for a, b in itertools.pairwise(bounds)
    ]


def write_banana(spec: BananaSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the banana URDF: one link, a visual mesh and ``pieces`` convex collision meshes."""
    d = cache_dir(root)
    key = _spec_key("banana", spec)
    mesh = banana_mesh(spec)
    vis = _write_once(d / f"{key}_visual.obj", _obj_text(mesh))
    inertia = mesh.moment_inertia * (spec.mass / mesh.volume)
    cols = [
        _write_once(d / f"{key}_col{i}.obj", _obj_text(p))
        for i, p in enumerate(banana_pieces(spec))
    ]
    body = f"""<link name="banana">{_inertial(spec.mass, inertia)}
{_visual(spec, "banana", mesh, BANANA_RGBA, _geom("visual", _mesh(vis), rgba=BANANA_RGBA), d, key)}
{"".join(_geom("collision", _mesh(c)) for c in cols)}</link>"""
    return _write_once(d / f"{key}.urdf", _urdf("banana", body))


@dataclass(frozen=True)
class PlateSpec:
    """A plate: a flat disc with a low rim of boxes. Frame: the disc centre, z up."""

    radius: float = 0.11
    thickness: float = 0.01
    rim_height: float = 0.012
    rim_width: float = 0.012
    rim_segments: int = 16
    mass: float = 0.4
    texture_seed: int | None = None
    """Seed of the coloured patches on the visual meshes (None: plain colours)."""


def _rim_boxes(spec: PlateSpec) -> list[tuple[tuple[float, float, float], np.ndarray]]:
    """(size, (4, 4) pose) of each rim box in the plate frame."""
    out = []
    seg_len = 2 * spec.radius * math.tan(math.pi / spec.rim_segments) + 1e-3
    for k in range(spec.rim_segments):
        a = 2 * math.pi * k / spec.rim_segments
        pose = _rot(np.array([0.0, 0.0, 1.0]), a)
        r = spec.radius - spec.rim_width / 2
        pose[:3, 3] = [r * math.cos(a), r * math.sin(a), spec.thickness / 2 + spec.rim_height / 2]
        out.append(((spec.rim_width, seg_len, spec.rim_height), pose))
    return out


def plate_mesh(spec: PlateSpec) -> trimesh.Trimesh:
    """The plate surface in its frame."""
    parts = [_cyl_mesh(spec.radius, spec.thickness, np.eye(4))]
    parts += [trimesh.creation.box(size, transform=pose) for size, pose in _rim_boxes(spec)]
    return trimesh.util.concatenate(parts)


def plate_top(spec: PlateSpec) -> float:
    """Height of the plate's upper face above its frame origin, metres."""
    return spec.thickness / 2


def write_plate(spec: PlateSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the plate URDF: one link, a cylinder disc and a rim of boxes."""
    d = cache_dir(root)
    key = _spec_key("plate", spec)
    inertia = _cyl_inertia(spec.mass, spec.radius, spec.thickness)
    visuals = [_geom("visual", _cylinder(spec.radius, spec.thickness), rgba=PLATE_RGBA)]
    geoms = [_geom("collision", _cylinder(spec.radius, spec.thickness))]
    for size, pose in _rim_boxes(spec):
        rpy = (0.0, 0.0, math.atan2(pose[1, 0], pose[0, 0]))
        visuals.append(_geom("visual", _box(size), tuple(pose[:3, 3]), rpy, rgba=PLATE_RGBA))
        geoms.append(_geom("collision", _box(size), tuple(pose[:3, 3]), rpy))
    geoms.insert(0, _visual(spec, "plate", plate_mesh(spec), PLATE_RGBA, "".join(visuals), d, key))
    body = f'<link name="plate">{_inertial(spec.mass, inertia)}\n{"".join(geoms)}</link>'
    return _write_once(d / f"{key}.urdf", _urdf("plate", body))


# --------------------------------------------------------------------------- cloth


@dataclass(frozen=True)
class ClothSpec:
    """A square cloth: a regular grid of ``resolution`` x ``resolution`` nodes in the z = 0 plane.

    Node ``j * resolution + i`` sits at (x_i, y_j), x and y running from -size/2 to size/2:
    node 0 is the (-, -) corner and node ``resolution**2 - 1`` the opposite (+, +) corner.
    """

    size: float = 0.24
    resolution: int = 9
    mass: float = 0.05
    texture_seed: int | None = None
    """Seed of the coloured patches of its texture image (None: plain colour)."""


CLOTH_TEXTURE_SIZE = 64
"""Side of the cloth's square texture image, pixels."""


def cloth_grid(spec: ClothSpec) -> trimesh.Trimesh:
    """The cloth's rest mesh (vertices in node order) in its frame."""
    n = spec.resolution
    xs = np.linspace(-spec.size / 2, spec.size / 2, n)
    gx, gy = np.meshgrid(xs, xs)  # gx[j, i] = xs[i], gy[j, i] = xs[j]
    verts = np.stack([gx.ravel(), gy.ravel(), np.zeros(n * n)], 1)
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a = j * n + i
            faces += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    return trimesh.Trimesh(verts, np.asarray(faces), process=False)


def cloth_corners(spec: ClothSpec) -> tuple[int, int]:
    """Node indices of the (-, -) corner and the opposite (+, +) corner."""
    return 0, spec.resolution**2 - 1


def cloth_uv(spec: ClothSpec) -> np.ndarray:
    """(M, 2) texture coordinates of the cloth's nodes: (x, y) scaled to [0, 1]."""
    return (cloth_grid(spec).vertices[:, :2] + spec.size / 2) / spec.size


def cloth_texture(spec: ClothSpec, rgb: tuple[float, ...]) -> np.ndarray:
    """(S, S, 3) uint8 texture image of a textured cloth: 10 Voronoi patches around ``rgb``
    (each channel +-0.3), drawn from the spec's texture seed."""
    assert spec.texture_seed is not None
    rng = np.random.default_rng([spec.texture_seed, 1])
    n = CLOTH_TEXTURE_SIZE
    seeds = rng.random((10, 2)) * n
    palette = np.clip(np.asarray(rgb[:3]) + rng.uniform(-0.3, 0.3, (10, 3)), 0.05, 0.95)
    rows, cols = np.mgrid[0:n, 0:n] + 0.5
    cell = np.argmin((cols[..., None] - seeds[:, 0]) ** 2 + (rows[..., None] - seeds[:, 1]) ** 2, axis=-1)
    return np.round(palette[cell] * 255).astype(np.uint8)


def texture_colors(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1] of ``image`` at texture coordinates ``uv`` (N, 2), nearest pixel,
    OpenGL convention (v = 0 is the image's bottom row)."""
    h, w = image.shape[:2]
    col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)
    return image[row, col, :3].astype(np.float64) / 255


def write_cloth(spec: ClothSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the cloth grid OBJ (for ``loadSoftBody``; with texture coordinates when the spec
    is textured) and return its path."""
    mesh = cloth_grid(spec)
    text = _obj_text(mesh)
    if spec.texture_seed is not None:  # the same vertices and faces, each corner with its vt
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
        lines += [f"vt {a:.6f} {b:.6f}" for a, b in cloth_uv(spec)]
        lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in mesh.faces]
        text = "\n".join(lines) + "\n"
    return _write_once(cache_dir(root) / f"{_spec_key('cloth', spec)}.obj", text)


def write_cloth_texture(spec: ClothSpec, rgb: tuple[float, ...], root: str | os.PathLike[str] | None = None) -> Path:
    """Write the textured cloth's image as a PNG (for ``loadTexture``) and return its path."""
    import io

    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, cloth_texture(spec, rgb), extension=".png")
    return _write_once(cache_dir(root) / f"{_spec_key('cloth', spec)}_{_rgb_key(rgb)}.png", buf.getvalue())


def _rgb_key(rgb: tuple[float, ...]) -> str:
    return "".join(f"{round(c * 255):02x}" for c in rgb[:3])
