"""3D Gaussians from scene objects (DESIGN.md §4): a 3DGS scan directly, a coloured point
cloud, or a mesh by surface sampling (colours from its texture or vertex colours; the model
then fits them to renders of the mesh, `flowgen.mesh_fit`).

Points and meshes become flat, surface-aligned Gaussians (discs): two tangential axes of about
the sample spacing and a thin normal axis: isotropic Gaussians on a tilted surface shift the
rendered texture as the surface turns; discs do not (docs/flowgen-notes.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from chord_robot.flow import matrix_to_quat
from chord_robot.scene import SH_C0, SceneObject
from flowgen.sh import padded_sh, sh_degree, sh_turn


@dataclass(frozen=True)
class Gaussians:
    """A set of 3D Gaussians at rest (frame 0).

    Attributes:
        means: (N, 3) centres, metres.
        quats: (N, 4) wxyz orientations (normalised).
        log_scales: (N, 3) log standard deviations along the Gaussian's own axes.
        opacity_logits: (N,) logit of the opacity.
        colors: (N, 3) RGB in [0, 1].
        normals: (N, 3) unit surface normals, or None (3DGS scans).
        group: (N,) int64 part (mesh connected component) id; one part is all zeros.
        sh_rest: (N, K, 3) a 3DGS scan's higher spherical-harmonic coefficients (K = 3, 8 or
            15 for degree 1-3; `flowgen.sh`), or None (view-independent colour).
    """

    means: Tensor
    quats: Tensor
    log_scales: Tensor
    opacity_logits: Tensor
    colors: Tensor
    normals: Tensor | None
    group: Tensor
    sh_rest: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        assert self.means.shape == (n, 3) and self.quats.shape == (n, 4), (self.means.shape, self.quats.shape)
        assert self.log_scales.shape == (n, 3) and self.opacity_logits.shape == (n,), self.log_scales.shape
        assert self.colors.shape == (n, 3) and self.group.shape == (n,), (self.colors.shape, self.group.shape)
        assert self.normals is None or self.normals.shape == (n, 3)
        assert self.sh_rest is None or (self.sh_rest.ndim == 3 and self.sh_rest.shape[0] == n
                                        and self.sh_rest.shape[2] == 3), self.sh_rest.shape

    @property
    def num(self) -> int:
        return int(self.means.shape[0])

    def subset(self, idx: Tensor) -> Gaussians:
        n = None if self.normals is None else self.normals[idx]
        sh = None if self.sh_rest is None else self.sh_rest[idx]
        return Gaussians(self.means[idx], self.quats[idx], self.log_scales[idx], self.opacity_logits[idx],
                         self.colors[idx], n, self.group[idx], sh)

    @staticmethod
    def concat(parts: list[Gaussians]) -> Gaussians:
        """Concatenate; normals kept only if every part has them; SH coefficients zero-padded
        to the largest degree (none if no part has them)."""
        normals = None if any(p.normals is None for p in parts) else torch.cat([p.normals for p in parts])
        sh = padded_sh([(p.sh_rest, p.num) for p in parts])
        return Gaussians(*(torch.cat([getattr(p, f) for p in parts]) for f in
                           ("means", "quats", "log_scales", "opacity_logits", "colors")), normals,
                         torch.cat([p.group for p in parts]), sh)


def from_object(obj: SceneObject, count: int, rng: np.random.Generator, opacity: float = 0.95,
                thickness: float = 0.1, edge_factor: float = 0.35) -> Gaussians:
    """Gaussians for one scene object.

    Args:
        obj: the object (mesh, points or gaussians).
        count: number of Gaussians for meshes and the cap for points/3DGS (subsampled above it).
        rng: random generator (surface sampling, subsampling).
        opacity: initial opacity of sampled Gaussians.
        thickness: normal-axis scale as a fraction of the tangential scale (flat discs).
        edge_factor: meshes only - a disc's tangential scale is at most this times its distance
            to the nearest crease (dihedral angle > 30 degrees) or open border, so discs do not
            spill past the edges: a spill makes the rendered object too big, which the
            photometric loss then corrects by pushing it away from the camera.
    """
    if obj.kind == "gaussians":
        return _from_3dgs(obj, count, rng)
    if obj.kind == "mesh":
        pts, normals, colors, group = _sample_mesh(obj, count, rng)
    else:
        idx = rng.choice(len(obj.points), count, replace=False) if len(obj.points) > count else np.arange(len(obj.points))
        pts = obj.points[idx]
        normals = estimate_normals(pts)
        colors = obj.colors[idx] if obj.colors is not None else np.full((len(pts), 3), 0.6)
        group = np.zeros(len(pts), np.int64)
    spacing = _spacing(pts)
    tangential = 0.75 * spacing
    if obj.kind == "mesh" and edge_factor > 0:
        assert obj.faces is not None
        edge = crease_distance(obj.points, obj.faces, pts, float(np.median(spacing)) / 4)
        tangential = np.clip(edge_factor * edge, 0.2 * spacing, tangential)
    scales = np.stack([tangential, tangential, np.maximum(thickness * tangential, 1e-5)], 1)
    quats = matrix_to_quat(_frames_from_normals(normals))
    logit = float(np.log(opacity / (1 - opacity)))
    return _tensors(pts, quats, np.log(scales), np.full(len(pts), logit), colors, normals, group)


def _from_3dgs(obj: SceneObject, count: int, rng: np.random.Generator) -> Gaussians:
    g = obj.gaussians
    assert g is not None
    idx = rng.choice(len(obj.points), count, replace=False) if len(obj.points) > count else np.arange(len(obj.points))
    q = g.rotations[idx]
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    colors = np.clip(0.5 + SH_C0 * g.sh_dc[idx], 0, 1)
    out = _tensors(obj.points[idx], q, g.scales[idx], g.opacities[idx], colors, None, np.zeros(len(idx), np.int64))
    if g.sh_rest.shape[1] == 0 or not g.sh_rest[idx].any():
        return out  # no view dependence (many exporters write zeros)
    # INRIA layout: f_rest is channel-major (every red coefficient, then green, then blue)
    rest = torch.as_tensor(g.sh_rest[idx].reshape(len(idx), 3, -1).transpose(0, 2, 1), dtype=torch.float64)
    if not np.allclose(g.sh_frame, np.eye(3)):
        rest = torch.einsum("kj,njc->nkc", sh_turn(torch.as_tensor(g.sh_frame), sh_degree(rest.shape[1])), rest)
    return replace(out, sh_rest=rest.float().contiguous())  # (N, K, 3)


def _tensors(means, quats, log_scales, logits, colors, normals, group) -> Gaussians:
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    return Gaussians(f(means), f(quats), f(log_scales), f(logits), f(colors).clamp(0, 1),
                     None if normals is None else f(normals), torch.as_tensor(group, dtype=torch.int64))


def _sample_mesh(obj: SceneObject, count: int, rng: np.random.Generator):
    """Area-weighted samples with face normals, the mesh's colours (texture or interpolated
    vertex colours) and part ids."""
    assert obj.faces is not None
    v, f = obj.points, obj.faces
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    face = rng.choice(len(f), count, p=area / area.sum())
    u, w = rng.random((2, count))
    flip = u + w > 1
    u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
    bary = np.stack([1 - u - w, u, w], 1)
    pts = np.einsum("nk,nkd->nd", bary, tri[face])
    normals = cross[face] / np.maximum(2 * area[face, None], 1e-12)
    return pts, normals, obj.colors_at(face, bary), mesh_components(len(v), f)[f[face, 0]]


def crease_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, step: float,
                    angle_deg: float = 30.0) -> np.ndarray:
    """(N,) distance of points to the nearest sharp or open edge of a mesh (inf if none).

    Edges are sampled every ``step``, so distances are accurate to about ``step / 2``.
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    sharp = mesh.face_adjacency_edges[mesh.face_adjacency_angles > np.radians(angle_deg)]
    unique, counts = np.unique(np.sort(mesh.edges, axis=1), axis=0, return_counts=True)
    edges = np.concatenate([sharp, unique[counts == 1]])
    if len(edges) == 0:
        return np.full(len(points), np.inf)
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / max(step, 1e-6)).astype(int), 1)
    t = np.concatenate([np.linspace(0, 1, k + 1) for k in n])
    seg = np.repeat(np.arange(len(edges)), n + 1)
    samples = a[seg] + t[:, None] * (b - a)[seg]
    return cKDTree(samples).query(points)[0]


