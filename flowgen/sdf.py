"""Signed distance fields of an object, with part labels (step 1 of :mod:`flowgen.control`).

Meshes: Open3D's ``RaycastingScene`` (Embree BVH; exact distance, sign by ray-parity voting
over ``sign_rays`` rays), one scene per face-connected component so each part keeps its own
inside; components that are not watertight are thin shells (unsigned distance, no inside);
closed components sunk into each other (5% of both insides, or half of one) or one standing
flush on a small patch of the other's face merge into one part (`_merge_components`). Point
clouds: distance to the nearest point, sign by a majority vote of ``n . (x - p)`` over the
nearest points' oriented normals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import open3d as o3d
import trimesh
from scipy.spatial import cKDTree

__all__ = ["SignedDistanceField", "mesh_field", "point_cloud_field", "raycasting_scene", "voxel_centres"]


@dataclass(frozen=True)
class SignedDistanceField:
    """A signed distance with part labels.

    Attributes:
        evaluate: (Q, 3) float -> ((Q,) signed distance, negative inside; (Q,) part id).
            Exact near the object; far from every part (beyond a quarter of the object's
            extent) a mesh field may return +inf.
        bounds: (2, 3) axis-aligned bounds of the surface.
        area: surface area estimate in square units (seeds the voxel-size search).
        num_parts: parts (groups) the ids range over.
        face_group: (F,) part id per mesh face, or None for point clouds.
    """

    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    bounds: np.ndarray
    area: float
    num_parts: int
    face_group: np.ndarray | None = None


def raycasting_scene(vertices: np.ndarray, faces: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    """An Open3D ray-casting scene (Embree BVH) of one triangle mesh."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene


