"""A scan as a scene of named objects: its labels when it has them, else geometric segmentation."""

from __future__ import annotations

import os

from chord_robot.scan import MAX_POINTS, read_scan, scene_from_labels
from chord_robot.scene import Scene


def load_scene(path: str | os.PathLike[str], up: str = "z", scale: float = 1.0, max_points: int = MAX_POINTS) -> Scene:
    """Load a scan and split it into named objects (labels if present, else geometry)."""
    raw = read_scan(path, up=up, scale=scale, max_points=max_points)
    if raw.labels is not None:
        return scene_from_labels(raw, str(path))
    from flowgen.segment import segment_scan

    return segment_scan(raw, str(path))
