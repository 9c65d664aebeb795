"""Patch textures: the task objects carry coloured patches that follow the seed, and a textured
URDF keeps the plain one's collision shapes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim import assets
from sim.tasks import TASKS


def test_patch_textures_follow_the_seed():
    mesh = assets.laptop_meshes(assets.LaptopSpec())["lid"]
    a = assets.patch_texture(mesh, (0.3, 0.3, 0.3), seed=4, link="lid")
    b = assets.patch_texture(mesh, (0.3, 0.3, 0.3), seed=4, link="lid")
    c = assets.patch_texture(mesh, (0.3, 0.3, 0.3), seed=5, link="lid")
    np.testing.assert_array_equal(a.vertex_colors, b.vertex_colors)
    assert np.abs(a.palette - c.palette).max() > 0.05
    assert len(a.palette) == 10 and len(np.unique(a.face_patch)) == 10
    assert np.abs(a.palette - 0.3).max() <= 0.3 + 1e-9
    assert a.mesh.area == pytest.approx(mesh.area)  # subdivided, same surface


@pytest.mark.parametrize("name", [n for n in TASKS if n != "fold-fabric"])
def test_textured_urdf_keeps_its_collision_shapes(name, asset_root):
    spec = {"close-laptop": assets.LaptopSpec, "lower-lamp": assets.LampSpec,
            "pick-banana": assets.BananaSpec}[name]
    writer = {"close-laptop": assets.write_laptop, "lower-lamp": assets.write_lamp,
              "pick-banana": assets.write_banana}[name]
    plain = writer(spec(), asset_root).read_text()
    textured = writer(spec(texture_seed=3), asset_root).read_text()

    def collisions(urdf: str) -> list[str]:  # collision elements, mesh files replaced by their contents
        elements = [c.split("</collision>")[0] for c in urdf.split("<collision>")[1:]]
        return [re.sub(r'filename="([^"]+)"', lambda m: Path(m.group(1)).read_text(), e) for e in elements]

    assert len(collisions(plain)) >= 1 and collisions(plain) == collisions(textured)
    assert textured.count("<visual>") > plain.count("<visual>")
