"""Procedural task assets: URDFs and meshes written by project code into a cache directory.

Every asset is described by a frozen spec dataclass; the files are named by a hash of the
spec, written atomically, and reused when they exist, so parallel workers can share a cache.
Each asset also exposes its geometry as trimesh meshes in its link frames (for surface
sampling) and, for articulated ones, its forward kinematics in numpy (for oracle motions).

Frames: every base link frame is its inertial frame (PyBullet reports base poses in that
frame), z up. Articulated children are described by their URDF link frames.

Modules (reading order):
    common   -- the cache directory, spec-keyed atomic writes, OBJ text, URDF XML pieces.
    textures -- `PatchTexture`: seeded Voronoi colour patches on a link's visual surface.
    laptop   -- `LaptopSpec`: base and lid on a hinge (close-laptop, the prior's clips).
    lamp     -- `LampSpec`: base, arm and head on two joints (lower-lamp, the clips).
    banana   -- `BananaSpec`: a curved tube with a convex-piece collision shape (pick-banana).
    plate    -- `PlateSpec`: a disc with a rim of boxes (pick-banana).
    cloth    -- `ClothSpec`: a soft-body grid and its texture image (fold-fabric).

Everything public is re-exported here: ``from sim import assets; assets.write_laptop(...)``.
"""

from __future__ import annotations

from sim.assets.banana import BANANA_RGBA, BananaSpec, banana_mesh, banana_pieces, write_banana
from sim.assets.cloth import (
    CLOTH_TEXTURE_SIZE,
    ClothSpec,
    cloth_corners,
    cloth_grid,
    cloth_texture,
    cloth_uv,
    texture_colors,
    write_cloth,
    write_cloth_texture,
)
from sim.assets.common import DEFAULT_CACHE, cache_dir
from sim.assets.lamp import (
    LAMP_AXIS,
    LAMP_HEAD_RGBA,
    LAMP_RGBA,
    LampSpec,
    lamp_arm_joint,
    lamp_head_centre,
    lamp_head_joint,
    lamp_link_poses,
    lamp_meshes,
    write_lamp,
)
from sim.assets.laptop import (
    LAPTOP_BASE_RGBA,
    LAPTOP_HINGE_AXIS,
    LAPTOP_LID_RGBA,
    LaptopSpec,
    laptop_hinge,
    laptop_link_poses,
    laptop_meshes,
    write_laptop,
)
from sim.assets.plate import PLATE_RGBA, PlateSpec, plate_mesh, plate_top, write_plate
from sim.assets.textures import PatchTexture, flat_obj_text, link_texture, patch_texture

__all__ = [
    "BANANA_RGBA",
    "CLOTH_TEXTURE_SIZE",
    "DEFAULT_CACHE",
    "LAMP_AXIS",
    "LAMP_HEAD_RGBA",
    "LAMP_RGBA",
    "LAPTOP_BASE_RGBA",
    "LAPTOP_HINGE_AXIS",
    "LAPTOP_LID_RGBA",
    "PLATE_RGBA",
    "BananaSpec",
    "ClothSpec",
    "LampSpec",
    "LaptopSpec",
    "PatchTexture",
    "PlateSpec",
    "banana_mesh",
    "banana_pieces",
    "cache_dir",
    "cloth_corners",
    "cloth_grid",
    "cloth_texture",
    "cloth_uv",
    "flat_obj_text",
    "lamp_arm_joint",
    "lamp_head_centre",
    "lamp_head_joint",
    "lamp_link_poses",
    "lamp_meshes",
    "laptop_hinge",
    "laptop_link_poses",
    "laptop_meshes",
    "link_texture",
    "patch_texture",
    "plate_mesh",
    "plate_top",
    "texture_colors",
    "write_banana",
    "write_cloth",
    "write_cloth_texture",
    "write_lamp",
    "write_laptop",
    "write_plate",
]