def mesh_field(mesh: trimesh.Trimesh, sign_rays: int = 3) -> SignedDistanceField:
    """Signed distance of a triangle mesh, one Open3D scene per connected component.

    Watertight components sunk into each other or standing one on the other are merged into
    one part (`_merge_components`); open components (no inside) become thin shells and join the
    part nearest to them.
    """
    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no faces; pass a triangle mesh or use point_cloud_field")
    if sign_rays < 1 or sign_rays % 2 == 0:
        raise ValueError(f"sign_rays must be a positive odd number, got {sign_rays}")
    # Weld coincident vertices first: textured meshes duplicate them along UV seams (and
    # flat-shaded ones per face), which would cut one solid into many open pieces. Faces keep
    # their order, so part ids stay aligned with the caller's faces.
    mesh = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=False)
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    labels = trimesh.graph.connected_component_labels(
        mesh.face_adjacency, node_count=len(mesh.faces)
    )
    components = []
    for label in range(int(labels.max()) + 1):
        sub = mesh.submesh([np.flatnonzero(labels == label)], append=True, repair=False)
        closed = bool(sub.is_watertight) and abs(float(sub.volume)) > 0
        components.append(_Component(sub, raycasting_scene(sub.vertices, sub.faces), closed))
    reach = 0.25 * float(np.ptp(mesh.bounds, axis=0).max())

    def component_distances(queries: np.ndarray) -> np.ndarray:
        """(C, Q) signed distance to each component; +inf beyond ``reach`` of its box."""
        out = np.full((len(components), len(queries)), np.inf, dtype=np.float32)
        for c, comp in enumerate(components):
            lo, hi = comp.mesh.bounds
            near = np.flatnonzero(((queries > lo - reach) & (queries < hi + reach)).all(axis=1))
            if len(near) == 0:
                continue
            points = o3d.core.Tensor(np.ascontiguousarray(queries[near], dtype=np.float32))
            if comp.closed:
                dist = comp.scene.compute_signed_distance(points, nsamples=sign_rays)
            else:
                dist = comp.scene.compute_distance(points)
            out[c, near] = dist.numpy()
        return out

    part_of_component = _merge_components(components, component_distances)

    def evaluate(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist = component_distances(queries)
        nearest = dist.argmin(axis=0)
        return dist[nearest, np.arange(len(queries))], part_of_component[nearest]

    return SignedDistanceField(
        evaluate=evaluate,
        bounds=np.asarray(mesh.bounds, dtype=np.float64),
        area=float(mesh.area),
        num_parts=int(part_of_component.max()) + 1,
        face_group=part_of_component[labels].astype(np.int64),
    )


@dataclass(frozen=True)
class _Component:
    """One face-connected component of a mesh."""

    mesh: trimesh.Trimesh
    scene: o3d.t.geometry.RaycastingScene
    closed: bool


OVERLAP_FRACTION = 0.05
"""Two closed components are one rigid part when the inside they share is at least this fraction
of each one's inside: a solid built of pieces sunk into each other (a plate's rim segments, 7%
of each; a knob sunk a fifth into its slab). A piece whose end dips into a much larger one at a
joint (a lamp's arm into its post, 0.4% of the post; its neck into the arm's tip, 15% of the
neck but 1% of the arm) keeps its own part; one with half its inside in another is embedded in
it (one part)."""

STAND_FRACTIONS = (0.02, 0.1)
"""A component stands on another, and is one rigid part with it, when its faces lying flush on
the other's (coplanar, touching) cover at least the first fraction of its own surface and less
than the second of the other's: a lamp's post on its disc (13% of the post, 1% of the disc), a
shade on its neck's end, a rim segment on a plate's floor. Two slabs face to face over most of
their extent (a closed lid on its base) touch but stay separate parts."""


def _merge_components(
    components: list[_Component], component_distances: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Part id per component: components sunk into each other (`OVERLAP_FRACTION`) or standing
    one on the other (`STAND_FRACTIONS`) merge; open shells join the nearest part.

    Overlap is measured on a grid of 20 points along each axis of each closed component's
    bounds (the grid's points inside it, and how many of them lie inside each other component);
    flush faces are those whose centres lie within 1e-4 of the object's extent of the other's
    surface with normals parallel or opposed (within 8 degrees). Both tests are between closed
    components. A small part lying flush on a large one (a flap closed on a box) is glued to it
    like a post on its disc; only slabs face to face over most of their extent stay apart.
    """
    count = len(components)
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    closed = np.array([c.closed for c in components])
    if count == 1:
        return np.zeros(1, dtype=np.int64)
    bounds = np.stack([c.mesh.bounds for c in components])
    extent = float((bounds[:, 1].max(0) - bounds[:, 0].min(0)).max())
    touch = 1e-4 * extent  # flush: a face this close to the other's surface
    near = ((bounds[:, None, 0] <= bounds[None, :, 1] + touch)
            & (bounds[None, :, 0] <= bounds[:, None, 1] + touch)).all(-1)
    shared = np.zeros((count, count))  # [c, d]: the fraction of c's inside inside d
    for c in np.flatnonzero(closed):
        lo, hi = bounds[c]
        axes = [lo[i] + (np.arange(20) + 0.5) * (hi[i] - lo[i]) / 20 for i in range(3)]
        probes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        inside = component_distances(probes) < 0  # (C, Q)
        if inside[c].any():
            shared[c] = inside[:, inside[c]].mean(axis=1)
    sunk = (np.minimum(shared, shared.T) >= OVERLAP_FRACTION) | (np.maximum(shared, shared.T) >= 0.5)
    for c, d in zip(*np.nonzero(np.triu(sunk, 1)), strict=True):  # open components' rows stay 0
        union(int(c), int(d))
    least, most = STAND_FRACTIONS
    for c in np.flatnonzero(closed):
        mesh = components[c].mesh
        centres = o3d.core.Tensor(np.ascontiguousarray(mesh.triangles_center, dtype=np.float32))
        for d in np.flatnonzero(near[c] & closed):
            if d == c:
                continue
            closest = components[d].scene.compute_closest_points(centres)
            gap = np.linalg.norm(closest["points"].numpy() - mesh.triangles_center, axis=1)
            facing = np.abs((closest["primitive_normals"].numpy() * mesh.face_normals).sum(1)) > 0.99
            flush = float(mesh.area_faces[(gap < touch) & facing].sum())
            if flush >= least * mesh.area and flush < most * components[d].mesh.area:
                union(int(c), int(d))
    if closed.any():
        for c in np.flatnonzero(~closed):
            dist = np.abs(component_distances(np.asarray(components[c].mesh.vertices)))
            dist[~closed] = np.inf
            union(int(c), int(dist.min(axis=1).argmin()))
    roots = np.array([find(i) for i in range(count)])
    _, part = np.unique(roots, return_inverse=True)
    return part.astype(np.int64)


def point_cloud_field(
    points: np.ndarray, normals: np.ndarray | None = None, vote_neighbours: int = 8
) -> SignedDistanceField:
    """Point-based signed distance of an oriented point cloud, one part.

    ``|phi|`` is the distance to the nearest point; the sign is a majority vote of
    ``n_p . (x - p)`` over the ``vote_neighbours`` nearest points. Normals are estimated and
    oriented consistently (Open3D) when not given, then flipped to point away from the
    centroid on the whole. The distance overestimates the true one by at most half the
    point spacing, so sample the surface more densely than the voxel size.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4:
        raise ValueError(f"points must be (N >= 4, 3), got {points.shape}")
    normals = _oriented_normals(points) if normals is None else np.asarray(normals, np.float64)
    if normals.shape != points.shape:
        raise ValueError(f"normals must match points {points.shape}, got {normals.shape}")
    tree = cKDTree(points)
    k = min(vote_neighbours, len(points))

    def evaluate(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = tree.query(queries, k=k)
        dist, idx = dist.reshape(len(queries), k), idx.reshape(len(queries), k)
        side = np.einsum("qkd,qkd->qk", queries[:, None, :] - points[idx], normals[idx])
        sign = np.where((side > 0).sum(axis=1) * 2 > k, 1.0, -1.0)
        return (sign * dist[:, 0]).astype(np.float32), np.zeros(len(queries), np.int64)

    extent = points.max(0) - points.min(0)
    spacing = float(np.median(tree.query(points, k=2)[0][:, 1]))
    return SignedDistanceField(
        evaluate=evaluate,
        bounds=np.stack((points.min(0), points.max(0))),
        area=max(len(points) * spacing**2, 2 * float(extent @ np.roll(extent, 1))),
        num_parts=1,
    )


def _oriented_normals(points: np.ndarray, max_orient_points: int = 3000) -> np.ndarray:
    """Normals estimated on all points, oriented consistently on a subsample.

    Open3D's consistent orientation (a minimum spanning tree over a k-NN graph) is slow
    beyond a few thousand points, so it runs on a random subsample whose orientation each
    point copies from its nearest subsample point; finally the whole set is flipped to point
    away from the centroid on balance.
    """
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=16))
    normals = np.asarray(cloud.normals).copy()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(points), size=min(max_orient_points, len(points)), replace=False)
    sub = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[pick]))
    sub.normals = o3d.utility.Vector3dVector(normals[pick])
    sub.orient_normals_consistent_tangent_plane(10)
    _, nearest = cKDTree(points[pick]).query(points)
    agree = np.einsum("nd,nd->n", normals, np.asarray(sub.normals)[nearest])
    normals[agree < 0] *= -1
    if np.einsum("nd,nd->n", points - points.mean(0), normals).sum() < 0:
        normals = -normals
    return normals


def voxel_centres(bounds: np.ndarray, voxel_size: float, pad: float, max_points: int) -> np.ndarray:
    """(G, 3) centres of a grid of size ``voxel_size`` covering ``bounds`` padded by ``pad``."""
    lo, hi = bounds[0] - pad, bounds[1] + pad
    counts = np.maximum(np.ceil((hi - lo) / voxel_size).astype(np.int64), 1)
    if int(np.prod(counts)) > max_points:
        raise ValueError(
            f"a voxel grid of size {voxel_size:.3g} over an object of extent "
            f"{np.round(bounds[1] - bounds[0], 3)} needs {int(np.prod(counts))} points; "
            "check the scan's units (metres) or lower target_surface_points"
        )
    axes = [lo[i] + (np.arange(counts[i]) + 0.5) * voxel_size for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
