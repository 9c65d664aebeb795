"""The banana: a curved, tapered tube with a collision shape of a few convex pieces, its
geometry and URDF."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import (
    cache_dir,
    geom,
    inertial,
    mesh_file,
    obj_text,
    spec_key,
    urdf,
    write_once,
)
from sim.assets.textures import link_visual


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
    key = spec_key("banana", spec)
    mesh = banana_mesh(spec)
    vis = write_once(d / f"{key}_visual.obj", obj_text(mesh))
    inertia = mesh.moment_inertia * (spec.mass / mesh.volume)
    cols = [
        write_once(d / f"{key}_col{i}.obj", obj_text(p))
        for i, p in enumerate(banana_pieces(spec))
    ]
    body = f"""<link name="banana">{inertial(spec.mass, inertia)}
{link_visual(spec, "banana", mesh, BANANA_RGBA, geom("visual", mesh_file(vis), rgba=BANANA_RGBA), d, key)}
{"".join(geom("collision", mesh_file(c)) for c in cols)}</link>"""
    return write_once(d / f"{key}.urdf", urdf("banana", body))
