"""The desk lamp: a heavy base, an arm and a head (neck + conical shade) on two revolute
joints, its geometry, forward kinematics and URDF."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import (
    cache_dir,
    cyl_inertia,
    cyl_mesh,
    cylinder,
    geom,
    inertial,
    mesh_file,
    obj_text,
    rot,
    spec_key,
    trans,
    urdf,
    write_once,
)
from sim.assets.textures import link_visual


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
    return trans(0.0, 0.0, spec.base_height / 2 + spec.post_height)


def lamp_head_joint(spec: LampSpec) -> np.ndarray:
    """(4, 4) head joint frame in the arm frame."""
    return trans(0.0, 0.0, spec.arm_length)


def lamp_head_centre(spec: LampSpec) -> np.ndarray:
    """(3,) the shade's centre in the head frame: the point whose height lower-lamp measures."""
    return np.array([spec.neck_length + spec.shade_length / 2, 0.0, 0.0])


def lamp_link_poses(spec: LampSpec, arm: float, head: float) -> dict[str, np.ndarray]:
    """Forward kinematics: link name -> (4, 4) pose in the base frame."""
    arm_pose = lamp_arm_joint(spec) @ rot(LAMP_AXIS, arm)
    head_pose = arm_pose @ lamp_head_joint(spec) @ rot(LAMP_AXIS, head)
    return {"base": np.eye(4), "arm": arm_pose, "head": head_pose}


def _frustum(r0: float, r1: float, length: float, sections: int = 24) -> trimesh.Trimesh:
    """A closed truncated cone along +x from radius r0 at x = 0 to r1 at x = length."""
    a = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    ring = np.stack([np.zeros_like(a), np.cos(a), np.sin(a)], 1)
    pts = np.concatenate([ring * [0, r0, r0], ring * [0, r1, r1] + [length, 0, 0]])
    return trimesh.convex.convex_hull(pts)


def lamp_meshes(spec: LampSpec) -> dict[str, trimesh.Trimesh]:
    """Link name -> geometry in the link frame."""
    base = trimesh.util.concatenate(
        [
            cyl_mesh(spec.base_radius, spec.base_height, np.eye(4)),
            cyl_mesh(
                spec.arm_radius * 1.4,
                spec.post_height,
                trans(0, 0, spec.base_height / 2 + spec.post_height / 2),
            ),
        ]
    )
    arm = cyl_mesh(spec.arm_radius, spec.arm_length, trans(0, 0, spec.arm_length / 2))
    y_to_x = rot(np.array([0.0, 1.0, 0.0]), np.pi / 2)  # cylinder axis z -> x
    neck = cyl_mesh(
        spec.arm_radius * 0.8, spec.neck_length, trans(spec.neck_length / 2, 0, 0) @ y_to_x
    )
    shade = _frustum(spec.shade_top_radius, spec.shade_radius, spec.shade_length)
    shade.apply_translation([spec.neck_length, 0, 0])
    return {"base": base, "arm": arm, "head": trimesh.util.concatenate([neck, shade])}


def write_lamp(spec: LampSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the lamp URDF (links ``base``, ``arm``, ``head``; joints ``arm``, ``head``)."""
    d = cache_dir(root)
    key = spec_key("lamp", spec)
    shade = _frustum(spec.shade_top_radius, spec.shade_radius, spec.shade_length)
    shade_path = write_once(d / f"{key}_shade.obj", obj_text(shade))
    post_z = spec.base_height / 2 + spec.post_height / 2
    aj = lamp_arm_joint(spec)[:3, 3]
    hc = lamp_head_centre(spec)
    neck_geom = cylinder(spec.arm_radius * 0.8, spec.neck_length)
    neck_xyz = (spec.neck_length / 2, 0.0, 0.0)
    neck_rpy = (0.0, math.pi / 2, 0.0)
    shade_xyz = (spec.neck_length, 0.0, 0.0)
    meshes = lamp_meshes(spec)
    base_vis = (geom("visual", cylinder(spec.base_radius, spec.base_height), rgba=LAMP_RGBA)
                + geom("visual", cylinder(spec.arm_radius * 1.4, spec.post_height), (0, 0, post_z), rgba=LAMP_RGBA))
    arm_vis = geom("visual", cylinder(spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2), rgba=LAMP_RGBA)
    head_vis = (geom("visual", neck_geom, neck_xyz, neck_rpy, rgba=LAMP_RGBA)
                + geom("visual", mesh_file(shade_path), shade_xyz, rgba=LAMP_HEAD_RGBA))
    body = f"""
<link name="base">{inertial(spec.base_mass, cyl_inertia(spec.base_mass, spec.base_radius, spec.base_height))}
{link_visual(spec, "base", meshes["base"], LAMP_RGBA, base_vis, d, key)}
{geom("collision", cylinder(spec.base_radius, spec.base_height))}
{geom("collision", cylinder(spec.arm_radius * 1.4, spec.post_height), (0, 0, post_z))}</link>
<link name="arm">{inertial(spec.arm_mass, cyl_inertia(spec.arm_mass, spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2))}
{link_visual(spec, "arm", meshes["arm"], LAMP_RGBA, arm_vis, d, key)}
{geom("collision", cylinder(spec.arm_radius, spec.arm_length), (0, 0, spec.arm_length / 2))}</link>
<link name="head">{inertial(spec.head_mass, cyl_inertia(spec.head_mass, spec.shade_radius, spec.shade_length, 0), tuple(hc))}
{link_visual(spec, "head", meshes["head"], LAMP_HEAD_RGBA, head_vis, d, key)}
{geom("collision", neck_geom, neck_xyz, neck_rpy)}{geom("collision", mesh_file(shade_path), shade_xyz)}</link>
<joint name="arm" type="revolute"><parent link="base"/><child link="arm"/>
<origin xyz="{aj[0]:.6f} {aj[1]:.6f} {aj[2]:.6f}"/><axis xyz="0 1 0"/>
<limit lower="-0.6" upper="1.4" effort="50" velocity="5"/><dynamics damping="0.02"/></joint>
<joint name="head" type="revolute"><parent link="arm"/><child link="head"/>
<origin xyz="0 0 {spec.arm_length:.6f}"/><axis xyz="0 1 0"/>
<limit lower="-0.8" upper="1.8" effort="50" velocity="5"/><dynamics damping="0.01"/></joint>"""
    return write_once(d / f"{key}.urdf", urdf("lamp", body))
