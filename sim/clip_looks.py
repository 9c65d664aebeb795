"""Appearance of the prior's training clips beyond their moving object: procedural textures, a
floor below the table, and static distractor objects.

A prior that saw one object in flat colours on one table learns that look, not the motion: an
independently built laptop (checkerboard boxes) did not move under it. So a clip may carry
textures of several kinds (checkers, stripes, noise, smooth blotches like photographed
surfaces, plain) on the table, the floor, the moving object's box-shaped parts and the
distractors, and 0-2 static objects stand on the table (boxes, cylinders, spheres, and the
meshes of ``pybullet_data``: a duck, a teddy, a torus ...).

Everything is described by JSON-able values drawn from the clip's generator (`sample_looks`),
so a clip's scene rebuilds exactly (`apply_looks`) for measuring sampled videos.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pybullet as pb
import pybullet_data

from sim.assets.common import cache_dir, write_once
from sim.world import World

TEXTURE_KINDS = ("checker", "stripes", "noise", "blotches", "plain")
"""What a procedural texture can look like."""
TEXTURE_SIZE = 64
"""Side of a texture image, pixels."""

DISTRACTOR_KINDS = ("box", "cylinder", "sphere", "duck_vhacd.urdf", "teddy_vhacd.urdf", "soccerball.urdf",
                    "cube_small.urdf", "lego/lego.urdf")
"""Shapes of the static objects standing on the table (``*.urdf``: a ``pybullet_data`` model)."""
_MODEL_SIZE = {"duck_vhacd.urdf": 0.091, "teddy_vhacd.urdf": 0.101, "soccerball.urdf": 1.0, "cube_small.urdf": 0.05,
               "lego/lego.urdf": 0.034}
"""Largest extent of a ``pybullet_data`` model at global scale 1, metres (a distractor of size s
is loaded at scale s / this)."""


def texture_spec(rng: np.random.Generator) -> dict:
    """A random texture: its kind, two colours, scale and angle (JSON-able)."""
    kind = str(rng.choice(TEXTURE_KINDS))
    return {"kind": kind, "a": rng.uniform(0.05, 0.95, 3).round(3).tolist(),
            "b": rng.uniform(0.05, 0.95, 3).round(3).tolist(), "cells": int(rng.integers(2, 12)),
            "angle": round(float(rng.uniform(0, math.pi)), 3), "seed": int(rng.integers(1 << 30))}


def texture_image(spec: dict) -> np.ndarray:
    """(TEXTURE_SIZE, TEXTURE_SIZE, 3) uint8 image of a `texture_spec`."""
    n, a, b = TEXTURE_SIZE, np.asarray(spec["a"]), np.asarray(spec["b"])
    v, u = (np.mgrid[0:n, 0:n] + 0.5) / n
    c, s = math.cos(spec["angle"]), math.sin(spec["angle"])
    x = c * u + s * v
    k = spec["cells"]
    rng = np.random.default_rng(spec["seed"])
    if spec["kind"] == "checker":
        w = ((np.floor(u * k) + np.floor(v * k)) % 2)[..., None]
    elif spec["kind"] == "stripes":
        w = (np.floor(x * k * 2) % 2)[..., None]
    elif spec["kind"] == "noise":
        w = rng.uniform(0, 1, (n, n, 1))
    elif spec["kind"] == "blotches":  # smooth random field, like a photographed surface
        coarse = rng.uniform(0, 1, (k + 1, k + 1))
        gi, gj = v * k, u * k
        i0, j0 = np.floor(gi).astype(int), np.floor(gj).astype(int)
        fi, fj = gi - i0, gj - j0
        w = (coarse[i0, j0] * (1 - fi) * (1 - fj) + coarse[i0 + 1, j0] * fi * (1 - fj)
             + coarse[i0, j0 + 1] * (1 - fi) * fj + coarse[i0 + 1, j0 + 1] * fi * fj)[..., None]
        w = w + rng.uniform(-0.08, 0.08, (n, n, 1))
    else:
        w = np.zeros((n, n, 1))
    return np.round(np.clip(a * (1 - w) + b * w, 0, 1) * 255).astype(np.uint8)


def load_texture(world: World, spec: dict, asset_root: str | None = None) -> int:
    """The texture's PyBullet id (its PNG written once into the asset cache)."""
    import imageio.v3 as iio

    key = f"tex_{spec['kind']}_{spec['seed']}_{spec['cells']}_" + "_".join(
        f"{round(x * 255):02x}" for x in [*spec["a"], *spec["b"], spec["angle"] / math.pi])
    buf = io.BytesIO()
    iio.imwrite(buf, texture_image(spec), extension=".png")
    path = write_once(cache_dir(asset_root) / f"{key}.png", buf.getvalue())
    return pb.loadTexture(str(path), physicsClientId=world.client)


