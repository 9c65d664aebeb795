"""The loss of one iteration: deform, render the prior's views, add the regularisers.

Two stages share it: *appearance* (frame 0 only, rest pose; colours, light and the
Gaussians' scales and opacities free, plus a pull of the albedo towards the scan's colours)
and *motion* (batches of frames: the prior's loss plus the rendered 3D-flow temporal loss,
ARAP on the near-surface set, the still-pixel term, the contact term between touching parts
and the robust minimal-motion prior). Rendering packs colour, flow ``mu^t - mu^(t-1)`` and
displacement ``mu^t - mu^0`` into one 9-channel pass per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from flowgen import losses
from flowgen.model import SceneModel
from flowgen.motion import deform_object, deform_surface
from flowgen.priors.video import View
from flowgen.quat import quat_conjugate, quat_multiply
from flowgen.raster import render
from flowgen.shading import albedo, gaussian_normals, shade
from flowgen.splats import Splats, camera_tensors, render_splats_frames, render_stacked

__all__ = ["Objective", "Prior", "appearance_objective", "motion_objective", "render_views", "visibility"]


class Prior(Protocol):
    """What the optimisation needs from a prior: `flowgen.priors.video.VideoPrior` (given
    videos, a few frames per view) or `flowgen.priors.sds_prior.SdsPrior` (Wan score
    distillation, every frame of each sampled camera).

    ``views(frames, scale, first)`` gets one frame draw per view and ``first``, the running
    count of views (``iteration * views per iteration``); ``loss`` returns named scalar terms
    (and optionally ``per_frame``, (T,) errors that steer the frame draws); ``still`` the
    still-pixel mask of a view, or None.
    """

    num_frames: int
    num_sources: int

    def views(self, frames: list[Tensor], scale: float, first: int = 0) -> list[View]: ...

    def loss(self, view: View, rgb: Tensor, alpha: Tensor, scale: float) -> dict[str, Tensor]: ...

    def still(self, view: View, scale: float) -> Tensor | None: ...


@dataclass(frozen=True)
class Objective:
    """A weighted loss and its parts.

    Attributes:
        total: scalar to minimise.
        terms: name -> weighted scalar term (for the progress bar and history).
        per_frame: (T,) detached photometric error of the frames rendered, NaN elsewhere.
    """

    total: Tensor
    terms: dict[str, Tensor]
    per_frame: Tensor


@dataclass(frozen=True)
class _Posed:
    """Per object, Gaussians at the frames needed: (T', N, ·) tensors."""

    means: list[Tensor]
    quats: list[Tensor]
    colors: list[Tensor]


def _pose(model: SceneModel, frames: Tensor, use_fine: bool) -> _Posed:
    """Deform and shade every moving object at ``frames`` (T',)."""
    means, quats, colors = [], [], []
    for obj in model.moving:
        d = deform_object(obj, frames, use_fine)
        assert d.quats is not None
        normals = gaussian_normals(d.quats) if obj.rest.normals is not None else None
        means.append(d.points)
        quats.append(d.quats)
        colors.append(shade(model, albedo(obj.albedo_logit), normals).expand_as(d.points))
    return _Posed(means, quats, colors)


def rest_splats(model: SceneModel) -> Splats:
    """Every object's Gaussians at rest, shaded: the scene as the first frame shows it (what
    the wan prior's first frames and `chord-robot render --scan` show)."""
    return Splats.join(_static_splats(model, model.moving + model.static))


def static_splats(model: SceneModel) -> Splats:
    """The static objects' Gaussians, shaded (the scene behind what moves)."""
    return Splats.join(_static_splats(model))


def _static_splats(model: SceneModel, objects=None) -> list[Splats]:
    out = []
    for obj in model.static if objects is None else objects:
        g = obj.rest
        color = shade(model, albedo(obj.albedo_logit), g.normals)
        zeros = torch.zeros_like(g.means)
        out.append(Splats(g.means, g.quats, obj.log_scales.exp(), torch.sigmoid(obj.opacity_logit),
                          torch.cat((color, zeros, zeros), -1), g.sh_rest))
    return out


def render_views(model: SceneModel, views: list[View], posed: _Posed, slot: dict[int, int], per_frame: bool = False):
    """Render each view's frames in one pass of 9 channels: yields (view, rgb, flow,
    displacement, alpha), images (T, H, W, ·); flow is ``mu^t - mu^(t-1)`` and displacement
    ``mu^t - mu^0`` (zero for static objects).

    On a CPU without spherical harmonics the frames' Gaussians are built as (T, N, ·) tensors
    (`_render_stacked`); otherwise, or with ``per_frame``, frame by frame (the same images).
    """
    static = None
    stacked = not per_frame and model.device.type == "cpu" and all(
        o.rest.sh_rest is None for o in [*model.moving, *model.static])
    if not stacked:  # per object, its frames as separate tensors: one backward node per object (its unbind)
        means, quats, colors = ([x.unbind(0) for x in xs] for xs in (posed.means, posed.quats, posed.colors))
    scales = [obj.log_scales.exp() for obj in model.moving]
    opacities = [torch.sigmoid(obj.opacity_logit) for obj in model.moving]
    for view in views:
        if view.background is None and static is None:
            static = _static_splats(model)
        if stacked:
            image = _render_stacked(model, view, posed, slot, scales, opacities, static)
            feat, alpha = image.features, image.alpha
        else:
            frames = []
            for f in view.frames.tolist():
                i, prev = slot[f], slot[max(f - 1, 0)]
                parts = []
                for k, obj in enumerate(model.moving):
                    flow = means[k][i] - means[k][prev]
                    moved = means[k][i] - obj.rest.means
                    sh = obj.rest.sh_rest
                    turned = None if sh is None else quat_multiply(quats[k][i], quat_conjugate(obj.rest.quats))
                    parts.append(Splats(means[k][i], quats[k][i], scales[k], opacities[k],
                                        torch.cat((colors[k][i], flow, moved), -1), sh, turned))
                if view.background is None:
                    parts += static
                frames.append(Splats.join(parts))
            images = render_splats_frames(frames, view.camera, view.background)
            feat = torch.stack([image.features for image in images])
            alpha = torch.stack([image.alpha for image in images])
        yield view, feat[..., :3], feat[..., 3:6], feat[..., 6:], alpha


def _rows(frames: list[int], slot: dict[int, int], posed: Tensor) -> Tensor:
    """``posed`` (T', ...) at the rows of ``frames``: the tensor itself when they are all its
    rows in order (no gather, no scatter in the backward)."""
    rows = [slot[f] for f in frames]
    if rows == list(range(len(posed))):
        return posed
    return posed.index_select(0, torch.tensor(rows, dtype=torch.long, device=posed.device))


def _render_stacked(model: SceneModel, view: View, posed: _Posed, slot: dict[int, int], scales: list[Tensor],
                    opacities: list[Tensor], static: list[Splats] | None):
    """A view's frames as (T, N, ·) tensors in one pass (`splats.render_stacked`): the
    Gaussians in the order `render_views`' per-frame path joins them (moving objects, then
    the static ones where no background is known), the same values, without per-frame ops."""
    frames = view.frames.tolist()
    prev = [max(f - 1, 0) for f in frames]
    means, quats, features, shared_scales, shared_opacities = [], [], [], list(scales), list(opacities)
    for k, obj in enumerate(model.moving):
        now = _rows(frames, slot, posed.means[k])
        means.append(now)
        quats.append(_rows(frames, slot, posed.quats[k]))
        flow = now - _rows(prev, slot, posed.means[k])
        features.append(torch.cat((_rows(frames, slot, posed.colors[k]), flow, now - obj.rest.means), -1))
    if view.background is None:
        count = len(frames)
        for s in static:
            means.append(s.means.expand(count, -1, -1))
            quats.append(s.quats.expand(count, -1, -1))
            features.append(s.features.expand(count, -1, -1))
            shared_scales.append(s.scales)
            shared_opacities.append(s.opacities)
    return render_stacked(torch.cat(means, 1), torch.cat(quats, 1), torch.cat(shared_scales), torch.cat(shared_opacities),
                          torch.cat(features, 1), view.camera, view.background)


def visibility(model: SceneModel, views: list[View], tolerance: float = 0.015) -> list[Tensor]:
    """Per object (moving, then static), (N,) bool: which Gaussians, as sampled and at rest,
    the views' cameras see (their centre projects into the image, onto rendered surface, and
    no deeper than the rendered depth there plus ``tolerance`` metres).

    It tells the appearance stage which Gaussians the video constrains: Adam would otherwise
    move hidden ones - a lid's underside, seen only through the few percent of transmittance
    the top layer lets through - as fast as visible ones, on their tiny gradients.
    """
    objects = list(model.moving) + list(model.static)
    seen = [torch.zeros(o.rest.num, dtype=torch.bool) for o in objects]  # on the host
    for view in views:
        shown = [i for i, o in enumerate(objects) if view.background is None or i < len(model.moving)]
        parts = [objects[i].rest for i in shown]
        means = torch.cat([g.means for g in parts])
        viewmat, K = camera_tensors(view.camera, device=means.device)
        with torch.no_grad():
            out = render(means, torch.cat([g.quats for g in parts]),
                         torch.cat([g.log_scales.exp() for g in parts]),
                         torch.cat([torch.sigmoid(g.opacity_logits) for g in parts]),
                         means.new_zeros(len(means), 1), viewmat, K, view.camera.width, view.camera.height)
        uv, z = view.camera.project(means.detach().cpu().double().numpy())
        col, row = torch.as_tensor(uv[:, 0]).floor().long(), torch.as_tensor(uv[:, 1]).floor().long()
        inside = (col >= 0) & (col < view.camera.width) & (row >= 0) & (row < view.camera.height)
        col, row = col.clamp(0, view.camera.width - 1), row.clamp(0, view.camera.height - 1)
        alpha = out.alpha.cpu()[row, col]
        surface = out.depth.cpu()[row, col] / alpha.clamp_min(1e-6)
        visible = inside & (alpha > 0.5) & (torch.as_tensor(z, dtype=torch.float32) <= surface + tolerance)
        for i, v in zip(shown, visible.split([g.num for g in parts])):
            seen[i] |= v
    return seen


def _frames_and_slots(views: list[View]) -> tuple[Tensor, dict[int, int]]:
    """The frames to deform (the views' frames and their predecessors) and frame -> row."""
    needed = sorted({f for v in views for g in v.frames.tolist() for f in (g, max(g - 1, 0))})
    return torch.tensor(needed, dtype=torch.long), {f: i for i, f in enumerate(needed)}


def _part_weights(obj, weights: dict[str, float]) -> dict[int, float]:
    """Minimal-motion factor per part: 1 for parts resting on a static object, else
    ``motion_unsupported``."""
    held = set(obj.supported.tolist())
    free = weights.get("motion_unsupported", 1.0)
    return {p: (1.0 if p in held else free) for p in torch.unique(obj.part).tolist()}


def _consecutive_runs(frames: list[int]) -> list[list[int]]:
    """Maximal runs of at least 3 consecutive frames in sorted ``frames``."""
    runs, current = [], []
    for f in frames:
        if current and f != current[-1] + 1:
            runs.append(current)
            current = []
        current.append(f)
    runs.append(current)
    return [r for r in runs if len(r) >= 3]


def appearance_objective(model: SceneModel, prior: Prior, views: list[View], albedo_prior: float,
                         scale: float = 1.0) -> Objective:
    """Frame-0 photometric loss (+ silhouette) and the albedo pull towards scan colours."""
    frames, slot = _frames_and_slots(views)
    posed = _pose(model, frames, use_fine=False)
    terms: dict[str, Tensor] = {}
    per_frame = torch.full((model.num_frames,), float("nan"), device=model.device)
    for view, rgb, _, _, alpha in render_views(model, views, posed, slot):
        _add_prior_terms(terms, per_frame, prior.loss(view, rgb, alpha, scale), view, len(views))
    if albedo_prior > 0:
        terms["albedo"] = albedo_prior * albedo_pull(model)
    return Objective(sum(terms.values()), terms, per_frame)


def albedo_pull(model: SceneModel) -> Tensor:
    """Mean squared difference of the albedos from the scan's colours (their prior)."""
    objs = list(model.moving) + list(model.static)
    return sum((albedo(o.albedo_logit) - o.rest.colors).square().mean() for o in objs) / len(objs)


def _add_prior_terms(terms: dict, per_frame: Tensor, out: dict[str, Tensor], view: View, count: int) -> None:
    for name, value in out.items():
        if name == "per_frame":
            per_frame[view.frames] = value
        else:
            terms[name] = terms.get(name, 0.0) + value / count


def motion_objective(model: SceneModel, prior: Prior, views: list[View], weights: dict[str, float],
                     use_fine: bool, scale: float = 1.0) -> Objective:
    """The prior's loss on ``views`` plus the weighted regularisers on the frames rendered."""
    frames, slot = _frames_and_slots(views)
    posed = _pose(model, frames, use_fine)
    terms: dict[str, Tensor] = {}
    per_frame = torch.full((model.num_frames,), float("nan"), device=model.device)
    temporal, still = [], []
    for view, rgb, flow, moved, alpha in render_views(model, views, posed, slot):
        _add_prior_terms(terms, per_frame, prior.loss(view, rgb, alpha, scale), view, len(views))
        temporal.append(losses.temporal_flow(flow))
        mask = prior.still(view, scale) if weights["still"] > 0 else None
        if mask is not None:
            still.append(losses.still(moved, mask))
    if weights["temporal"] > 0:
        terms["temporal"] = weights["temporal"] * torch.stack(temporal).mean()
    if still:
        terms["still"] = weights["still"] * torch.stack(still).mean()
    batch = torch.unique(torch.cat([v.frames for v in views]))
    rows = torch.tensor([slot[f] for f in batch.tolist()], dtype=torch.long)
    if weights["arap"] > 0:
        arap = [losses.arap(obj.arap, deform_surface(obj, batch, use_fine)) for obj in model.moving]
        terms["arap"] = weights["arap"] * torch.stack(arap).mean()
    if weights.get("albedo", 0.0) > 0:
        terms["albedo"] = weights["albedo"] * albedo_pull(model)
    if weights["attach"] > 0:
        attach = [losses.contact(posed.means[k][rows], obj.contact, obj.contact_rest, obj.contact_group,
                                 smooth=weights.get("attach_smooth", 0.0)) for k, obj in enumerate(model.moving)]
        terms["attach"] = weights["attach"] * torch.stack(attach).mean()
    runs = _consecutive_runs(batch.tolist())
    if weights.get("acceleration", 0.0) > 0 and runs:
        accel = [losses.acceleration(posed.means[k][[slot[f] for f in run]])
                 for k in range(len(model.moving)) for run in runs]
        terms["acceleration"] = weights["acceleration"] * torch.stack(accel).mean()
    if weights.get("rigid", 0.0) > 0:
        rigid = [losses.part_rigidity(posed.means[k][rows], obj.rest.means, obj.part)
                 for k, obj in enumerate(model.moving)]
        terms["rigid"] = weights["rigid"] * torch.stack(rigid).mean()
    if weights.get("turn", 0.0) > 0:
        turned = [losses.turn(posed.means[k][rows], obj.rest.means) for k, obj in enumerate(model.moving)]
        terms["turn"] = weights["turn"] * torch.stack(turned).mean()
    if weights.get("sink", 0.0) > 0 and sum(len(o.rest.means) for o in model.static):
        field = losses.static_tops(torch.cat([o.rest.means for o in model.static]))  # a host sync for its size
        sunk = [losses.sink(posed.means[k][rows], field) for k in range(len(model.moving))]
        terms["sink"] = weights["sink"] * torch.stack(sunk).mean()
    if weights.get("overlap", 0.0) > 0:
        overlap = [losses.part_overlap(posed.means[k][rows], obj.rest.means, obj.part, obj.part_hulls)
                   for k, obj in enumerate(model.moving) if obj.part_hulls]
        if overlap:
            terms["overlap"] = weights["overlap"] * torch.stack(overlap).mean()
    if weights["motion"] > 0:
        per_part = weights.get("motion_per_part", 0.0) > 0
        motion = [losses.minimal_motion(posed.means[k][rows], obj.rest.means, weights["motion_scale"],
                                        obj.part if per_part else None, _part_weights(obj, weights) if per_part else None)
                  for k, obj in enumerate(model.moving)]
        terms["motion"] = weights["motion"] * torch.stack(motion).mean()
    return Objective(sum(terms.values()), terms, per_frame)
