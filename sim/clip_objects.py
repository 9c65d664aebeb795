"""The prior's clip objects that are not articulated: a small object carried onto (or off) a
plate, and a cloth folded in half (or unfolded).

Each motion has one scalar state per frame, like a laptop's lid angle, so clips are measured the
same way (`sim.clips.fit_angles`):
- pick: percent along the carry, 0 the object resting on the table, 100 resting on the plate;
  the object (a banana, a block or a can) rises first, crosses, and settles, turning a little
  about the vertical.
- fold: the fold angle, degrees, 0 flat, 180 the moving half lying on the other; the fold line
  is the cloth's diagonal (corner to corner, as the fold-fabric task) or its middle.

The scenes are JSON-able dicts drawn from the clip's generator, rebuilt exactly by `build`;
`Poser.set` puts a built object in a state (kinematically, no physics).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pybullet as pb
import trimesh

from sim import assets
from sim.clip_looks import load_texture, texture_spec
from sim.world import World, matrix_to_xyzw

PICK_RANGE = (0.0, 100.0)
FOLD_RANGE = (0.0, 180.0)
PICK_OBJECTS = ("banana", "block", "can")
FOLD_LIFT = 0.004
"""Height of the fold line above the cloth, metres (the folded half lies 2x this above)."""


def _ease(t: np.ndarray | float) -> np.ndarray | float:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def _yaw(yaw: float, xyz) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = trimesh.transformations.rotation_matrix(yaw, [0, 0, 1])[:3, :3]
    m[:3, 3] = xyz
    return m


# --------------------------------------------------------------------------- pick


def pick_mesh(spec: dict) -> trimesh.Trimesh:
    """The carried object's surface in its frame (origin at its centre, resting face at -z)."""
    if spec["object"] == "banana":
        return assets.banana_mesh(assets.BananaSpec(**spec["object_spec"]))
    if spec["object"] == "block":
        return trimesh.creation.box(spec["object_spec"]["size"])
    return trimesh.creation.cylinder(spec["object_spec"]["radius"], spec["object_spec"]["height"], sections=16)


def sample_pick(rng: np.random.Generator, colour_jitter: float, free_colours: float,
                textured: float, distance: tuple[float, float] | None = None) -> tuple[dict, dict, list[np.ndarray]]:
    """A random pick scene: its spec (object, sizes, start and end poses on the table and the
    plate, lift), part colours, and the (x, y) of the object and the plate (keep-out points).
    ``distance``: range of the distance (m) from the object's start to the plate's centre (at
    least the plate's radius + 7 cm); None: 7-17 cm beyond the plate's rim (16-30 cm)."""
    kind = str(rng.choice(PICK_OBJECTS))
    if kind == "banana":
        obj = asdict(assets.BananaSpec(arc_radius=round(rng.uniform(0.1, 0.16), 3),
                                       arc_angle=round(rng.uniform(0.9, 1.4), 3), radius=round(rng.uniform(0.014, 0.022), 4)))
        rgba = assets.BANANA_RGBA
    elif kind == "block":
        obj = {"size": rng.uniform(0.035, 0.07, 3).round(3).tolist()}
        rgba = (0.8, 0.3, 0.2, 1.0)
    else:
        obj = {"radius": round(float(rng.uniform(0.022, 0.04)), 3), "height": round(float(rng.uniform(0.06, 0.12)), 3)}
        rgba = (0.3, 0.5, 0.8, 1.0)
    plate = asdict(assets.PlateSpec(radius=round(rng.uniform(0.09, 0.13), 3)))
    spec = {"object": kind, "object_spec": obj, "plate": plate}
    half = float(-pick_mesh(spec).bounds[0, 2])
    centre = np.array([0.4, 0.0]) + rng.uniform(-0.05, 0.05, 2)
    heading = rng.uniform(-math.pi, math.pi)
    if distance is None:
        gap = rng.uniform(0.17, 0.27) + plate["radius"] - 0.1
    else:
        gap = max(rng.uniform(*distance), plate["radius"] + 0.07)
    start_xy = centre - 0.5 * gap * np.array([math.cos(heading), math.sin(heading)])
    plate_xy = centre + 0.5 * gap * np.array([math.cos(heading), math.sin(heading)])
    end_xy = plate_xy + rng.uniform(-0.02, 0.02, 2)
    yaw0 = float(rng.uniform(-math.pi, math.pi))
    spec.update(start=[*start_xy.round(4).tolist(), half, round(yaw0, 3)],
                end=[*end_xy.round(4).tolist(), plate["thickness"] + half, round(yaw0 + float(rng.uniform(-0.6, 0.6)), 3)],
                plate_xy=plate_xy.round(4).tolist(), lift=round(float(rng.uniform(0.06, 0.14)), 3))
    if rng.uniform() < free_colours:
        colour = [*rng.uniform(0.05, 0.95, 3).round(3).tolist(), 1.0]
    else:
        colour = [*np.clip(np.asarray(rgba[:3]) + rng.uniform(-colour_jitter, colour_jitter, 3), 0.05, 0.95)
                  .round(3).tolist(), 1.0]
    plate_rgba = [*np.clip(np.asarray(assets.PLATE_RGBA[:3]) + rng.uniform(-colour_jitter, colour_jitter, 3),
                           0.05, 0.95).round(3).tolist(), 1.0]
    spec["texture"] = texture_spec(rng) if kind == "block" and rng.uniform() < textured else None
    return spec, {"object": colour, "plate": plate_rgba}, [start_xy, plate_xy]


