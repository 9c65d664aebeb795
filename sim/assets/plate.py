"""The plate: a flat disc with a low rim of boxes, its geometry and URDF."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import (
    box,
    cache_dir,
    cyl_inertia,
    cyl_mesh,
    cylinder,
    geom,
    inertial,
    rot,
    spec_key,
    urdf,
    write_once,
)
from sim.assets.textures import link_visual


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


PLATE_RGBA = (0.93, 0.93, 0.9, 1.0)


def _rim_boxes(spec: PlateSpec) -> list[tuple[tuple[float, float, float], np.ndarray]]:
    """(size, (4, 4) pose) of each rim box in the plate frame."""
    out = []
    seg_len = 2 * spec.radius * math.tan(math.pi / spec.rim_segments) + 1e-3
    for k in range(spec.rim_segments):
        a = 2 * math.pi * k / spec.rim_segments
        pose = rot(np.array([0.0, 0.0, 1.0]), a)
        r = spec.radius - spec.rim_width / 2
        pose[:3, 3] = [r * math.cos(a), r * math.sin(a), spec.thickness / 2 + spec.rim_height / 2]
        out.append(((spec.rim_width, seg_len, spec.rim_height), pose))
    return out


def plate_mesh(spec: PlateSpec) -> trimesh.Trimesh:
    """The plate surface in its frame."""
    parts = [cyl_mesh(spec.radius, spec.thickness, np.eye(4))]
    parts += [trimesh.creation.box(size, transform=pose) for size, pose in _rim_boxes(spec)]
    return trimesh.util.concatenate(parts)


def plate_top(spec: PlateSpec) -> float:
    """Height of the plate's upper face above its frame origin, metres."""
    return spec.thickness / 2


def write_plate(spec: PlateSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the plate URDF: one link, a cylinder disc and a rim of boxes."""
    d = cache_dir(root)
    key = spec_key("plate", spec)
    inertia = cyl_inertia(spec.mass, spec.radius, spec.thickness)
    visuals = [geom("visual", cylinder(spec.radius, spec.thickness), rgba=PLATE_RGBA)]
    geoms = [geom("collision", cylinder(spec.radius, spec.thickness))]
    for size, pose in _rim_boxes(spec):
        rpy = (0.0, 0.0, math.atan2(pose[1, 0], pose[0, 0]))
        visuals.append(geom("visual", box(size), tuple(pose[:3, 3]), rpy, rgba=PLATE_RGBA))
        geoms.append(geom("collision", box(size), tuple(pose[:3, 3]), rpy))
    geoms.insert(0, link_visual(spec, "plate", plate_mesh(spec), PLATE_RGBA, "".join(visuals), d, key))
    body = f'<link name="plate">{inertial(spec.mass, inertia)}\n{"".join(geoms)}</link>'
    return write_once(d / f"{key}.urdf", urdf("plate", body))
