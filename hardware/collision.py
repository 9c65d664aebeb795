"""The robot's collision geometry as the safety layer checks it against planes.

The workspace faces and the table are planes with axis-aligned normals, and a convex body's
lowest point against a plane is one of its hull's vertices. So each moving link's URDF
collision geometry becomes points in the link's frame, each with a radius: a mesh's convex-hull
vertices, a box's corners, a cylinder's two rims (a circumscribed 48-gon, so never inside the
true surface: at most 0.2% of the radius outside it), a sphere's centre with its radius. The
checks on these are exact up to that rim. A finger on a prismatic joint that the arm does not
drive (held closed by the kinematics) also counts at its fully open position; the fingers'
travel is a straight line, so both ends bound every width in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from chord_robot.errors import SafetyError

RIM_POINTS = 48
"""Points on each rim of a cylinder."""


@dataclass(frozen=True)
class LinkGeometry:
    """One link's collision geometry as points with radii.

    Attributes:
        link: the URDF link.
        points: (K, 3) in the link's frame, metres.
        radius: (K,) how far the body reaches around each point, metres.
    """

    link: str
    points: np.ndarray
    radius: np.ndarray


def _resolve_mesh(filename: str, urdf_dir: Path) -> Path:
    """A mesh reference (``package://pkg/meshes/x.obj``, relative or absolute path) -> a file,
    looked for under the URDF's folder and up to three folders above it."""
    rest = filename.split("://", 1)[1] if "://" in filename else filename
    if Path(rest).is_absolute() and Path(rest).is_file():
        return Path(rest)
    parts = Path(rest).parts
    for base in [urdf_dir, *urdf_dir.parents][:4]:
        for k in range(len(parts)):
            candidate = base.joinpath(*parts[k:])
            if candidate.is_file():
                return candidate
    raise SafetyError(
        f"refused, nothing moved: the URDF's collision mesh {filename!r} was not found near "
        f"{urdf_dir}; the table and workspace cannot be checked on the links' geometry"
    )


def _geometry_points(geometry, urdf_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) points and (K,) radii of one URDF collision geometry in its own frame."""
    if geometry.box is not None:
        half = np.asarray(geometry.box.size, float) / 2
        corners = np.array([(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
        return corners * half, np.zeros(8)
    if geometry.cylinder is not None:
        r, length = float(geometry.cylinder.radius), float(geometry.cylinder.length)
        a = np.linspace(0, 2 * np.pi, RIM_POINTS, endpoint=False)
        ring = np.stack([np.cos(a), np.sin(a)], 1) * r / np.cos(np.pi / RIM_POINTS)
        rims = [np.column_stack([ring, np.full(RIM_POINTS, z)]) for z in (-length / 2, length / 2)]
        return np.concatenate(rims), np.zeros(2 * RIM_POINTS)
    if geometry.sphere is not None:
        return np.zeros((1, 3)), np.array([float(geometry.sphere.radius)])
    if geometry.mesh is not None:
        import trimesh

        mesh = trimesh.load(_resolve_mesh(geometry.mesh.filename, urdf_dir), force="mesh")
        scale = 1.0 if geometry.mesh.scale is None else np.asarray(geometry.mesh.scale, float)
        vertices = np.asarray(mesh.vertices, float) * scale
        if len(vertices) >= 4 and np.linalg.matrix_rank(vertices - vertices.mean(0), tol=1e-9) == 3:
            vertices = np.asarray(trimesh.convex.convex_hull(vertices).vertices, float)
        return vertices, np.zeros(len(vertices))  # a flat mesh keeps every vertex
    return np.zeros((0, 3)), np.zeros(0)


def collision_geometry(kinematics) -> tuple[LinkGeometry, ...]:
    """The collision geometry of every link an arm joint moves (`hardware.kinematics.Kinematics`).

    Links with no collision element contribute nothing (the robot's checked points still
    apply); fixed links (the base) are not checked: they cannot move into anything.
    """
    return _cached(str(kinematics.path), kinematics.path.stat().st_mtime, kinematics)


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, kinematics) -> tuple[LinkGeometry, ...]:
    import yourdfpy

    urdf = yourdfpy.URDF.load(
        path, load_meshes=False, load_collision_meshes=False, build_scene_graph=False
    )
    out = []
    for name, link in urdf.link_map.items():
        if not link.collisions or name == kinematics.base_link:
            continue
        chain = kinematics.chain(name)
        if not any(j.column >= 0 for j in chain):
            continue
        points, radii = [], []
        for collision in link.collisions:
            p, r = _geometry_points(collision.geometry, Path(path).parent)
            origin = np.eye(4) if collision.origin is None else np.asarray(collision.origin, float)
            points.append(p @ origin[:3, :3].T + origin[:3, 3])
            radii.append(r)
        p, r = np.concatenate(points), np.concatenate(radii)
        joint = chain[-1]
        travel = urdf.joint_map[joint.name].limit
        if joint.column < 0 and joint.kind == "prismatic" and travel is not None:
            ends = (float(travel.lower or 0.0), float(travel.upper or 0.0))
            opened = p + joint.axis * max(ends, key=abs)
            p, r = np.concatenate([p, opened]), np.concatenate([r, r])
        if len(p):
            out.append(LinkGeometry(name, p, r))
    return tuple(out)
