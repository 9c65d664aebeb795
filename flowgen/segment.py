"""Geometric segmentation of an unlabelled scan: support plane by RANSAC, objects by DBSCAN.

The dominant near-horizontal plane becomes the static object ``table`` (with everything
below it: legs, floor clutter); the points above it are clustered by DBSCAN into
``object_0..k``, ordered by size (largest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from chord_robot.errors import ScanError
from chord_robot.scan import RawScan, ordered_scene, subset_object
from chord_robot.scene import Scene


@dataclass(frozen=True)
class SegmentConfig:
    """Geometric segmentation settings (metres)."""

    plane_threshold: float = 0.006
    """Points within this distance of the support plane belong to it."""
    ransac_iterations: int = 400
    """RANSAC plane hypotheses."""
    min_up_cosine: float = 0.8
    """A support plane's normal must be within ~37 degrees of +z."""
    max_working_points: int = 60_000
    """Clustering runs on at most this many points (voxel-subsampled); the rest follow their nearest."""
    cluster_eps: float | None = None
    """DBSCAN radius; None picks 4x the median nearest-neighbour spacing (at least 1 cm)."""
    min_cluster_fraction: float = 0.01
    """Clusters smaller than this fraction of the points above the plane are dropped as noise."""
    min_cluster_points: int = 20
    """...and so are clusters with fewer points than this."""
    mesh_samples: int = 60_000
    """Surface samples used to segment a mesh (faces follow their centroid's nearest sample)."""
    seed: int = 0
    """Seed of RANSAC and subsampling."""


def segment_scan(raw: RawScan, source: str = "", config: SegmentConfig = SegmentConfig()) -> Scene:
    """Segment an unlabelled scan into ``table`` and ``object_0..k``.

    Args:
        raw: a scan without labels, metres, z up.
    Returns:
        A Scene; raises ScanError when no support plane or no object above it is found.
    """
    rng = np.random.default_rng(config.seed)
    work = _working_points(raw, config, rng)  # (M, 3)
    normal, offset = _support_plane(work, config, rng, source)
    height = work @ normal - offset  # signed height above the plane
    above = height > config.plane_threshold
    if above.sum() < config.min_cluster_points:
        raise ScanError(
            f"{source}: no object found above the support plane (at z={offset / normal[2]:.3f} m); "
            "check the scan's up axis (is it y-up?) or label the objects"
        )
    labels = np.full(len(work), -1)  # -1 table, -2 dropped, >= 0 objects
    labels[above] = _cluster(work[above], config)
    if labels.max() < 0:
        raise ScanError(f"{source}: the points above the support plane form no cluster; label the objects")
    _return_bottoms(work, height, labels, config)
    # propagate working-point labels to every point (mesh: faces via centroids)
    tree = cKDTree(work)
    if raw.kind == "mesh":
        assert raw.faces is not None
        cent = raw.points[raw.faces].mean(1)
        face_label = labels[tree.query(cent)[1]]
        vert_label = np.full(len(raw.points), -2)
        for lab in np.unique(face_label):  # a vertex takes the label of a face it belongs to
            vert_label[raw.faces[face_label == lab].ravel()] = lab
        point_labels = vert_label
    else:
        point_labels = labels[tree.query(raw.points)[1]]
    objects = [subset_object(raw, point_labels == -1, "table", True)] if (point_labels == -1).any() else []
    for i, lab in enumerate(_by_size(point_labels)):
        objects.append(subset_object(raw, point_labels == lab, f"object_{i}", False))
    return ordered_scene(objects, source, raw.notes)


def _working_points(raw: RawScan, config: SegmentConfig, rng: np.random.Generator) -> np.ndarray:
    if raw.kind == "mesh":
        from chord_robot.scene import SceneObject

        mesh = SceneObject("scan", "mesh", raw.points, faces=raw.faces)
        return np.concatenate([mesh.surface_points(config.mesh_samples, rng), raw.points[: config.max_working_points]])
    pts = raw.points
    if len(pts) > config.max_working_points:
        pts = pts[rng.choice(len(pts), config.max_working_points, replace=False)]
    return pts


def _support_plane(pts: np.ndarray, config: SegmentConfig, rng: np.random.Generator, source: str) -> tuple[np.ndarray, float]:
    """RANSAC for the near-horizontal plane with the most inliers; returns (normal, offset)."""
    best, best_count = None, 0
    tri = pts[rng.integers(0, len(pts), (config.ransac_iterations, 3))]  # (I, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normals, axis=1)
    ok = norm > 1e-12
    normals[ok] /= norm[ok, None]
    normals *= np.sign(normals[:, 2:3] + 1e-12)  # point up
    ok &= normals[:, 2] >= config.min_up_cosine
    for n, p in zip(normals[ok], tri[ok, 0]):
        count = int((np.abs((pts - p) @ n) < config.plane_threshold).sum())
        if count > best_count:
            best, best_count = (n, float(n @ p)), count
    if best is None or best_count < 0.05 * len(pts):
        raise ScanError(f"{source}: no horizontal support plane found; check the scan's up axis or label the objects")
    # refine by least squares on the inliers
    n, d = best
    inl = pts[np.abs(pts @ n - d) < config.plane_threshold]
    c = inl.mean(0)
    _, _, vt = np.linalg.svd(inl - c, full_matrices=False)
    n2 = vt[2] * np.sign(vt[2, 2])
    return n2, float(n2 @ c)


def _return_bottoms(work: np.ndarray, height: np.ndarray, labels: np.ndarray, config: SegmentConfig) -> None:
    """Give an object back its bottom: plane-band points clearly above the plane, next to it.

    Points within ``plane_threshold`` of the plane went to the table; those higher than a third
    of it and adjacent to an object's points (within 4 point spacings, as DBSCAN links them) are that object's base.
    """
    obj = labels >= 0
    cand = np.flatnonzero((labels == -1) & (height > config.plane_threshold / 3))
    if len(cand) == 0:
        return
    tree = cKDTree(work[obj])
    spacing = float(np.median(tree.query(work[obj][:2000], k=2)[0][:, 1]))
    d, i = tree.query(work[cand], distance_upper_bound=max(4 * spacing, 1e-4))
    hit = np.isfinite(d)
    labels[cand[hit]] = labels[obj][i[hit]]


def _cluster(pts: np.ndarray, config: SegmentConfig) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    eps = config.cluster_eps
    if eps is None:
        d, _ = cKDTree(pts).query(pts[: min(len(pts), 5000)], k=2)
        eps = max(4.0 * float(np.median(d[:, 1])), 0.01)
    labels = DBSCAN(eps=eps, min_samples=5).fit_predict(pts)
    min_size = max(config.min_cluster_points, int(config.min_cluster_fraction * len(pts)))
    for lab in np.unique(labels[labels >= 0]):
        if (labels == lab).sum() < min_size:
            labels[labels == lab] = -2
    labels[labels == -1] = -2
    return labels


def _by_size(labels: np.ndarray) -> list[int]:
    labs, counts = np.unique(labels[labels >= 0], return_counts=True)
    return [int(v) for v in labs[np.argsort(-counts, kind="stable")]]
