"""A user's scan as PyBullet bodies: a static table mesh, a concave object decomposed into
convex pieces, a point cloud as its hull; they rest where gravity puts them."""

from __future__ import annotations

import numpy as np
import pybullet as pb

from chord_robot.scene import Scene, SceneObject
from sim.scene import scene_bodies
from sim.world import World, reset, settle


def _box(extents, centre) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    m = trimesh.creation.box(extents)
    m.apply_translation(centre)
    return m.vertices, m.faces


def _scene() -> Scene:
    import trimesh

    tv, tf = _box((1.0, 1.0, 0.04), (0.5, 0.0, -0.02))  # table top at z = 0
    # an L: a 20 cm bar with a 15 cm post, one concave mesh
    a = trimesh.creation.box((0.2, 0.05, 0.05))
    b = trimesh.creation.box((0.05, 0.05, 0.15))
    b.apply_translation([0.075, 0.0, 0.1])
    ell = trimesh.util.concatenate([a, b])
    ell.apply_translation([0.45, -0.15, 0.1])  # 7.5 cm above the table
    rng = np.random.default_rng(0)
    d = rng.normal(size=(2000, 3))
    ball = 0.03 * d / np.linalg.norm(d, axis=1, keepdims=True) + [0.5, 0.2, 0.05]
    return Scene(
        {
            "table": SceneObject("table", "mesh", tv, faces=tf, static=True),
            "ell": SceneObject("ell", "mesh", ell.vertices, faces=ell.faces),
            "ball": SceneObject("ball", "points", ball, colors=np.tile([0.9, 0.2, 0.2], (2000, 1))),
        }
    )


def test_scan_objects_become_bodies_that_rest_on_the_table(world: World, asset_root: str) -> None:
    reset(world, table=False)
    bodies = scene_bodies(world, _scene(), root=asset_root)
    assert [b.kind for b in bodies.values()] == ["static", "rigid", "rigid"]
    c = world.client
    # the concave L is a compound of several convex pieces, the cloud a single hull
    assert len(pb.getCollisionShapeData(bodies["ell"].id, -1, physicsClientId=c)) >= 2
    assert len(pb.getCollisionShapeData(bodies["ball"].id, -1, physicsClientId=c)) == 1
    steps = settle(world, list(bodies.values()), max_steps=1200)
    assert steps < 1200
    lo, hi = pb.getAABB(bodies["ell"].id, physicsClientId=c)
    assert abs(lo[2]) < 0.01 and abs(hi[2] - 0.2) < 0.02  # standing on its bar, post up
    lo, hi = pb.getAABB(bodies["ball"].id, physicsClientId=c)
    assert abs(lo[2]) < 0.01
    assert pb.getBasePositionAndOrientation(bodies["table"].id, physicsClientId=c)[0] == (
        0.0,
        0.0,
        0.0,
    )
