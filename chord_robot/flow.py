"""ObjectFlow: dense 3D object motion over time, stored as a zarr v3 group (DESIGN.md §3).

Layout::

    attrs: schema="chord-robot/object-flow", version=1, task, num_frames T, fps, prior,
           units="m", frame="world", config (dict), software_version
    objects/<name>/points                (N, 3)    canonical points (frame 0), world frame
    objects/<name>/trajectories          (T, N, 3) positions over time; [0] == points
    objects/<name>/colors                (N, 3)    optional, RGB in [0, 1]
    objects/<name>/control/centers       (K, 3)    optional group: all three arrays or none
    objects/<name>/control/quats         (T, K, 4) wxyz
    objects/<name>/control/translations  (T, K, 3)
    objects/<name>/control/scales        (K,)      optional, skinning radius per control point
    objects/<name>/attrs: static (bool), source ("scan" | "mesh" | "gaussians")

The control deformation is the same linear blend skinning flowgen optimised, so the flow can
be evaluated at any point (mesh vertices, grasp contacts) with `ObjectMotion.evaluate`. A flow
from elsewhere (a point tracker, another tool) may hold only ``points`` and ``trajectories``;
`ObjectMotion.evaluate` then interpolates the given trajectories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chord_robot.errors import SchemaError
from chord_robot.geometry import matrix_to_quat, quat_to_matrix  # re-exported: flow's quaternions
from chord_robot.zarrio import open_store, put, read_array, write_store

SCHEMA = "chord-robot/object-flow"
VERSION = 1
SOURCES = ("scan", "mesh", "gaussians")
_POINTS_TOL = 1e-5


@dataclass(frozen=True)
class ObjectMotion:
    """The motion of one object.

    Attributes:
        points: (N, 3) canonical points at frame 0, world frame, metres.
        trajectories: (T, N, 3) positions over time; ``trajectories[0] == points``.
        centers: (K, 3) control point centres (rest pose), or None (a flow of points only).
        quats: (T, K, 4) control rotations, wxyz; identity at frame 0 (None with centers).
        translations: (T, K, 3) control translations; zero at frame 0 (None with centers).
        colors: (N, 3) RGB in [0, 1], or None.
        scales: (K,) skinning radius of each control point, or None (then the mean distance
            to the 3 nearest control points is used).
        static: True for objects that do not move (a table).
        source: what the points came from: "scan", "mesh" or "gaussians".
    """

    points: np.ndarray
    trajectories: np.ndarray
    centers: np.ndarray | None = None
    quats: np.ndarray | None = None
    translations: np.ndarray | None = None
    colors: np.ndarray | None = None
    scales: np.ndarray | None = None
    static: bool = False
    source: str = "scan"

    def __post_init__(self) -> None:
        for name in ("points", "trajectories"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float32))
        for name in ("centers", "quats", "translations", "colors", "scales"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, np.asarray(v, dtype=np.float32))
        check_motion(self)

    @property
    def num_frames(self) -> int:
        return int(self.trajectories.shape[0])

    @property
    def has_controls(self) -> bool:
        """Whether the motion carries its control points (flowgen's and the oracles' do)."""
        return self.centers is not None

    @property
    def displacement(self) -> np.ndarray:
        """(T, N) distance of each point from its frame-0 position."""
        return np.linalg.norm(self.trajectories - self.points[None], axis=-1)

    @staticmethod
    def rigid(
        points: np.ndarray,
        world_from_object: np.ndarray,
        colors: np.ndarray | None = None,
        static: bool = False,
        source: str = "scan",
    ) -> ObjectMotion:
        """Motion of a rigid object: one control point at the centroid, ``(T, 4, 4)`` poses.

        ``world_from_object[t]`` maps the frame-0 points to frame t (``[0]`` must be identity).
        """
        points = np.asarray(points, dtype=np.float64)
        poses = np.asarray(world_from_object, dtype=np.float64)
        assert poses.ndim == 3 and poses.shape[1:] == (4, 4), poses.shape
        traj = points[None] @ poses[:, :3, :3].transpose(0, 2, 1) + poses[:, None, :3, 3]
        center = points.mean(0, keepdims=True)
        # x' = R (x - c) + c + T  =>  T = R c + t - c
        trans = (poses[:, :3, :3] @ center[0] + poses[:, :3, 3] - center[0])[:, None]
        quats = matrix_to_quat(poses[:, :3, :3])[:, None]
        scale = np.array([max(float(np.ptp(points, 0).max()), 1e-3)])
        return ObjectMotion(points, traj, center, quats, trans, colors, scale, static, source)

    def evaluate(self, query: np.ndarray, k: int = 8) -> np.ndarray:
        """The motion of arbitrary points: by the stored linear blend skinning, or, for a flow
        of points only, by interpolating the given trajectories (`interpolate_trajectories`).

        Args:
            query: (M, 3) points in the frame-0 world frame.
            k: number of nearest control points (or given points) blended.
        Returns:
            (T, M, 3) positions over time.
        """
        if not self.has_controls:
            return interpolate_trajectories(query, self.points, self.trajectories, k)
        return lbs_numpy(query, self.centers, self.quats, self.translations, self.control_scales(), k)

    def control_scales(self) -> np.ndarray:
        """(K,) skinning radius: stored, else the mean distance to the 3 nearest centres."""
        if self.centers is None:
            raise SchemaError("this motion has no control points (a flow of points and trajectories only)")
        if self.scales is not None:
            return self.scales
        c = self.centers.astype(np.float64)
        if len(c) == 1:
            return np.ones(1, np.float32)
        d = np.linalg.norm(c[:, None] - c[None], axis=-1)
        d[np.arange(len(c)), np.arange(len(c))] = np.inf
        nn = np.sort(d, 1)[:, : min(3, len(c) - 1)]
        return nn.mean(1).astype(np.float32)


@dataclass(frozen=True)
class ObjectFlow:
    """Dense object flow for a scene: one `ObjectMotion` per object, same T for all.

    Attributes:
        objects: name -> motion.
        task: the task text the flow was generated for.
        fps: frames per second of the flow.
        prior: which prior produced it ("wan", "video", "oracle", ...).
        config: the generation config, JSON-serialisable.
    """

    objects: dict[str, ObjectMotion]
    task: str
    fps: float = 10.0
    prior: str = "oracle"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.objects:
            raise SchemaError("an ObjectFlow needs at least one object")
        frames = {m.num_frames for m in self.objects.values()}
        if len(frames) != 1:
            raise SchemaError(f"all objects of a flow must have the same frame count, got {sorted(frames)}")
        for name in self.objects:
            _check_name(name)

    @property
    def num_frames(self) -> int:
        return next(iter(self.objects.values())).num_frames

    def moving(self) -> dict[str, ObjectMotion]:
        """The objects not flagged static."""
        return {k: v for k, v in self.objects.items() if not v.static}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the flow as a zarr v3 group, atomically."""
        attrs = {
            "schema": SCHEMA,
            "version": VERSION,
            "task": self.task,
            "num_frames": self.num_frames,
            "fps": float(self.fps),
            "prior": self.prior,
            "units": "m",
            "frame": "world",
            "config": self.config,
        }

        def fill(group: Any) -> None:
            for name, m in self.objects.items():
                g = group.create_group(f"objects/{name}")
                g.attrs.update({"static": bool(m.static), "source": m.source})
                put(g, "points", m.points)
                put(g, "trajectories", m.trajectories)
                if m.colors is not None:
                    put(g, "colors", m.colors)
                if m.has_controls:
                    put(g, "control/centers", m.centers)
                    put(g, "control/quats", m.quats)
                    put(g, "control/translations", m.translations)
                    if m.scales is not None:
                        put(g, "control/scales", m.scales)

        write_store(path, attrs, fill)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> ObjectFlow:
        """Read and validate a flow store; SchemaError says what is wrong."""
        group = open_store(path, SCHEMA, VERSION)
        attrs = dict(group.attrs)
        for key in ("task", "num_frames", "fps", "prior", "units", "frame"):
            if key not in attrs:
                raise SchemaError(f"{path}: flow attrs miss {key!r}")
        if attrs["units"] != "m" or attrs["frame"] != "world":
            raise SchemaError(f"{path}: flow must be in metres and the world frame")
        if "objects" not in group:
            raise SchemaError(f"{path}: flow has no objects group")
        objects = {}
        for name in sorted(group["objects"].group_keys()):
            g = group[f"objects/{name}"]
            controls = "control" in g
            try:
                motion = ObjectMotion(
                    points=read_array(g, "points", 2),
                    trajectories=read_array(g, "trajectories", 3),
                    centers=read_array(g, "control/centers", 2) if controls else None,
                    quats=read_array(g, "control/quats", 3) if controls else None,
                    translations=read_array(g, "control/translations", 3) if controls else None,
                    colors=read_array(g, "colors", 2) if "colors" in g else None,
                    scales=read_array(g, "control/scales", 1) if controls and "scales" in g["control"] else None,
                    static=bool(g.attrs.get("static", False)),
                    source=str(g.attrs.get("source", "scan")),
                )
            except SchemaError as e:
                raise SchemaError(f"{path}: object {name!r}: {e}") from None
            objects[name] = motion
        flow = ObjectFlow(objects, str(attrs["task"]), float(attrs["fps"]), str(attrs["prior"]), dict(attrs.get("config", {})))
        if flow.num_frames != int(attrs["num_frames"]):
            raise SchemaError(f"{path}: attrs say {attrs['num_frames']} frames, arrays hold {flow.num_frames}")
        return flow