def mesh_components(num_vertices: int, faces: np.ndarray) -> np.ndarray:
    """(V,) connected-component id of each vertex, components ordered by first vertex."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(num_vertices, num_vertices))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def estimate_normals(pts: np.ndarray, k: int = 12) -> np.ndarray:
    """(N, 3) unit normals by PCA of the k nearest neighbours, oriented away from the centroid."""
    k = min(k, len(pts))
    _, nn = cKDTree(pts).query(pts, k=k)
    nb = pts[nn] - pts[nn].mean(1, keepdims=True)
    _, _, vt = np.linalg.svd(nb, full_matrices=False)
    n = vt[:, 2]
    outward = pts - pts.mean(0)
    return n * np.where((n * outward).sum(1, keepdims=True) < 0, -1.0, 1.0)


def _spacing(pts: np.ndarray) -> np.ndarray:
    """(N,) mean distance to the 4 nearest neighbours (at least 0.5 mm)."""
    k = min(5, len(pts))
    if k < 2:
        return np.full(len(pts), 0.005)
    d, _ = cKDTree(pts).query(pts, k=k)
    return np.maximum(d[:, 1:].mean(1), 5e-4)


def _frames_from_normals(normals: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations whose third column is the normal."""
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(helper, n)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    return np.stack([t1, t2, n], 2)


def with_colors(g: Gaussians, colors: Tensor) -> Gaussians:
    """The same Gaussians with new (N, 3) colours."""
    return replace(g, colors=colors)