def sample_distractors(rng: np.random.Generator, count_range: tuple[int, int], textured: float,
                       keep_out: np.ndarray, keep_radius: float) -> list[dict]:
    """Up to ``count_range`` (inclusive; drawn) static objects on the table 12-30 cm from the
    scene's middle, none within ``keep_radius`` (+ its size) of the points ``keep_out`` (N, 2)
    (the moving object, the plate): one that finds no such spot in 20 draws is left out. A
    fraction ``textured`` carry a procedural texture."""
    lo, hi = count_range
    count = int(rng.integers(lo, hi + 1)) if hi > 0 else 0
    out: list[dict] = []
    centre = keep_out.mean(0)
    for _ in range(count):
        kind = str(rng.choice(DISTRACTOR_KINDS))
        size = float(rng.uniform(0.04, 0.1))
        for _ in range(20):
            angle, dist = rng.uniform(-math.pi, math.pi), rng.uniform(0.12, 0.3)
            xy = centre + dist * np.array([math.cos(angle), math.sin(angle)])
            if np.linalg.norm(keep_out - xy, axis=1).min() > keep_radius + size:
                break
        else:
            continue
        rgba = [*rng.uniform(0.05, 0.95, 3).round(3).tolist(), 1.0]
        texture = texture_spec(rng) if rng.uniform() < textured else None
        out.append({"kind": kind, "xy": xy.round(4).tolist(), "size": round(size, 3),
                    "yaw": round(float(rng.uniform(-math.pi, math.pi)), 3), "rgba": rgba, "texture": texture})
    return out


def sample_looks(rng: np.random.Generator, textured: float, floor: bool) -> dict:
    """The table's texture (None: its colour) and, with ``floor``, the floor's colour and texture;
    each surface textured with probability ``textured``."""
    def maybe() -> dict | None:
        return texture_spec(rng) if rng.uniform() < textured else None

    return {"table": maybe(), "floor": ([*rng.uniform(0.05, 0.95, 3).round(3).tolist(), 1.0], maybe())
            if floor else None}


def add_distractor(world: World, d: dict, asset_root: str | None = None) -> int:
    """Build one distractor (standing on the table at z = 0); its body id."""
    c = world.client
    yaw = pb.getQuaternionFromEuler([0.0, 0.0, d["yaw"]])
    s = d["size"]
    if d["kind"].endswith(".urdf"):
        scale = s / _MODEL_SIZE[d["kind"]]
        body = pb.loadURDF(str(pybullet_data.getDataPath() + "/" + d["kind"]), [d["xy"][0], d["xy"][1], 0.0], yaw,
                           useFixedBase=True, globalScaling=scale, physicsClientId=c)
        lo, _ = pb.getAABB(body, -1, physicsClientId=c)
        pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=c)
        pb.resetBasePositionAndOrientation(body, [pos[0], pos[1], pos[2] - lo[2]], orn, physicsClientId=c)
    else:
        if d["kind"] == "box":
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[s / 2, s / 3, s / 2], physicsClientId=c)
        elif d["kind"] == "cylinder":
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=s / 3, length=s, physicsClientId=c)
        else:
            vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=s / 2, physicsClientId=c)
        body = pb.createMultiBody(0.0, -1, vis, basePosition=[d["xy"][0], d["xy"][1], s / 2],
                                  baseOrientation=yaw, physicsClientId=c)
    pb.changeVisualShape(body, -1, rgbaColor=d["rgba"], physicsClientId=c)
    if d["texture"] is not None:
        pb.changeVisualShape(body, -1, textureUniqueId=load_texture(world, d["texture"], asset_root),
                             rgbaColor=[1, 1, 1, 1], physicsClientId=c)
    return body


def apply_looks(world: World, table: int, looks: dict, distractors: list[dict], asset_root: str | None = None) -> None:
    """Texture the table, add the floor and the distractors (after the table and its colour)."""
    c = world.client
    if looks.get("table") is not None:
        pb.changeVisualShape(table, -1, textureUniqueId=load_texture(world, looks["table"], asset_root),
                             rgbaColor=[1, 1, 1, 1], physicsClientId=c)
    if looks.get("floor") is not None:
        rgba, texture = looks["floor"]
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[4.0, 4.0, 0.01], rgbaColor=rgba, physicsClientId=c)
        floor = pb.createMultiBody(0.0, -1, vis, basePosition=[0.4, 0.0, -0.75], physicsClientId=c)
        if texture is not None:
            pb.changeVisualShape(floor, -1, textureUniqueId=load_texture(world, texture, asset_root),
                                 rgbaColor=[1, 1, 1, 1], physicsClientId=c)
    for d in distractors:
        add_distractor(world, d, asset_root)


def texture_links(world: World, body: int, textures: dict[str, dict], asset_root: str | None = None) -> None:
    """Texture the links of ``body`` (link index as a string -> `texture_spec`)."""
    for link, spec in textures.items():
        pb.changeVisualShape(body, int(link), textureUniqueId=load_texture(world, spec, asset_root),
                             rgbaColor=[1, 1, 1, 1],
                             physicsClientId=world.client)
