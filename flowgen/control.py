"""Control points and the near-surface ARAP point set of one object (supplementary §A.1).

Steps, for a mesh (preferably watertight) or an oriented point cloud:

1. A signed distance ``phi`` (negative inside). Meshes: Open3D's ``RaycastingScene``
   (Embree BVH; exact distance, sign by ray-parity voting over ``sign_rays`` rays), one
   scene per face-connected component so each part keeps its own inside. Components that
   are not watertight are treated as thin shells (unsigned distance, no inside). Point
   clouds: a point-based SDF - distance to the nearest point, sign by a majority vote of
   ``n . (x - p)`` over the nearest points' oriented normals (estimated by Open3D and
   oriented consistently when not given). No surface reconstruction is needed, and an
   open single-sided scan still gets a sensible "behind the surface" inside.
2. Voxel size ``s`` by a safeguarded search (a power-law step ``s * sqrt(count / target)``,
   since the band count scales like ``area / s^2``, kept inside a shrinking bracket) so that
   ``|S| = #{voxel centres with |phi| < band * s}`` is within ``tolerance`` of
   ``target_surface_points`` (7500 in the paper). ``S`` is the ARAP point set.
3. Interior centres ``I = {phi <= 0}``; where a part has too few of them (thin parts) its
   grid is refined by halving ``s`` locally, up to ``max_interior_refinements`` times; a part
   with no inside at all (open shell) falls back to its band points.
4. Per part and level: farthest point sampling (``fpsample``) seeds k-means
   (scikit-learn), K split between parts by interior volume (at least one each). A k-means
   centre that falls outside its part (a concave cluster) snaps to the nearest interior
   centre, so every control point satisfies ``phi <= 0``.
5. Scale of each control = mean distance to its 3 nearest control points of the level.

Groups: parts are the mesh's face-connected components, merged when sunk into each other by a
share of both insides (interpenetrating primitives of one rigid piece; a link's end dipping into
its parent at a joint stays apart) or when one stands flush on a small patch of the other's face
(a post on a disc); components without an inside join the nearest part (`flowgen.sdf`). Each
control point, band point and mesh face carries its group id, for group-restricted skinning
(:func:`flowgen.skinning.bind`) and ARAP.

The paper does not state K. SC-GS (the paper's reference for control points) uses 512; the
``paper`` preset takes 512 coarse and 2048 fine, the ``cpu`` preset 48 and 192.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
import trimesh
from scipy.spatial import cKDTree

from flowgen.sdf import (
    SignedDistanceField,
    mesh_field,
    point_cloud_field,
    raycasting_scene,
    voxel_centres,
)

__all__ = [
    "ControlConfig",
    "ControlLevelInit",
    "ObjectControls",
    "SignedDistanceField",
    "cpu_config",
    "farthest_point_kmeans",
    "find_voxel_size",
    "mesh_field",
    "neighbour_scales",
    "object_controls",
    "paper_config",
    "point_cloud_field",
    "point_groups",
    "voxel_centres",
]


@dataclass(frozen=True)
class ControlConfig:
    """Control-point and ARAP-point-set initialisation."""

    target_surface_points: int = 7500
    """|S|: near-surface voxel centres the voxel size is searched for (paper: 7500)."""
    tolerance: float = 0.03
    """Accepted relative deviation of |S| from the target."""
    band: float = 1.0
    """Near-surface threshold delta as a multiple of the voxel size s (|phi| < band * s)."""
    num_controls: tuple[int, ...] = (48, 192)
    """Control points per level, coarse first."""
    min_interior_per_control: int = 8
    """A part is refined until it has this many interior centres per control point."""
    max_interior_refinements: int = 3
    """Halvings of s allowed when sampling the interior of thin parts."""
    kmeans_iterations: int = 30
    """Lloyd iterations after farthest point sampling."""
    max_search_steps: int = 30
    """Bound on SDF evaluations in the voxel-size search."""
    max_grid_points: int = 20_000_000
    """Refuse grids larger than this (an object far too big for its units)."""
    sign_rays: int = 3
    """Rays voting on the inside/outside sign per query (odd; meshes only)."""
    scale_neighbours: int = 3
    """A control's scale is the mean distance to this many nearest controls (paper: 3)."""
    seed: int = 0
    """Seed of the farthest-point start and k-means."""


def paper_config() -> ControlConfig:
    """Paper settings (K is not given in the paper: 512 coarse as in SC-GS, 4x fine)."""
    return ControlConfig(num_controls=(512, 2048))


def cpu_config() -> ControlConfig:
    """A CPU-sized setting: fewer control points, fewer ARAP points."""
    return ControlConfig(target_surface_points=3000, num_controls=(48, 192))


@dataclass(frozen=True)
class ControlLevelInit:
    """One level of control points (numpy; see :func:`flowgen.skinning.control_level`).

    Attributes:
        centres: (K, 3) float32 positions, inside the object.
        scales: (K,) float32 mean distance to the nearest control points.
        group: (K,) int64 part id.
    """

    centres: np.ndarray
    scales: np.ndarray
    group: np.ndarray