def pick_pose(spec: dict, state: float) -> np.ndarray:
    """(4, 4) world pose of the carried object at ``state`` percent of the carry."""
    f = float(np.clip(state / 100.0, 0.0, 1.0))
    g = float(_ease((f - 0.15) / 0.7))  # across the table, after the lift begins
    a, b = np.asarray(spec["start"]), np.asarray(spec["end"])
    xyz = a[:3] + (b[:3] - a[:3]) * g
    xyz[2] += spec["lift"] * math.sin(math.pi * f) ** 0.7
    return _yaw(float(a[3] + (b[3] - a[3]) * g), xyz)


def pick_points(spec: dict, states: np.ndarray) -> np.ndarray:
    """(M, 3) world points of the object over ``states`` and of the plate (camera framing)."""
    v = np.asarray(pick_mesh(spec).vertices)
    pts = [(pick_pose(spec, s) @ np.c_[v, np.ones(len(v))].T).T[:, :3] for s in states]
    plate = np.asarray(assets.plate_mesh(assets.PlateSpec(**spec["plate"])).vertices)
    pts.append(plate + [*spec["plate_xy"], spec["plate"]["thickness"] / 2])
    return np.concatenate(pts)


# --------------------------------------------------------------------------- fold


def sample_fold(rng: np.random.Generator, colour_jitter: float, free_colours: float,
                textured: float) -> tuple[dict, dict, list[np.ndarray]]:
    """A random cloth: size, fold line (diagonal or middle; which half moves), yaw, centre,
    colour or texture; the cloth's centre as the keep-out point."""
    centre = np.array([0.4, 0.0]) + rng.uniform(-0.05, 0.05, 2)
    spec = {"size": round(float(rng.uniform(0.18, 0.3)), 3), "resolution": 17,
            "diagonal": bool(rng.uniform() < 0.5), "flip": bool(rng.uniform() < 0.5),
            "yaw": round(float(rng.uniform(-math.pi, math.pi)), 3), "centre": centre.round(4).tolist()}
    base = np.array([0.8, 0.25, 0.3])
    rgb = rng.uniform(0.05, 0.95, 3) if rng.uniform() < free_colours else np.clip(
        base + rng.uniform(-colour_jitter, colour_jitter, 3), 0.05, 0.95)
    spec["texture"] = texture_spec(rng) if rng.uniform() < textured else None
    return spec, {"cloth": [*rgb.round(3).tolist(), 1.0]}, [centre]


def _fold_normal(spec: dict) -> np.ndarray:
    """Unit in-plane normal of the fold line toward the moving half, cloth frame (x, y)."""
    n = np.array([-1.0, -1.0]) / math.sqrt(2) if spec["diagonal"] else np.array([-1.0, 0.0])
    return -n if spec["flip"] else n


def _half(spec: dict, side: float) -> np.ndarray:
    """(K, 2) corners, counter-clockwise, of the part of the square cloth on ``side`` (+1: the
    moving half) of its fold line (the square clipped by a half-plane)."""
    c, n = spec["size"] / 2, _fold_normal(spec)
    square = [np.array(p) for p in ((-c, -c), (c, -c), (c, c), (-c, c))]
    out = []
    for p, q in zip(square, square[1:] + square[:1], strict=True):
        dp, dq = side * float(p @ n), side * float(q @ n)
        if dp >= -1e-12:
            out.append(p)
        if (dp > 1e-12 and dq < -1e-12) or (dp < -1e-12 and dq > 1e-12):
            out.append(p + (q - p) * dp / (dp - dq))
    return np.asarray(out)


def fold_pose(spec: dict, angle_deg: float) -> np.ndarray:
    """(4, 4) world pose of the moving half's frame at fold ``angle_deg``: the fold line lifted
    by `FOLD_LIFT`, turned so the half rises toward and over the other."""
    n = _fold_normal(spec)
    axis = np.cross([n[0], n[1], 0.0], [0.0, 0.0, 1.0])
    pose = _yaw(spec["yaw"], [*spec["centre"], 0.0])
    return pose @ trimesh.transformations.translation_matrix([0, 0, FOLD_LIFT]) @ \
        trimesh.transformations.rotation_matrix(math.radians(angle_deg), axis)