def check_motion(m: ObjectMotion) -> None:
    """Raise SchemaError unless the arrays of ``m`` have consistent shapes and finite values."""
    if m.points.ndim != 2 or m.points.shape[1] != 3 or len(m.points) == 0:
        raise SchemaError(f"points must be (N, 3) with N > 0, got {m.points.shape}")
    n = len(m.points)
    if m.trajectories.ndim != 3 or m.trajectories.shape[1:] != (n, 3) or m.trajectories.shape[0] < 1:
        raise SchemaError(f"trajectories must be (T, {n}, 3), got {m.trajectories.shape}")
    t = m.trajectories.shape[0]
    if m.colors is not None and m.colors.shape != (n, 3):
        raise SchemaError(f"colors must be ({n}, 3), got {m.colors.shape}")
    given = [name for name in ("centers", "quats", "translations") if getattr(m, name) is not None]
    if given and len(given) < 3:
        raise SchemaError(f"control points need centers, quats and translations; got only {', '.join(given)}")
    if not given and m.scales is not None:
        raise SchemaError("control/scales without control points")
    names = ("points", "trajectories", *given)
    if given:
        _check_controls(m, t)
    for name in names:
        if not np.all(np.isfinite(getattr(m, name))):
            raise SchemaError(f"{name} holds NaN or infinite values")
    if np.abs(m.trajectories[0] - m.points).max() > _POINTS_TOL:
        raise SchemaError("trajectories[0] must equal points (frame 0 is the canonical pose)")
    if m.source not in SOURCES:
        raise SchemaError(f"source must be one of {SOURCES}, got {m.source!r}")