@dataclass(frozen=True)
class ObjectControls:
    """Everything :func:`object_controls` derives from one object.

    Attributes:
        voxel_size: s found by the search.
        band: delta = config.band * s.
        surface_points: (M, 3) float32 near-surface voxel centres S (the ARAP set).
        surface_group: (M,) int64 part id of each point of S.
        interior_points: (I, 3) float32 interior centres the controls were sampled from.
        levels: one ControlLevelInit per level, coarse first.
        num_parts: number of parts (groups).
        face_group: (F,) part id per mesh face, or None for point clouds.
        search_steps: SDF grid evaluations the voxel-size search took.
    """

    voxel_size: float
    band: float
    surface_points: np.ndarray
    surface_group: np.ndarray
    interior_points: np.ndarray
    levels: tuple[ControlLevelInit, ...]
    num_parts: int
    face_group: np.ndarray | None
    search_steps: int




# --------------------------------------------------------------------------- voxel grid


@dataclass(frozen=True)
class _Grid:
    size: float
    centres: np.ndarray  # (G, 3)
    phi: np.ndarray  # (G,)
    part: np.ndarray  # (G,)
    band_count: int


def _evaluate_grid(field: SignedDistanceField, size: float, config: ControlConfig) -> _Grid:
    band = config.band * size
    centres = voxel_centres(field.bounds, size, band + size, config.max_grid_points)
    phi, part = field.evaluate(centres)
    return _Grid(size, centres, phi, part, int((np.abs(phi) < band).sum()))


def find_voxel_size(field: SignedDistanceField, config: ControlConfig) -> tuple[_Grid, int]:
    """The grid whose near-surface count is closest to the target, and the evaluations used.

    The band count behaves like ``2 * band * area / s^2``: each step proposes
    ``s * sqrt(count / target)``, falling back to the geometric mean of the bracket when the
    proposal leaves it, and stops within ``tolerance``. The count is not monotone in ``s``
    for flat faces aligned with the grid (layers of centres enter the band together), so
    when the bracket collapses without success a few sizes around it are tried and the
    closest count wins.
    """
    target = config.target_surface_points
    size = float(np.sqrt(2 * config.band * max(field.area, 1e-12) / target))
    lo, hi = 0.0, np.inf  # sizes known to give too many / too few points
    best: _Grid | None = None
    steps = 0

    def closer(grid: _Grid) -> bool:
        return best is None or abs(grid.band_count - target) < abs(best.band_count - target)

    while steps < config.max_search_steps:
        grid = _evaluate_grid(field, size, config)
        steps += 1
        best = grid if closer(grid) else best
        if abs(grid.band_count - target) <= config.tolerance * target:
            return grid, steps
        if grid.band_count > target:
            lo = max(lo, size)
        else:
            hi = min(hi, size)
        if lo > 0 and hi / lo < 1.002:
            break
        proposal = size * np.sqrt(max(grid.band_count, 1) / target)
        if not lo < proposal < hi:  # keep inside the bracket
            proposal = np.sqrt(lo * hi) if lo > 0 and np.isfinite(hi) else (lo + size) / 2
        size = float(proposal)
    assert best is not None
    for size in np.geomspace(best.size * 0.93, best.size * 1.07, 8):
        done = abs(best.band_count - target) <= config.tolerance * target
        if done or steps >= config.max_search_steps:
            break
        grid = _evaluate_grid(field, float(size), config)
        steps += 1
        best = grid if closer(grid) else best
    return best, steps


# --------------------------------------------------------------------------- sampling


def farthest_point_kmeans(
    points: np.ndarray, num_centres: int, iterations: int, seed: int
) -> np.ndarray:
    """(K, 3) k-means centres of (P, 3) points, seeded by farthest point sampling.

    Lloyd's iterations with a KD-tree assignment (O(P log K) per step); stops early when
    no assignment changes. An emptied cluster keeps its previous centre.
    """
    import fpsample

    num_centres = min(num_centres, len(points))
    if num_centres == len(points):
        return points.copy()
    start = int(np.random.default_rng(seed).integers(len(points)))
    height = int(min(7, np.floor(np.log2(len(points)))))
    seeds = fpsample.bucket_fps_kdline_sampling(points, num_centres, h=height, start_idx=start)
    centres = points[np.asarray(seeds, dtype=np.int64)].astype(np.float64)
    assignment = np.full(len(points), -1)
    for _ in range(iterations):
        _, new_assignment = cKDTree(centres).query(points)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        counts = np.bincount(assignment, minlength=num_centres)
        sums = np.stack(
            [np.bincount(assignment, points[:, d], minlength=num_centres) for d in range(3)], 1
        )
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def neighbour_scales(centres: np.ndarray, neighbours: int = 3) -> np.ndarray:
    """(K,) mean distance of each centre to its ``neighbours`` nearest other centres."""
    if len(centres) < 2:
        return np.ones(len(centres))
    k = min(neighbours, len(centres) - 1)
    dist, _ = cKDTree(centres).query(centres, k=k + 1)
    return dist[:, 1:].mean(axis=1)


