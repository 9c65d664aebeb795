"""Scenes: named objects from a scan, in metres, z up (DESIGN.md §3).

A `SceneObject` is a mesh, a point cloud or a set of 3D Gaussians (a 3DGS scan). Loading and
segmentation live in `chord_robot.scan` (formats) and `flowgen.segment` (geometry); this
module is the contract every package shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from chord_robot.errors import ScanError

KINDS = ("mesh", "points", "gaussians")


@dataclass(frozen=True)
class GaussianAttrs:
    """3D Gaussian Splatting attributes as stored in an INRIA-layout PLY.

    Attributes:
        scales: (N, 3) log scales (``scale_0..2``).
        rotations: (N, 4) quaternions wxyz, not necessarily normalised (``rot_0..3``).
        opacities: (N,) opacity logits (``opacity``).
        sh_dc: (N, 3) degree-0 SH coefficients (``f_dc_0..2``).
        sh_rest: (N, M) higher SH coefficients (``f_rest_*``), M may be 0.
        sh_frame: (3, 3) rotation from the file's frame to the scene's (an ``--up y`` scan's
            turn): the SH are functions of directions in the file's frame.
    """

    scales: np.ndarray
    rotations: np.ndarray
    opacities: np.ndarray
    sh_dc: np.ndarray
    sh_rest: np.ndarray
    sh_frame: np.ndarray = field(default_factory=lambda: np.eye(3))

    def subset(self, idx: np.ndarray) -> GaussianAttrs:
        return GaussianAttrs(*(getattr(self, f)[idx] for f in ("scales", "rotations", "opacities", "sh_dc", "sh_rest")),
                             sh_frame=self.sh_frame)


SH_C0 = 0.28209479177387814
DEFAULT_GREY = 0.6
"""Colour of a mesh or point without colours."""


@dataclass(frozen=True)
class MeshTexture:
    """Texture images of a mesh, looked up through per-vertex UV coordinates.

    UVs follow trimesh's convention (u right, v up; texel (row, col) of an H x W image at
    ((1 - v) (H - 1), u (W - 1))), and wrap around outside [0, 1].

    Attributes:
        uv: (N, 2) texture coordinates per vertex.
        image_id: (N,) int64 index into ``images`` of each vertex's texture, -1 for none.
        images: RGB images (H, W, 3) uint8.
    """

    uv: np.ndarray
    image_id: np.ndarray
    images: tuple[np.ndarray, ...]

    def subset(self, idx: np.ndarray) -> MeshTexture:
        return MeshTexture(self.uv[idx], self.image_id[idx], self.images)

    def sample(self, image: int, uv: np.ndarray) -> np.ndarray:
        """(N, 3) bilinear colours in [0, 1] of ``images[image]`` at (N, 2) ``uv``."""
        tex = self.images[image]
        h, w = tex.shape[:2]
        x = np.mod(uv[:, 0], 1.0) * (w - 1)
        y = (1.0 - np.mod(uv[:, 1], 1.0)) * (h - 1)
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        top = (1 - fx) * tex[y0, x0] + fx * tex[y0, x1]
        bottom = (1 - fx) * tex[y1, x0] + fx * tex[y1, x1]
        return ((1 - fy) * top + fy * bottom) / 255.0


def robust_bounds(points: np.ndarray, neighbours: int = 64, max_points: int = 30_000) -> np.ndarray:
    """(2, 3) axis-aligned bounds of a noisy sampled surface (a scanned point cloud).

    Min and max of raw scan points overstate a size by the noise on each side (a 10 cm mug
    with 1.5 mm noise: 8-10% too large) and by any stray point. Here stray points (whose
    ``neighbours``-th nearest neighbour is farther than 8 robust deviations above the median)
    are dropped, and every other point is projected onto the plane fitted to its neighbours
    (the surface's local PCA plane), which removes the noise along the surface normal; the
    bounds are those of the projected points (the mug: within 0.6-3.2%). Clouds larger than
    ``max_points`` are subsampled (seeded) first; small ones use plain min and max.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(0).choice(len(pts), max_points, replace=False)]
    if len(pts) < 2 * neighbours:
        return np.stack([pts.min(0), pts.max(0)])
    from scipy.spatial import cKDTree

    dist, index = cKDTree(pts).query(pts, k=neighbours)
    reach = dist[:, -1]
    median = float(np.median(reach))
    keep = reach <= median + 8 * 1.4826 * float(np.median(np.abs(reach - median)))
    near = pts[index]  # (N, k, 3)
    centre = near.mean(1)
    spread = near - centre[:, None]
    normal = np.linalg.eigh(np.einsum("nki,nkj->nij", spread, spread))[1][:, :, 0]  # least-spread axis
    projected = pts - np.einsum("ni,ni->n", pts - centre, normal)[:, None] * normal
    projected = projected[keep]
    return np.stack([projected.min(0), projected.max(0)])


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene.

    Attributes:
        name: unique name ("table", "lamp", "object_0", ...).
        kind: "mesh", "points" or "gaussians".
        points: (N, 3) vertices, points or Gaussian means, metres, z up.
        colors: (N, 3) RGB in [0, 1], or None.
        faces: (F, 3) triangles into ``points`` for meshes, else None.
        gaussians: Gaussian attributes for kind "gaussians", else None.
        static: True for the support (table) and anything that must not move.
        texture: for a textured mesh, its texture images and per-vertex UVs (``colors`` then
            holds the texture sampled at the vertices), else None.
    """

    name: str
    kind: str
    points: np.ndarray
    colors: np.ndarray | None = None
    faces: np.ndarray | None = None
    gaussians: GaussianAttrs | None = None
    static: bool = False
    texture: MeshTexture | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScanError(f"object {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
            raise ScanError(f"object {self.name!r}: points must be (N, 3) with N > 0, got {pts.shape}")
        object.__setattr__(self, "points", pts)
        if self.colors is not None:
            object.__setattr__(self, "colors", np.clip(np.asarray(self.colors, np.float64), 0.0, 1.0))
        if (self.faces is None) != (self.kind != "mesh"):
            raise ScanError(f"object {self.name!r}: a mesh needs faces and only a mesh has them")
        if self.texture is not None and (self.kind != "mesh" or self.texture.uv.shape != (len(pts), 2)):
            raise ScanError(f"object {self.name!r}: a texture needs a mesh and one UV per vertex")

    def colors_at(self, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
        """(N, 3) colours of a mesh at points given by triangle ids (N,) and barycentric weights
        (N, 3): the texture where the triangle has one, else interpolated vertex colours, else grey."""
        assert self.faces is not None and bary.shape == (len(face), 3), bary.shape
        corners = self.faces[face]  # (N, 3)
        if self.colors is None:
            out = np.full((len(face), 3), DEFAULT_GREY)
        else:
            out = np.einsum("nk,nkc->nc", bary, self.colors[corners])
        if self.texture is not None:
            image = self.texture.image_id[corners[:, 0]]
            uv = np.einsum("nk,nkc->nc", bary, self.texture.uv[corners])
            for i in np.unique(image[image >= 0]):
                rows = image == i
                out[rows] = self.texture.sample(int(i), uv[rows])
        return out

    @cached_property
    def bounds(self) -> np.ndarray:
        """(2, 3) axis-aligned min and max corners: a mesh's vertices' exactly; a point cloud's
        or a 3DGS scan's robust to its noise and stray points (`robust_bounds`)."""
        if self.kind == "mesh":
            return np.stack([self.points.min(0), self.points.max(0)])
        return robust_bounds(self.points)

    @property
    def center(self) -> np.ndarray:
        """(3,) centre of the axis-aligned bounds."""
        return self.bounds.mean(0)

    @property
    def extent(self) -> np.ndarray:
        """(3,) size of the axis-aligned bounds."""
        b = self.bounds
        return b[1] - b[0]

    def surface_points(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, 3) points on the object: area-sampled for meshes, subsampled otherwise."""
        if self.kind == "mesh":
            tri = self.points[self.faces]  # (F, 3, 3)
            area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
            face = rng.choice(len(tri), count, p=area / area.sum()) if area.sum() > 0 else rng.integers(0, len(tri), count)
            u, v = rng.random((2, count))
            flip = u + v > 1
            u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
            t = tri[face]
            return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
        idx = rng.choice(len(self.points), count, replace=len(self.points) < count)
        return self.points[idx]


@dataclass(frozen=True)
class Scene:
    """Named objects of a scanned scene, metres, z up.

    Attributes:
        objects: name -> object, in a stable order (static support first, then by size).
        source: the path the scene was loaded from.
        notes: messages for the user gathered while loading (downsampling, conversions).
    """

    objects: dict[str, SceneObject]
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.objects:
            raise ScanError(f"{self.source or 'scene'}: no objects found")
        for name, obj in self.objects.items():
            if name != obj.name:
                raise ScanError(f"scene key {name!r} differs from object name {obj.name!r}")

    def movable(self) -> dict[str, SceneObject]:
        """Objects not flagged static."""
        return {k: v for k, v in self.objects.items() if not v.static}

    def summary(self) -> dict:
        """The JSON of `chord-robot scene --json` (issue #2)."""
        return {
            "units": "m",
            "up": "z",
            "objects": [
                {
                    "name": o.name,
                    "kind": o.kind,
                    "num_points": len(o.points),
                    "center": [round(float(v), 6) for v in o.center],
                    "extent": [round(float(v), 6) for v in o.extent],
                    "static": bool(o.static),
                }
                for o in self.objects.values()
            ],
        }
