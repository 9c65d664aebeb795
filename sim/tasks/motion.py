"""The oracle-flow building blocks: a task object's links, surface sampling, and the motions of
rigid links and of the static table.

A task object is one PyBullet body made of links (`Link`), each a rigid part with its mesh in its
link frame. Its oracle flow samples points on the links' surfaces and carries them with the
links' scripted poses; the table is a static patch of points around the objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import trimesh

from chord_robot.flow import ObjectMotion, matrix_to_quat
from sim.assets import PatchTexture, link_texture
from sim.world import World, link_matrix


@dataclass(frozen=True)
class Link:
    """One rigid part of a task object.

    Attributes:
        name: link name ("base", "lid", ...).
        body: PyBullet body id.
        index: PyBullet link index, -1 for the base.
        mesh: its surface in the link frame.
        rgba: its colour.
        texture: the coloured patches of its visual mesh, if it has them.
    """

    name: str
    body: int
    index: int
    mesh: trimesh.Trimesh
    rgba: tuple[float, float, float, float]
    texture: PatchTexture | None = None


def asset_links(
    spec: object, body: int, meshes: dict[str, trimesh.Trimesh], parts: tuple[tuple[str, int, tuple], ...]
) -> list[Link]:
    """The links of an asset body: ``parts`` lists (link name, PyBullet link index, rgba); each
    link carries its patch texture when ``spec`` has a texture seed (`sim.assets.link_texture`)."""
    return [Link(n, body, i, meshes[n], rgba, link_texture(spec, n, meshes[n], rgba)) for n, i, rgba in parts]


def sample_surface(mesh: trimesh.Trimesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) points uniformly distributed over the surface of ``mesh`` (area weighted)."""
    assert n > 0
    tri = mesh.triangles  # (F, 3, 3)
    area = mesh.area_faces
    face = rng.choice(len(tri), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def farthest_points(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` points by farthest point sampling from a random start. (N, 3) -> (k,)."""
    k = min(k, len(points))
    idx = np.empty(k, dtype=np.int64)
    idx[0] = rng.integers(len(points))
    d = np.linalg.norm(points - points[idx[0]], axis=1)
    for i in range(1, k):
        idx[i] = int(np.argmax(d))
        d = np.minimum(d, np.linalg.norm(points - points[idx[i]], axis=1))
    return idx


def split_count(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights``, each at least 1."""
    w = np.asarray(weights, dtype=np.float64)
    parts = np.maximum(1, np.floor(total * w / w.sum()).astype(int))
    parts[int(np.argmax(w))] += total - parts.sum()
    return parts


def transform(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (4, 4) ``m`` to (N, 3) points."""
    return points @ m[:3, :3].T + m[:3, 3]


def links_world_mesh(world: World, links: list[Link]) -> trimesh.Trimesh:
    """The union of the links' meshes at their current world poses."""
    parts = []
    for link in links:
        m = link.mesh.copy()
        m.apply_transform(link_matrix(world, link.body, link.index))
        parts.append(m)
    return trimesh.util.concatenate(parts)


def links_world_surface(world: World, links: list[Link]) -> tuple[trimesh.Trimesh, np.ndarray]:
    """The links' visual surfaces at their current world poses and (M, 3) RGB vertex colours
    in [0, 1]: a textured link's patches, else its plain colour. Links stay separate
    connected components (the parts flowgen skins apart)."""
    meshes, colours = [], []
    for link in links:
        m = (link.texture.mesh if link.texture is not None else link.mesh).copy()
        m.apply_transform(link_matrix(world, link.body, link.index))
        meshes.append(m)
        colours.append(
            link.texture.vertex_colors
            if link.texture is not None
            else np.tile(np.asarray(link.rgba[:3]), (len(m.vertices), 1))
        )
    return trimesh.util.concatenate(meshes), np.concatenate(colours)


def articulated_motion(
    links: list[Link],
    poses: dict[str, np.ndarray],
    num_points: int,
    rng: np.random.Generator,
    controls_per_link: int = 16,
    skin_scale: float = 0.5,
) -> ObjectMotion:
    """The motion of an object made of rigid links, each following its own poses.

    Args:
        links: the object's links (meshes in link frames).
        poses: link name -> (T, 4, 4) world poses over the flow's frames.
        num_points: surface points in total, split by link area.
        controls_per_link: control points per link (farthest point sampled on the link),
            each carrying the link's rigid transform.
        skin_scale: skinning radii as a fraction of the mean distance to the 3 nearest
            control points.
    Returns:
        An ObjectMotion whose trajectories are exact and whose skinning reproduces them away
        from the joints.
    """
    counts = split_count(num_points, np.array([link.mesh.area for link in links]))
    pts, traj, cols, centers, quats, trans = [], [], [], [], [], []
    for link, n in zip(links, counts, strict=True):
        local = sample_surface(link.mesh, int(n), rng)
        p = poses[link.name]  # (T, 4, 4)
        assert p.ndim == 3 and p.shape[1:] == (4, 4), p.shape
        world_t = np.einsum("tij,nj->tni", p[:, :3, :3], local) + p[:, None, :3, 3]  # (T, n, 3)
        pts.append(world_t[0])
        traj.append(world_t)
        cols.append(np.tile(np.asarray(link.rgba[:3]), (int(n), 1)))
        c = world_t[0][farthest_points(world_t[0], controls_per_link, rng)]  # (K, 3)
        rel = p @ np.linalg.inv(p[0])  # (T, 4, 4): frame 0 -> frame t
        centers.append(c)
        q = matrix_to_quat(rel[:, :3, :3])  # (T, 4)
        quats.append(np.repeat(q[:, None], len(c), 1))
        # x' = R (x - c) + c + T  =>  T = R c + t - c
        trans.append(np.einsum("tij,kj->tki", rel[:, :3, :3], c) + rel[:, None, :3, 3] - c[None])
    traj_all = np.concatenate(traj, 1)
    motion = ObjectMotion(
        points=traj_all[0],
        trajectories=traj_all,
        centers=np.concatenate(centers),
        quats=np.concatenate(quats, 1),
        translations=np.concatenate(trans, 1),
        colors=np.concatenate(cols),
        static=False,
        source="mesh",
    )
    # Narrow skinning radii keep a point's blend on its own link's control points.
    return dataclasses.replace(motion, scales=skin_scale * motion.control_scales())


def table_motion(
    region: np.ndarray, num_frames: int, num_points: int, rng: np.random.Generator
) -> ObjectMotion:
    """The static table: points uniform on its top (z = 0) inside ``region`` (2, 2) xy min/max."""
    region = np.asarray(region, dtype=np.float64)
    xy = region[0] + rng.random((num_points, 2)) * (region[1] - region[0])
    pts = np.concatenate([xy, np.zeros((num_points, 1))], 1)
    poses = np.repeat(np.eye(4)[None], num_frames, 0)
    return ObjectMotion.rigid(
        pts, poses, colors=np.tile([0.72, 0.58, 0.42], (num_points, 1)), static=True, source="mesh"
    )


def table_region(points: list[np.ndarray], margin: float = 0.15) -> np.ndarray:
    """(2, 2) xy bounds of the given point sets, grown by ``margin`` metres."""
    allp = np.concatenate([p.reshape(-1, 3) for p in points])
    return np.stack([allp[:, :2].min(0) - margin, allp[:, :2].max(0) + margin])
