"""A user's scan in PyBullet: every `chord_robot.scene.SceneObject` becomes a body.

Static objects (the table) become static triangle meshes (concave allowed, mass 0). Movable
ones become dynamic bodies whose collision shape is a convex decomposition of their mesh
(PyBullet's V-HACD), or the convex hull of their points for point clouds and Gaussians. A
movable body's base frame is its centre of mass; its mass is its volume times a density.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.errors import ScanError
from chord_robot.scene import Scene, SceneObject
from sim.assets import cache_dir
from sim.world import Body, World


@dataclass(frozen=True)
class SceneBodiesConfig:
    """How scan objects become bodies."""

    density: float = 300.0
    """kg/m^3 of movable objects (household objects are mostly hollow)."""
    mass_range: tuple[float, float] = (0.05, 3.0)
    """Masses are clipped to this range, kg."""
    friction: float = 0.8
    """Lateral friction of every body."""
    decompose: bool = True
    """Convex decomposition (V-HACD) of movable meshes; False uses one convex hull."""
    vhacd_resolution: int = 50_000
    """V-HACD voxel budget (10,000-16,000,000): more is finer and slower."""
    max_points: int = 20_000
    """Point clouds are subsampled to this many points before their hull is taken."""


@contextlib.contextmanager
def _quiet_stdout(log: Path) -> Iterator[None]:
    """Send the C library's stdout (V-HACD prints its progress) to ``log`` for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def object_mesh(obj: SceneObject, max_points: int = 20_000) -> trimesh.Trimesh:
    """The surface of a scene object: its mesh, or the convex hull of its points."""
    if obj.kind == "mesh":
        return trimesh.Trimesh(obj.points, obj.faces, process=True)
    pts = obj.points
    if len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(int)]
    spread = np.linalg.svd(pts - pts.mean(0), compute_uv=False) / np.sqrt(len(pts))
    if len(pts) < 4 or spread[2] < 1e-4:
        raise ScanError(
            f"object {obj.name!r}: its points span no volume (flat or too few); cannot simulate it"
        )
    return trimesh.convex.convex_hull(pts)


def _decompose(mesh: trimesh.Trimesh, world: World, cfg: SceneBodiesConfig, root: Path) -> Path:
    """V-HACD of ``mesh`` into an OBJ of convex pieces (cached by content)."""
    key = hashlib.sha1(
        mesh.vertices.tobytes() + mesh.faces.tobytes() + str(cfg.vhacd_resolution).encode()
    )
    out = root / f"vhacd_{key.hexdigest()[:16]}.obj"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        src, dst = Path(tmp) / "in.obj", Path(tmp) / "out.obj"
        mesh.export(src)
        with _quiet_stdout(Path(tmp) / "vhacd.log"):
            pb.vhacd(
                str(src),
                str(dst),
                str(Path(tmp) / "vhacd.log"),
                resolution=cfg.vhacd_resolution,
                physicsClientId=world.client,
            )
        if not dst.exists() or dst.stat().st_size == 0:
            raise ScanError("convex decomposition produced nothing; is the mesh empty or flat?")
        os.replace(dst, out)
    return out


def _color(obj: SceneObject) -> list[float]:
    if obj.colors is None:
        return [0.7, 0.7, 0.7, 1.0]
    return [*np.clip(obj.colors.mean(0), 0, 1).tolist(), 1.0]


def add_object(
    world: World,
    obj: SceneObject,
    config: SceneBodiesConfig | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Body:
    """Add one scene object to the world as a static or a dynamic body."""
    cfg, c = config or SceneBodiesConfig(), world.client
    mesh = object_mesh(obj, cfg.max_points)
    rgba = _color(obj)
    if obj.static:
        verts, faces = mesh.vertices.tolist(), mesh.faces.reshape(-1).tolist()
        col = pb.createCollisionShape(
            pb.GEOM_MESH,
            vertices=verts,
            indices=faces,
            flags=pb.GEOM_FORCE_CONCAVE_TRIMESH,
            physicsClientId=c,
        )
        vis = pb.createVisualShape(
            pb.GEOM_MESH, vertices=verts, indices=faces, rgbaColor=rgba, physicsClientId=c
        )
        body = pb.createMultiBody(0.0, col, vis, physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=cfg.friction, physicsClientId=c)
        return Body(obj.name, body, "static")
    hull = mesh.convex_hull
    com = mesh.center_mass if mesh.is_watertight and mesh.volume > 1e-9 else hull.center_mass
    volume = mesh.volume if mesh.is_watertight and mesh.volume > 1e-9 else hull.volume
    mass = float(np.clip(cfg.density * volume, *cfg.mass_range))
    local = mesh.copy()
    local.apply_translation(-com)
    if cfg.decompose and obj.kind == "mesh" and not mesh.is_convex:
        path = _decompose(local, world, cfg, cache_dir(root))
        col = pb.createCollisionShape(pb.GEOM_MESH, fileName=str(path), physicsClientId=c)
    else:
        h = local.convex_hull
        col = pb.createCollisionShape(pb.GEOM_MESH, vertices=h.vertices.tolist(), physicsClientId=c)
    vis = pb.createVisualShape(
        pb.GEOM_MESH,
        vertices=local.vertices.tolist(),
        indices=local.faces.reshape(-1).tolist(),
        rgbaColor=rgba,
        physicsClientId=c,
    )
    body = pb.createMultiBody(mass, col, vis, basePosition=com.tolist(), physicsClientId=c)
    pb.changeDynamics(body, -1, lateralFriction=cfg.friction, physicsClientId=c)
    return Body(obj.name, body, "rigid")


def scene_bodies(
    world: World,
    scene: Scene,
    config: SceneBodiesConfig | None = None,
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Body]:
    """Add every object of ``scene`` to ``world`` (create the world with ``table=False``: the
    scan brings its own support). Returns name -> body, in the scene's order."""
    return {name: add_object(world, obj, config, root) for name, obj in scene.objects.items()}
