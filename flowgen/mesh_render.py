"""A CPU renderer of coloured triangle meshes, independent of flowgen's Gaussian rasteriser.

Rays from the pixels of a `Camera` are cast against the mesh with Open3D's
``RaycastingScene`` (Embree on the CPU); the hit triangle and its barycentric coordinates give
the colour (`SceneObject.colors_at`: texture or interpolated vertex colours), the camera depth
and the coverage. Each pixel is sampled on an ``s x s`` grid and averaged, so silhouettes are
anti-aliased like the soft footprint of Gaussians: colour and alpha are the pixel's covered
fraction, as the Gaussian rasteriser's premultiplied output. No shading: the target is the
albedo the Gaussians carry.

It is the target of `flowgen.mesh_fit` (Gaussians fitted to multi-view renders of a mesh):
a separate renderer keeps that fit from agreeing with its own mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from chord_robot.camera import Camera
from chord_robot.scene import SceneObject

__all__ = ["MeshImage", "MeshTarget", "mesh_target", "orbit_cameras", "render_mesh"]


@dataclass(frozen=True)
class MeshTarget:
    """A mesh ready for ray casting.

    Attributes:
        mesh: the mesh object (vertices, faces, colours or texture).
        scene: the Open3D ray-casting scene of its triangles (built once, reused per view).
    """

    mesh: SceneObject
    scene: o3d.t.geometry.RaycastingScene


@dataclass(frozen=True)
class MeshImage:
    """One rendered view of a mesh.

    Attributes:
        color: (H, W, 3) mean colour over the pixel's samples, misses counting as black
            (premultiplied by ``alpha``, like the Gaussian rasteriser's colour).
        alpha: (H, W) fraction of the pixel's samples that hit the mesh.
        depth: (H, W) camera z of the surface averaged over the pixel's samples that hit it
            (0 where none does).
    """

    color: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray


def mesh_target(mesh: SceneObject) -> MeshTarget:
    """A `MeshTarget` of a mesh object."""
    assert mesh.kind == "mesh" and mesh.faces is not None and len(mesh.faces) > 0, mesh.kind
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(mesh.points, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(mesh.faces, np.uint32)))
    return MeshTarget(mesh, scene)


def _pixel_rays(camera: Camera, samples: int) -> np.ndarray:
    """(H, W, s*s, 6) rays (origin, direction with camera-z component 1) of a pixel grid."""
    offsets = (np.arange(samples) + 0.5) / samples
    u = np.arange(camera.width)[:, None] + offsets[None, :]  # (W, s)
    v = np.arange(camera.height)[:, None] + offsets[None, :]  # (H, s)
    x = (u - camera.cx) / camera.fx
    y = (v - camera.cy) / camera.fy
    grid = np.empty((camera.height, camera.width, samples, samples, 3))
    grid[..., 0] = x[None, :, None, :]
    grid[..., 1] = y[:, None, :, None]
    grid[..., 2] = 1.0
    rot = camera.world_from_camera[:3, :3]
    directions = grid.reshape(camera.height, camera.width, samples * samples, 3) @ rot.T
    origins = np.broadcast_to(camera.world_from_camera[:3, 3], directions.shape)
    return np.concatenate([origins, directions], -1)


def render_mesh(target: MeshTarget, camera: Camera, samples: int = 2) -> MeshImage:
    """Ray-cast ``target`` from ``camera``, ``samples x samples`` rays per pixel.

    With ray directions of camera-z 1, Open3D's hit distance is the camera depth itself.
    """
    assert samples >= 1, samples
    rays = _pixel_rays(camera, samples)
    h, w, s, _ = rays.shape
    hit = target.scene.cast_rays(o3d.core.Tensor(rays.reshape(-1, 6).astype(np.float32)))
    t = hit["t_hit"].numpy().astype(np.float64)
    face = hit["primitive_ids"].numpy().astype(np.int64)
    uv = hit["primitive_uvs"].numpy().astype(np.float64)
    ok = np.isfinite(t)
    color = np.zeros((len(t), 3))
    bary = np.stack([1 - uv[ok, 0] - uv[ok, 1], uv[ok, 0], uv[ok, 1]], 1)
    color[ok] = target.mesh.colors_at(face[ok], bary)
    ok_px = ok.reshape(h, w, s)
    alpha = ok_px.mean(-1)
    depth_sum = np.where(ok, t, 0.0).reshape(h, w, s).sum(-1)
    depth = np.where(alpha > 0, depth_sum / np.maximum(ok_px.sum(-1), 1), 0.0)
    return MeshImage(color.reshape(h, w, s, 3).mean(2), alpha, depth)


def orbit_cameras(centre: np.ndarray, radius: float, count: int, size: int, fov_y_deg: float = 40.0,
                  phase: float = 0.0, margin: float = 1.15) -> list[Camera]:
    """``count`` square cameras on a sphere around ``centre``, each framing a ball of ``radius``.

    Directions follow a Fibonacci spiral (even coverage of the sphere, poles excluded);
    ``phase`` in [0, 1) turns the spiral about z to get other views (held-out views: 6 at
    phase 0.6 are all more than 23 degrees from the 16 training views at phase 0; some other
    phases nearly repeat a training view, so check the angles when changing the counts).
    """
    assert count >= 1 and radius > 0 and size >= 4, (count, radius, size)
    golden = np.pi * (3.0 - np.sqrt(5.0))
    k = np.arange(count) + 0.5
    z = 1.0 - 2.0 * k / count
    z = np.clip(z, -0.95, 0.95)  # look_at with up = z is undefined straight from above or below
    r = np.sqrt(1.0 - z * z)
    theta = golden * k + 2 * np.pi * phase
    directions = np.stack([r * np.cos(theta), r * np.sin(theta), z], 1)
    distance = margin * radius / np.sin(np.radians(fov_y_deg) / 2)
    centre = np.asarray(centre, np.float64)
    return [Camera.look_at(centre + distance * d, centre, size, size, fov_y_deg=fov_y_deg) for d in directions]
