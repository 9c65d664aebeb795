"""The cloth: a square grid of soft-body nodes, its OBJ (for ``loadSoftBody``) and its
patch texture image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from sim.assets.common import cache_dir, obj_text, spec_key, write_once


@dataclass(frozen=True)
class ClothSpec:
    """A square cloth: a regular grid of ``resolution`` x ``resolution`` nodes in the z = 0 plane.

    Node ``j * resolution + i`` sits at (x_i, y_j), x and y running from -size/2 to size/2:
    node 0 is the (-, -) corner and node ``resolution**2 - 1`` the opposite (+, +) corner.
    """

    size: float = 0.24
    resolution: int = 9
    mass: float = 0.05
    texture_seed: int | None = None
    """Seed of the coloured patches of its texture image (None: plain colour)."""


CLOTH_TEXTURE_SIZE = 64
"""Side of the cloth's square texture image, pixels."""


def cloth_grid(spec: ClothSpec) -> trimesh.Trimesh:
    """The cloth's rest mesh (vertices in node order) in its frame."""
    n = spec.resolution
    xs = np.linspace(-spec.size / 2, spec.size / 2, n)
    gx, gy = np.meshgrid(xs, xs)  # gx[j, i] = xs[i], gy[j, i] = xs[j]
    verts = np.stack([gx.ravel(), gy.ravel(), np.zeros(n * n)], 1)
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a = j * n + i
            faces += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    return trimesh.Trimesh(verts, np.asarray(faces), process=False)


def cloth_corners(spec: ClothSpec) -> tuple[int, int]:
    """Node indices of the (-, -) corner and the opposite (+, +) corner."""
    return 0, spec.resolution**2 - 1


def cloth_uv(spec: ClothSpec) -> np.ndarray:
    """(M, 2) texture coordinates of the cloth's M nodes: (x, y) scaled to [0, 1]."""
    return (cloth_grid(spec).vertices[:, :2] + spec.size / 2) / spec.size


def cloth_texture(spec: ClothSpec, rgb: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8 texture image of a textured cloth (H = W = `CLOTH_TEXTURE_SIZE`): 10
    Voronoi patches around ``rgb`` (each channel +-0.3), drawn from the spec's texture seed."""
    assert spec.texture_seed is not None
    rng = np.random.default_rng([spec.texture_seed, 1])
    n = CLOTH_TEXTURE_SIZE
    seeds = rng.random((10, 2)) * n
    palette = np.clip(np.asarray(rgb[:3]) + rng.uniform(-0.3, 0.3, (10, 3)), 0.05, 0.95)
    rows, cols = np.mgrid[0:n, 0:n] + 0.5
    cell = np.argmin((cols[..., None] - seeds[:, 0]) ** 2 + (rows[..., None] - seeds[:, 1]) ** 2, axis=-1)
    return np.round(palette[cell] * 255).astype(np.uint8)


def texture_colors(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1] of ``image`` at texture coordinates ``uv`` (N, 2), nearest pixel,
    OpenGL convention (v = 0 is the image's bottom row)."""
    h, w = image.shape[:2]
    col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)
    return image[row, col, :3].astype(np.float64) / 255


def write_cloth(spec: ClothSpec, root: str | os.PathLike[str] | None = None) -> Path:
    """Write the cloth grid OBJ (for ``loadSoftBody``; with texture coordinates when the spec
    is textured) and return its path."""
    mesh = cloth_grid(spec)
    text = obj_text(mesh)
    if spec.texture_seed is not None:  # the same vertices and faces, each corner with its vt
        lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
        lines += [f"vt {a:.6f} {b:.6f}" for a, b in cloth_uv(spec)]
        lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in mesh.faces]
        text = "\n".join(lines) + "\n"
    return write_once(cache_dir(root) / f"{spec_key('cloth', spec)}.obj", text)


def write_cloth_texture(spec: ClothSpec, rgb: tuple[float, ...], root: str | os.PathLike[str] | None = None) -> Path:
    """Write the textured cloth's image as a PNG (for ``loadTexture``) and return its path."""
    import io

    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, cloth_texture(spec, rgb), extension=".png")
    return write_once(cache_dir(root) / f"{spec_key('cloth', spec)}_{_rgb_key(rgb)}.png", buf.getvalue())


def _rgb_key(rgb: tuple[float, ...]) -> str:
    return "".join(f"{round(c * 255):02x}" for c in rgb[:3])