def _check_controls(m: ObjectMotion, t: int) -> None:
    if m.centers.ndim != 2 or m.centers.shape[1] != 3 or len(m.centers) == 0:
        raise SchemaError(f"control/centers must be (K, 3) with K > 0, got {m.centers.shape}")
    k = len(m.centers)
    if m.quats.shape != (t, k, 4):
        raise SchemaError(f"control/quats must be ({t}, {k}, 4), got {m.quats.shape}")
    if m.translations.shape != (t, k, 3):
        raise SchemaError(f"control/translations must be ({t}, {k}, 3), got {m.translations.shape}")
    if m.scales is not None and m.scales.shape != (k,):
        raise SchemaError(f"control/scales must be ({k},), got {m.scales.shape}")


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise SchemaError(f"invalid object name {name!r}: use letters, digits, '_' or '-'")


def lbs_numpy(
    query: np.ndarray,
    centers: np.ndarray,
    quats: np.ndarray,
    translations: np.ndarray,
    scales: np.ndarray,
    k: int = 8,
) -> np.ndarray:
    """Linear blend skinning of points by control points (DESIGN.md §4), numpy.

    w_k = exp(-|x - p_k|^2 / (2 s_k^2)) over the k nearest control points, normalised;
    x^t = sum_k w_k (R_k^t (x - p_k) + p_k + T_k^t).

    Args:
        query: (M, 3) rest-pose points.
        centers: (K, 3) control centres; quats (T, K, 4) wxyz; translations (T, K, 3);
        scales: (K,) isotropic skinning radius per control point.
    Returns:
        (T, M, 3) positions.
    """
    query = np.asarray(query, dtype=np.float64)
    assert query.ndim == 2 and query.shape[1] == 3, query.shape
    k = min(k, len(centers))
    d2 = ((query[:, None] - centers[None]) ** 2).sum(-1)  # (M, K)
    idx = np.argsort(d2, 1)[:, :k]  # (M, k)
    nd2 = np.take_along_axis(d2, idx, 1)
    logw = -0.5 * nd2 / (scales[idx].astype(np.float64) ** 2)
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    rot = quat_to_matrix(quats)  # (T, K, 3, 3)
    rel = query[:, None] - centers[idx]  # (M, k, 3)
    moved = np.einsum("tmkij,mkj->tmki", rot[:, idx], rel) + centers[idx][None] + translations[:, idx]
    return np.einsum("mk,tmki->tmi", w, moved).astype(np.float32)


