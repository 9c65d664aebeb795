"""A background image for a video that came without one, from its first frame and the scan.

The video prior separates the moving objects from the rest of the picture best with an image of
the view without them (`flowgen.priors.video_io.fit_video`: the foreground mask, and the
objects composited over it). A user filming a scene, or a video model generating from a
rendered first frame, has no such image; but the scan is the scene at the first frame and the
camera is known, so every pixel of the first frame that the movable objects do not cover shows
the background as it is. The covered pixels (grown by a margin for edges and a scan a little off
the video) take the colour of the nearest uncovered pixel of the same surface (the scan's
static objects drawn from the camera say which surface, or none, lies behind each pixel, so a
table's edge runs on behind the objects): exact for a plain table, a smear on a textured one,
and either way far closer to the video's own look than the static scene rendered from the scan.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from chord_robot.camera import Camera

__all__ = ["background_from_first_frame", "silhouette", "surfaces"]


NEAR = 1e-3
"""Near plane (m, camera frame): triangles are clipped to it, points behind it are left out."""


def _clip_near(tri: np.ndarray) -> np.ndarray:
    """The polygon of triangle ``tri`` (3, 3) (camera frame) in front of the near plane
    (Sutherland-Hodgman against z >= `NEAR`); (0, 3) if none of it is."""
    out = []
    for a, b in zip(tri, np.roll(tri, -1, axis=0), strict=True):
        if a[2] >= NEAR:
            out.append(a)
        if (a[2] >= NEAR) != (b[2] >= NEAR):
            out.append(a + (b - a) * (NEAR - a[2]) / (b[2] - a[2]))
    return np.asarray(out).reshape(-1, 3)


def silhouette(parts: list[tuple[np.ndarray, np.ndarray | None]], camera: Camera, point_radius: float = 1.5,
               supersample: int = 4) -> np.ndarray:
    """(H, W) bool: the pixels of ``camera`` that the ``parts`` cover, occlusion ignored.

    Args:
        parts: (points (N, 3), faces (F, 3) or None) per object, world metres; a mesh's
            triangles are filled (clipped to the near plane) at ``supersample`` x the size and
            a pixel is covered when half of it is; points without faces are drawn as discs of
            ``point_radius`` pixels and the gaps between them closed.
        camera: the view (its width and height are the mask's).
    """
    from PIL import Image, ImageDraw

    w, h, s = camera.width, camera.height, supersample
    image = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(image)
    loose = np.zeros((h, w), bool)
    K = camera.K
    limit = 1e6  # PIL draws at integer coordinates; beyond this they would overflow

    def pixels(cam: np.ndarray, scale: int = s) -> np.ndarray:  # PIL samples at integer coordinates
        uv = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]  # centres at +0.5
        return np.clip(uv * scale - 0.5, -limit, limit)

    for points, faces in parts:
        p = np.asarray(points, dtype=np.float64)
        cam = p @ camera.camera_from_world[:3, :3].T + camera.camera_from_world[:3, 3]
        front = cam[:, 2] >= NEAR
        if faces is not None and len(faces):
            faces = np.asarray(faces)
            inside = front[faces]
            for tri in faces[inside.all(1)]:
                draw.polygon([tuple(q) for q in pixels(cam[tri])], fill=255)
            for tri in faces[inside.any(1) & ~inside.all(1)]:
                poly = _clip_near(cam[tri])
                if len(poly) >= 3:
                    draw.polygon([tuple(q) for q in pixels(poly)], fill=255)
        else:
            px = np.floor(pixels(cam[front], 1) + 0.5).astype(int)
            ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
            loose[px[ok, 1], px[ok, 0]] = True
    mask = np.asarray(image).reshape(h, s, w, s).mean((1, 3)) >= 127.5
    if loose.any():
        disc = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), max(1, round(point_radius)))
        grown = ndimage.binary_dilation(loose, disc)
        mask |= grown | ndimage.binary_closing(grown, disc, iterations=2)
    return mask


def surfaces(parts: list[tuple[np.ndarray, np.ndarray | None]], camera: Camera) -> np.ndarray:
    """(H, W) int: which of ``parts`` (the static objects) each pixel of ``camera`` shows, -1 for
    none (the backdrop beyond them); where several overlap, the nearest by mean depth."""
    labels = np.full((camera.height, camera.width), -1)
    depth = [float(np.mean(camera.project(np.asarray(p, dtype=np.float64))[1])) for p, _ in parts]
    for k in np.argsort(depth)[::-1]:  # far to near: the nearer overwrites
        labels[silhouette([parts[k]], camera)] = k
    return labels


def background_from_first_frame(frame: np.ndarray, covered: np.ndarray, labels: np.ndarray | None = None,
                                grow: int = 2) -> np.ndarray:
    """(H, W, 3) the background of ``frame`` (H, W, 3): its own pixels where ``covered`` (H, W)
    bool, grown by ``grow`` pixels, is false; elsewhere the nearest such pixel's colour, taken
    from the same surface when ``labels`` (H, W) int (`surfaces`) says which surface each pixel
    shows behind the objects (a table's edge then runs on behind them).

    Raises:
        ValueError when nothing of the frame is uncovered.
    """
    assert frame.shape[:2] == covered.shape and frame.shape[-1] == 3, (frame.shape, covered.shape)
    if grow > 0:
        covered = ndimage.binary_dilation(covered, iterations=grow)
    if covered.all():
        raise ValueError("the movable objects cover the whole first frame: no background to keep")
    out = _nearest_fill(frame, covered)
    if labels is not None:
        for label in np.unique(labels[covered]):
            same = labels == label
            if (same & ~covered).any():
                filled = _nearest_fill(frame, covered | ~same)
                out[covered & same] = filled[covered & same]
    return out


def _nearest_fill(frame: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    _, (rows, cols) = ndimage.distance_transform_edt(unknown, return_indices=True)
    return frame[rows, cols]