def _interior_of_part(
    field: SignedDistanceField, grid: _Grid, part: int, needed: int, config: ControlConfig
) -> tuple[np.ndarray, float]:
    """Interior centres of one part and their spacing, refining the grid for thin parts.

    Halves the voxel size over the part's box until it holds ``needed`` interior centres
    (at most ``max_interior_refinements`` times). A part with no inside (an open shell)
    returns its band points instead.
    """
    size = grid.size
    inside = grid.centres[(grid.phi <= 0) & (grid.part == part)]
    members = grid.centres[(grid.part == part) & (np.abs(grid.phi) < config.band * grid.size)]
    for _ in range(config.max_interior_refinements):
        if len(inside) >= needed or len(members) == 0:
            break
        size /= 2
        bounds = np.stack((members.min(0), members.max(0)))
        centres = voxel_centres(bounds, size, size, config.max_grid_points)
        phi, owner = field.evaluate(centres)
        inside = centres[(phi <= 0) & (owner == part)]
    if len(inside) == 0:
        return members, grid.size
    return inside, size


def object_controls(
    source: trimesh.Trimesh | SignedDistanceField, config: ControlConfig = ControlConfig()
) -> ObjectControls:
    """Voxel size, the near-surface set S and the control points of every level.

    Control points are split between parts in proportion to their interior volume (what
    k-means over all interior centres would do), at least one per part.

    Args:
        source: a triangle mesh (metres), or a field from :func:`point_cloud_field`.
        config: see ControlConfig.
    """
    field = mesh_field(source, config.sign_rays) if isinstance(source, trimesh.Trimesh) else source
    grid, steps = find_voxel_size(field, config)
    band = config.band * grid.size
    near = np.abs(grid.phi) < band
    parts = range(field.num_parts)
    # Pass 1: enough interior to measure every part's volume; pass 2: enough per control.
    needed = config.min_interior_per_control
    first = [_interior_of_part(field, grid, p, needed, config) for p in parts]
    volumes = np.array([len(pts) * size**3 for pts, size in first])
    most = _split_count(max(config.num_controls), volumes)
    interiors = [
        _interior_of_part(field, grid, p, config.min_interior_per_control * most[p], config)[0]
        for p in parts
    ]
    levels = []
    for level, total in enumerate(config.num_controls):
        shares = _split_count(total, volumes)
        centres, groups = [], []
        for part, (pts, share) in enumerate(zip(interiors, shares)):
            found = farthest_point_kmeans(pts, share, config.kmeans_iterations, config.seed + level)
            centres.append(_snap_inside(field, part, found, pts))
            groups.append(np.full(len(found), part, dtype=np.int64))
        all_centres = np.concatenate(centres)
        levels.append(
            ControlLevelInit(
                centres=all_centres.astype(np.float32),
                scales=neighbour_scales(all_centres, config.scale_neighbours).astype(np.float32),
                group=np.concatenate(groups),
            )
        )
    return ObjectControls(
        voxel_size=grid.size,
        band=band,
        surface_points=grid.centres[near].astype(np.float32),
        surface_group=grid.part[near].astype(np.int64),
        interior_points=np.concatenate(interiors).astype(np.float32),
        levels=tuple(levels),
        num_parts=field.num_parts,
        face_group=field.face_group,
        search_steps=steps,
    )


def _split_count(total: int, volumes: np.ndarray) -> list[int]:
    """Split ``total`` between parts in proportion to volume, at least one each."""
    if volumes.sum() <= 0:
        volumes = np.ones_like(volumes)
    raw = total * volumes / volumes.sum()
    shares = np.maximum(np.floor(raw).astype(int), 1)
    for i in np.argsort(raw - np.floor(raw))[::-1][: max(total - int(shares.sum()), 0)]:
        shares[i] += 1
    return shares.tolist()


def _snap_inside(
    field: SignedDistanceField, part: int, centres: np.ndarray, interior: np.ndarray
) -> np.ndarray:
    """Move centres that k-means put outside their part onto the nearest interior centre."""
    phi, owner = field.evaluate(centres)
    outside = (phi > 0) | (owner != part)
    if outside.any():
        _, idx = cKDTree(interior).query(centres[outside])
        centres = centres.copy()
        centres[outside] = interior[idx]
    return centres


def point_groups(
    controls: ObjectControls, points: np.ndarray, mesh: trimesh.Trimesh | None = None
) -> np.ndarray:
    """(N,) part id of arbitrary points (Gaussian means, vertices, contacts).

    With the mesh the controls were made from: the part of the closest face (exact at
    hinges). Otherwise: the part of the nearest near-surface point.
    """
    points = np.asarray(points, dtype=np.float64)
    if mesh is not None and controls.face_group is not None:
        scene = raycasting_scene(mesh.vertices, mesh.faces)
        query = o3d.core.Tensor(points.astype(np.float32))
        face = scene.compute_closest_points(query)["primitive_ids"].numpy().astype(np.int64)
        return controls.face_group[face]
    _, idx = cKDTree(controls.surface_points).query(points)
    return controls.surface_group[idx]
