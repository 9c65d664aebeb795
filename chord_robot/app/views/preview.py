"""Preview images of a scene: top and side views, points coloured by object."""

from __future__ import annotations

import os

import numpy as np

from chord_robot.atomic import atomic_path
from chord_robot.scene import Scene

_PALETTE = np.array([
    [0.60, 0.60, 0.60], [0.89, 0.10, 0.11], [0.22, 0.49, 0.72], [0.30, 0.69, 0.29],
    [0.60, 0.31, 0.64], [1.00, 0.50, 0.00], [0.65, 0.34, 0.16], [0.97, 0.51, 0.75],
])


def object_colors(scene: Scene) -> dict[str, np.ndarray]:
    """A distinct colour per object (static ones grey)."""
    out, i = {}, 1
    for name, obj in scene.objects.items():
        if obj.static:
            out[name] = _PALETTE[0]
        else:
            out[name] = _PALETTE[1 + (i - 1) % (len(_PALETTE) - 1)]
            i += 1
    return out


def write_preview(scene: Scene, path: str | os.PathLike[str], max_points: int = 20_000) -> None:
    """Write a PNG with a top view (x-y) and a side view (x-z) of the scene, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    colors = object_colors(scene)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), dpi=100)
    total = sum(len(o.points) for o in scene.objects.values())
    for name, obj in scene.objects.items():
        n = max(50, int(max_points * len(obj.points) / total))
        pts = obj.points if len(obj.points) <= n else obj.points[rng.choice(len(obj.points), n, replace=False)]
        for ax, (a, b) in zip(axes, [(0, 1), (0, 2)]):
            ax.scatter(pts[:, a], pts[:, b], s=1.0, color=colors[name], label=name if a == 0 and b == 1 else None)
    for ax, title, ylabel in zip(axes, ["top view", "side view"], ["y (m)", "z (m)"]):
        ax.set_title(title)
        ax.set_xlabel("x (m)")
        ax.set_ylabel(ylabel)
        ax.set_aspect("equal")
    axes[0].legend(markerscale=8, fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
