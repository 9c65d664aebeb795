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


def silhouette(parts: list[tuple[np.ndarray, np.ndarray | None]], camera: Camera, point_radius: float = 1.5) -> np.ndarray:
    """(H, W) bool: the pixels of ``camera`` that the ``parts`` cover, occlusion ignored.

    Args:
        parts: (points (N, 3), faces (F, 3) or None) per object, world metres; a mesh's
            triangles are filled, points without faces are drawn as discs of ``point_radius``
            pixels and the gaps between them closed.
        camera: the view (its width and height are the mask's).
    """
    from PIL import Image, ImageDraw

    image = Image.new("1", (camera.width, camera.height), 0)
    draw = ImageDraw.Draw(image)
    loose = np.zeros((camera.height, camera.width), bool)
    for points, faces in parts:
        uv, z = camera.project(np.asarray(points, dtype=np.float64))
        front = z > 1e-6
        if faces is not None and len(faces):
            faces = np.asarray(faces)
            for tri in faces[front[faces].all(1)]:
                draw.polygon([tuple(p) for p in uv[tri]], fill=1)
        else:
            px = np.floor(uv[front]).astype(int)
            inside = (px[:, 0] >= 0) & (px[:, 0] < camera.width) & (px[:, 1] >= 0) & (px[:, 1] < camera.height)
            loose[px[inside, 1], px[inside, 0]] = True
    mask = np.array(image, dtype=bool)
    if loose.any():
        disc = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), max(1, round(point_radius)))
        mask |= ndimage.binary_closing(ndimage.binary_dilation(loose, disc), disc, iterations=2)
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