def interpolate_trajectories(query: np.ndarray, points: np.ndarray, trajectories: np.ndarray,
                             k: int = 8, rotations: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The motion of arbitrary points from a flow of points only: each query point follows
    the rigid motion that best fits its ``k`` nearest given points at each frame (weighted
    by inverse squared distance: a given point moves exactly as given, a point between them
    turns with its neighbourhood).

    Args:
        query: (M, 3) frame-0 points; points: (N, 3); trajectories: (T, N, 3).
        rotations: also return each query point's rotation since frame 0.
    Returns:
        (T, M, 3) positions, and with ``rotations`` (T, M, 3, 3) the fitted rotations.
    """
    from scipy.spatial import cKDTree

    query = np.asarray(query, dtype=np.float64)
    assert query.ndim == 2 and query.shape[1] == 3, query.shape
    k = min(k, len(points))
    dist, idx = cKDTree(np.asarray(points, np.float64)).query(query, k)
    dist, idx = dist.reshape(len(query), k), idx.reshape(len(query), k)
    w = 1.0 / (dist**2 + 1e-12)
    w /= w.sum(1, keepdims=True)  # (M, k)
    p = np.asarray(points, np.float64)[idx]  # (M, k, 3)
    q = np.asarray(trajectories, np.float64)[:, idx]  # (T, M, k, 3)
    cp = np.einsum("mk,mki->mi", w, p)
    cq = np.einsum("mk,tmki->tmi", w, q)
    cov = np.einsum("mk,mki,tmkj->tmij", w, p - cp[:, None], q - cq[:, :, None])  # (T, M, 3, 3)
    u, _, vt = np.linalg.svd(cov)
    flip = np.sign(np.linalg.det(vt.swapaxes(-1, -2) @ u.swapaxes(-1, -2)))
    vt[..., 2, :] *= flip[..., None]
    rot = vt.swapaxes(-1, -2) @ u.swapaxes(-1, -2)  # (T, M, 3, 3): q - cq = R (p - cp)
    moved = (np.einsum("tmij,mj->tmi", rot, query - cp) + cq).astype(np.float32)
    return (moved, rot.astype(np.float32)) if rotations else moved
