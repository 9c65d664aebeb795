"""Patch textures: a link's visual surface coloured by a few Voronoi patches, seeded, so that a
video of it carries its motion and a scan of it has the colours the sim renders.

A textured link is written as one flat-shaded OBJ per patch, each a URDF ``<visual>`` with its
colour; a spec without a ``texture_seed`` keeps its plain visual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import geom, mesh_file, write_once


@dataclass(frozen=True)
class PatchTexture:
    """A link's visual surface coloured by patches (Voronoi cells of a few surface seeds), so
    that a video of it carries its motion and a scan of it has the colours the sim renders.

    Attributes:
        mesh: the link's surface subdivided to the texture's resolution, link frame.
        face_patch: (F,) patch index of each face (its centroid's cell).
        palette: (patches, 3) RGB in [0, 1] of each patch.
        vertex_colors: (M, 3) RGB in [0, 1], the patch colour at each of the M vertices.
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
            obj = write_once(d / f"{key}_p{p}.obj", flat_obj_text(vertices, faces))
            xml.append(geom("visual", mesh_file(obj), rgba=(*colour, 1.0)))
    return "".join(xml)


def link_texture(spec: object, link: str, mesh: trimesh.Trimesh, rgba: tuple[float, ...]) -> PatchTexture | None:
    """The patch texture of one link of an asset whose spec has a ``texture_seed`` (None: plain)."""
    seed = getattr(spec, "texture_seed", None)
    return None if seed is None else patch_texture(mesh, rgba, seed, link)


def link_visual(spec: object, link: str, mesh: trimesh.Trimesh, rgba: tuple[float, ...], plain: str,
                d: Path, key: str) -> str:
    """The visual XML of a link: ``plain`` for an untextured spec, else its coloured patches
    (``mesh`` is the link's surface in its link frame)."""
    texture = link_texture(spec, link, mesh, rgba)
    return plain if texture is None else _patched_visuals(texture, d, f"{key}_{link}")