def fold_parts(spec: dict) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The cloth's two halves, each (vertices in its frame (K, 3), faces of both windings, texture
    coordinates (K, 2)): the still half (frame: the cloth's) and the moving one (`fold_pose`)."""
    parts = []
    for side, z in ((-1.0, 0.001), (1.0, 0.001 - FOLD_LIFT)):
        xy = _half(spec, side)
        fan = np.array([[0, k, k + 1] for k in range(1, len(xy) - 1)])
        parts.append((np.c_[xy, np.full(len(xy), z)], np.concatenate([fan, fan[:, ::-1]]),
                      (xy + spec["size"] / 2) / spec["size"]))
    return parts


def fold_points(spec: dict, states: np.ndarray) -> np.ndarray:
    """(M, 3) world points of the cloth over ``states`` (camera framing)."""
    (still, _, _), (moving, _, _) = fold_parts(spec)
    pose = _yaw(spec["yaw"], [*spec["centre"], 0.0])
    pts = [(pose @ np.c_[still, np.ones(len(still))].T).T[:, :3]]
    pts += [(fold_pose(spec, float(s)) @ np.c_[moving, np.ones(len(moving))].T).T[:, :3] for s in states]
    return np.concatenate(pts)


# --------------------------------------------------------------------------- building


class Poser:
    """A built clip object: `set` puts it in a state (pick percent, fold degrees)."""

    def __init__(self, world: World, kind: str, spec: dict, colours: dict, asset_root: str | None = None):
        self.world, self.kind, self.spec, self.colours, self.root = world, kind, spec, colours, asset_root
        self.body: int = -1
        c = world.client
        if kind == "pick":
            plate = pb.loadURDF(str(assets.write_plate(assets.PlateSpec(**spec["plate"]), asset_root)),
                                [*spec["plate_xy"], spec["plate"]["thickness"] / 2], useFixedBase=True,
                                physicsClientId=c)
            pb.changeVisualShape(plate, -1, rgbaColor=colours["plate"], physicsClientId=c)
            self.body = self._pick_body()
        else:
            texture = load_texture(world, spec["texture"], asset_root) if spec.get("texture") else None
            if spec.get("patches") is not None:
                cloth = assets.ClothSpec(size=spec["size"], texture_seed=spec["patches"])
                path = assets.write_cloth_texture(cloth, tuple(colours["cloth"]), asset_root)
                texture = pb.loadTexture(str(path), physicsClientId=c)
            rgba = [1, 1, 1, 1] if texture is not None else colours["cloth"]
            bodies = []
            for vertices, faces, uv in fold_parts(spec):
                vis = pb.createVisualShape(pb.GEOM_MESH, vertices=vertices.tolist(), indices=faces.reshape(-1).tolist(),
                                           uvs=uv.tolist(), rgbaColor=rgba, physicsClientId=c)
                bodies.append(pb.createMultiBody(0.0, -1, vis, physicsClientId=c))
                if texture is not None:
                    pb.changeVisualShape(bodies[-1], -1, textureUniqueId=texture, physicsClientId=c)
            pos, orn = matrix_to_xyzw(_yaw(spec["yaw"], [*spec["centre"], 0.0]))
            pb.resetBasePositionAndOrientation(bodies[0], pos, orn, physicsClientId=c)
            self.body = bodies[1]

    def _pick_body(self) -> int:
        c, spec = self.world.client, self.spec
        if spec["object"] == "banana":
            path = assets.write_banana(assets.BananaSpec(**spec["object_spec"]), self.root)
            body = pb.loadURDF(str(path), useFixedBase=True, physicsClientId=c)
        elif spec["object"] == "block":
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[x / 2 for x in spec["object_spec"]["size"]],
                                       physicsClientId=c)
            body = pb.createMultiBody(0.0, -1, vis, physicsClientId=c)
        else:
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=spec["object_spec"]["radius"],
                                       length=spec["object_spec"]["height"], physicsClientId=c)
            body = pb.createMultiBody(0.0, -1, vis, physicsClientId=c)
        pb.changeVisualShape(body, -1, rgbaColor=self.colours["object"], physicsClientId=c)
        if spec.get("texture") is not None:
            pb.changeVisualShape(body, -1, textureUniqueId=load_texture(self.world, spec["texture"], self.root),
                                 rgbaColor=[1, 1, 1, 1], physicsClientId=c)
        return body

    def set(self, state: float) -> None:
        pose = pick_pose(self.spec, state) if self.kind == "pick" else fold_pose(self.spec, state)
        pos, orn = matrix_to_xyzw(pose)
        pb.resetBasePositionAndOrientation(self.body, pos, orn, physicsClientId=self.world.client)
