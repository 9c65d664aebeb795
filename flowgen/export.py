"""The optimised model as an ObjectFlow (DESIGN.md §3).

Per moving object:

* ``points`` are the Gaussians' rest means (surface samples of the scan), ``trajectories``
  their skinned positions over time (coarse + fine), ``colors`` their frame-0 rendered colours.
* ``control/*`` is a *single-level* control set whose linear blend skinning
  (`chord_robot.flow.lbs_numpy`, what `ObjectMotion.evaluate` runs for mesh vertices or grasp
  contacts) reproduces the two-level, part-aware motion. Exporting the coarse level as is
  would not: `evaluate` knows neither parts nor the fine residual, so a lid point near the
  base would blend the base's controls. Instead the centres are farthest-point samples of each
  part's Gaussians plus, where another part is within a few sample spacings (a hinge), all the
  Gaussians there; each centre's rotation and translation per frame are the weighted rigid
  (Kabsch) fit of its neighbouring Gaussians *of its own part*; and one small skinning radius
  (half the median centre spacing) keeps blending local, so a point follows the controls of
  the surface it lies on. Near a hinge, where the two parts' surfaces nearly touch, single
  points can still take the other part's motion (the contract has no part ids).
  `reproduction_error` measures the mean (reported by the pipeline; measurements in
  docs/flowgen-notes.md).

Static objects get their Gaussians' means, a constant trajectory and one identity control.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from chord_robot.flow import ObjectFlow, ObjectMotion, matrix_to_quat
from flowgen.config import FlowConfig
from flowgen.model import MovingObject, SceneModel
from flowgen.motion import deform_object
from flowgen.shading import albedo, gaussian_normals, shade

__all__ = ["ExportConfig", "export_flow", "fit_controls", "reproduction_error"]


@dataclass(frozen=True)
class ExportConfig:
    """How the flow is written."""

    num_controls: int = 384
    """Exported control points per object (split between parts by their Gaussian count)."""
    fit_neighbours: int = 48
    """Gaussians of the same part in each control's rigid fit."""
    boundary_band: float = 4.0
    """Gaussians closer than this many sample spacings to another part all become controls."""
    boundary_neighbours: int = 12
    """Gaussians in the rigid fit of a boundary control (local, so it follows its own part)."""
    max_boundary_controls: int = 1024
    """Cap on those per part (farthest-point subsampled beyond), so `evaluate` stays cheap."""
    radius_factor: float = 0.5
    """Skinning radius as a fraction of the mean distance to the 3 nearest centres."""
    max_points: int = 20_000
    """Points per object in the flow (Gaussians subsampled beyond this)."""


def _fps(points: np.ndarray, count: int, seed: int) -> np.ndarray:
    import fpsample

    count = min(count, len(points))
    if count == len(points):
        return np.arange(len(points))
    start = int(np.random.default_rng(seed).integers(len(points)))
    height = int(min(7, np.floor(np.log2(len(points)))))
    return np.asarray(fpsample.bucket_fps_kdline_sampling(points, count, h=height, start_idx=start), np.int64)


