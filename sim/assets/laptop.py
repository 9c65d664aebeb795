"""The laptop: a base slab and a lid on a revolute hinge, its geometry, forward kinematics and
URDF."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import (
    box,
    box_inertia,
    cache_dir,
    geom,
    inertial,
    rot,
    spec_key,
    trans,
    urdf,
    write_once,
)
from sim.assets.textures import link_visual


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
    return trans(-spec.depth / 2, 0.0, spec.base_thickness / 2)


LAPTOP_HINGE_AXIS = np.array([0.0, -1.0, 0.0])


def laptop_link_poses(spec: LaptopSpec, angle: float) -> dict[str, np.ndarray]:
    """Forward kinematics: link name -> (4, 4) pose in the base frame at hinge ``angle``."""
    return {"base": np.eye(4), "lid": laptop_hinge(spec) @ rot(LAPTOP_HINGE_AXIS, angle)}


def laptop_meshes(spec: LaptopSpec) -> dict[str, trimesh.Trimesh]:
    """Link name -> geometry in the link frame."""
    base = trimesh.creation.box((spec.depth, spec.width, spec.base_thickness))
    lid = trimesh.creation.box(
        (spec.depth, spec.width, spec.lid_thickness),
        transform=trans(spec.depth / 2, 0, spec.lid_thickness / 2),
    )
    return {"base": base, "lid": lid}


def write_laptop(spec: LaptopSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the laptop URDF (links ``base``, ``lid``; joint ``lid_hinge``) and return its path."""
    d = cache_dir(root)
    key = spec_key("laptop", spec)
    meshes = laptop_meshes(spec)
    bsize = (spec.depth, spec.width, spec.base_thickness)
    lsize = (spec.depth, spec.width, spec.lid_thickness)
    lxyz = (spec.depth / 2, 0.0, spec.lid_thickness / 2)
    h = laptop_hinge(spec)[:3, 3]
    body = f"""
<link name="base">{inertial(spec.base_mass, box_inertia(spec.base_mass, bsize))}
{link_visual(spec, "base", meshes["base"], LAPTOP_BASE_RGBA, geom("visual", box(bsize), rgba=LAPTOP_BASE_RGBA), d, key)}
{geom("collision", box(bsize))}</link>
<link name="lid">{inertial(spec.lid_mass, box_inertia(spec.lid_mass, lsize), lxyz)}
{link_visual(spec, "lid", meshes["lid"], LAPTOP_LID_RGBA, geom("visual", box(lsize), lxyz, rgba=LAPTOP_LID_RGBA), d, key)}
{geom("collision", box(lsize), lxyz)}</link>
<joint name="lid_hinge" type="revolute"><parent link="base"/><child link="lid"/>
<origin xyz="{h[0]:.6f} {h[1]:.6f} {h[2]:.6f}"/><axis xyz="0 -1 0"/>
<limit lower="0" upper="{spec.open_limit:.6f}" effort="50" velocity="5"/><dynamics damping="0.02"/></joint>"""
    return write_once(d / f"{key}.urdf", urdf("laptop", body))