def _kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted rigid fits dst ~ R src + t for batches: src, dst (..., n, 3), w (..., n)."""
    w = w / w.sum(-1, keepdims=True)
    mu_s = (w[..., None] * src).sum(-2)
    mu_d = (w[..., None] * dst).sum(-2)
    cov = np.einsum("...n,...ni,...nj->...ij", w, dst - mu_d[..., None, :], src - mu_s[..., None, :])
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    rot = u @ vt
    return rot, mu_d - np.einsum("...ij,...j->...i", rot, mu_s)


def fit_controls(rest: np.ndarray, traj: np.ndarray, part: np.ndarray, config: ExportConfig,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A single-level control set reproducing a part-aware motion (see the module docstring).

    Args:
        rest: (N, 3) rest points; traj: (T, N, 3) their motion; part: (N,) part ids.

    Returns:
        centres (K, 3), quats (T, K, 4) wxyz, translations (T, K, 3), scales (K,).
    """
    ids, counts = np.unique(part, return_counts=True)
    shares = np.maximum(np.round(config.num_controls * counts / counts.sum()).astype(int), 4)
    spacing_pts = float(np.median(cKDTree(rest).query(rest, k=2)[0][:, 1])) if len(rest) > 1 else 1.0
    centres, rots, trans = [], [], []
    for gid, share in zip(ids, shares):
        members = np.flatnonzero(part == gid)
        pts = rest[members]
        tree = cKDTree(pts)
        first = _fps(pts, share, seed)
        picked = [(pts[first], config.fit_neighbours)]
        others = rest[part != gid]
        if len(others):  # denser controls where another part is near (a hinge)
            near = cKDTree(others).query(pts, distance_upper_bound=config.boundary_band * spacing_pts)[0]
            in_band = np.isfinite(near)
            in_band[first] = False  # already controls
            if in_band.any():
                band = pts[in_band]
                band = band[_fps(band, config.max_boundary_controls, seed)]
                picked.append((band, config.boundary_neighbours))
        for centres_k, neighbours in picked:
            n = min(neighbours, len(members))
            dist, idx = tree.query(centres_k, k=n)
            dist, idx = dist.reshape(len(centres_k), n), idx.reshape(len(centres_k), n)
            sigma = np.maximum(dist[:, -1:], 1e-6)
            w = np.exp(-0.5 * (dist / (0.5 * sigma)) ** 2) + 1e-6  # (K, n)
            src = np.broadcast_to(pts[idx], (traj.shape[0],) + idx.shape + (3,))  # (T, K, n, 3)
            dst = traj[:, members][:, idx]
            rot, t = _kabsch(src, dst, np.broadcast_to(w, src.shape[:-1]))  # (T, K, 3, 3), (T, K, 3)
            # x' = R x + t = R (x - p) + p + T  =>  T = R p + t - p
            trans.append(np.einsum("tkij,kj->tki", rot, centres_k) + t - centres_k)
            centres.append(centres_k)
            rots.append(rot)
    centres_all = np.concatenate(centres)
    rot_all = np.concatenate(rots, 1)
    quats = matrix_to_quat(rot_all)
    quats[0] = (1.0, 0.0, 0.0, 0.0)
    translations = np.concatenate(trans, 1)
    translations[0] = 0.0
    # One radius for all: a control's reach must not depend on how sparse its own part's
    # controls are, or a coarse lid control would outweigh a fine base control beside it.
    nearest = cKDTree(centres_all).query(centres_all, k=2)[0][:, 1] if len(centres_all) > 1 else np.ones(1)
    nearest = nearest[nearest > 0]
    radius = max(config.radius_factor * float(np.median(nearest)) if len(nearest) else 1.0, 1e-5)
    return centres_all, quats, translations, np.full(len(centres_all), radius)


def reproduction_error(motion: ObjectMotion) -> float:
    """Mean distance (m) between `ObjectMotion.evaluate` at the points and their trajectories."""
    return float(np.linalg.norm(motion.evaluate(motion.points) - motion.trajectories, axis=-1).mean())


def _moving_motion(model: SceneModel, obj: MovingObject, config: ExportConfig, seed: int) -> ObjectMotion:
    frames = torch.arange(model.num_frames)
    with torch.no_grad():
        d = deform_object(obj, frames, use_fine=True)
        normals = gaussian_normals(d.quats[:1]) if obj.rest.normals is not None else None
        shaded = shade(model, albedo(obj.albedo_logit), normals)  # (1, N, 3), or (N, 3) unshaded
        colors = (shaded[0] if shaded.dim() == 3 else shaded).clamp(0, 1)
    traj = d.points.double().numpy()
    rest = obj.rest.means.double().numpy()
    traj[0] = rest
    keep = np.arange(len(rest))
    if len(rest) > config.max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(rest), config.max_points, replace=False))
    centres, quats, trans, scales = fit_controls(rest, traj, obj.part.numpy(), config, seed)
    return ObjectMotion(rest[keep], traj[:, keep], centres, quats, trans, colors.numpy()[keep], scales,
                        static=False, source="gaussians")


def export_flow(model: SceneModel, config: FlowConfig, task: str, fps: float = 10.0,
                export: ExportConfig = ExportConfig()) -> ObjectFlow:
    """The ObjectFlow of every object of ``model`` (static ones flagged and not moving)."""
    objects: dict[str, ObjectMotion] = {}
    for obj in model.moving:
        objects[obj.name] = _moving_motion(model, obj, export, config.seed)
    identity = np.tile(np.eye(4), (model.num_frames, 1, 1))
    for obj in model.static:
        with torch.no_grad():
            colors = shade(model, albedo(obj.albedo_logit), obj.rest.normals).clamp(0, 1).numpy()
        objects[obj.name] = ObjectMotion.rigid(obj.rest.means.numpy(), identity, colors, static=True,
                                               source="gaussians")
    return ObjectFlow(objects, task, fps, config.prior, _jsonable(dataclasses.asdict(config)))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
