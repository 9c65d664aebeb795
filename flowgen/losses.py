"""Loss terms of the 4D optimisation: photometric (video prior), silhouette, and the
regularisers (rendered 3D-flow temporal loss, ARAP, minimal motion).

Each is a small function of tensors returning a scalar; weights live in `FlowConfig` and the
schedules in `flowgen.schedules`. Images are (T, H, W, C), frames first.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from flowgen.arap import ArapGraph, arap_energy
from flowgen.procrustes import svd_rotations

__all__ = [
    "HeightField",
    "acceleration",
    "arap",
    "contact",
    "l1",
    "minimal_motion",
    "part_overlap",
    "part_rigidity",
    "photometric",
    "silhouette",
    "sink",
    "ssim",
    "static_tops",
    "still",
    "temporal_flow",
    "turn",
]


def l1(render: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of (T, H, W, C) images."""
    assert render.shape == target.shape, (render.shape, target.shape)
    return (render - target).abs().mean()


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device | None = None) -> Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(render: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity of (T, H, W, C) images in [0, 1] (Wang et al. 2004, the
    Gaussian-window form 3DGS uses). Compares local means, contrasts and correlations, so a
    brightness change costs much less than a shift."""
    assert render.shape == target.shape and render.ndim == 4, (render.shape, target.shape)
    channels = render.shape[-1]
    x = render.permute(0, 3, 1, 2)
    y = target.permute(0, 3, 1, 2)
    g = _gaussian_window(window, sigma, render.dtype, render.device)
    kernel_h = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_v = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    pad = window // 2

    def blur(z: Tensor) -> Tensor:  # separable, reflect-padded
        z = F.conv2d(F.pad(z, (pad, pad, 0, 0), mode="reflect"), kernel_h, groups=channels)
        return F.conv2d(F.pad(z, (0, 0, pad, pad), mode="reflect"), kernel_v, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).mean()


def photometric(render: Tensor, target: Tensor, ssim_weight: float) -> Tensor:
    """(1 - w) L1 + w (1 - SSIM) between (T, H, W, 3) images (3DGS uses w = 0.2)."""
    loss = (1 - ssim_weight) * l1(render, target)
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1 - ssim(render, target))
    return loss


def silhouette(alpha: Tensor, mask: Tensor) -> Tensor:
    """Mean squared difference of rendered opacity (T, H, W) and a foreground mask."""
    assert alpha.shape == mask.shape, (alpha.shape, mask.shape)
    return (alpha - mask).square().mean()


def temporal_flow(flow_image: Tensor) -> Tensor:
    """The rendered 3D-flow loss: mean over frames and pixels of ``|flow|^2``.

    ``flow_image`` (T, H, W, 3) is the render of the Gaussians with their colour replaced by
    their displacement since the previous frame, ``mu^t - mu^(t-1)`` (paper, temporal
    regulariser): zero for a static scene, and it penalises the visible motion's speed.
    """
    assert flow_image.ndim == 4 and flow_image.shape[-1] == 3, flow_image.shape
    return flow_image.square().sum(-1).mean()


def acceleration(trajectories: Tensor) -> Tensor:
    """Mean over (T - 2, N) of ``|mu^(t+1) - 2 mu^t + mu^(t-1)|^2`` for (T, N, 3) positions at T
    consecutive frames: zero for motion at constant velocity (a lid turning at a steady rate
    costs nearly nothing), large for frame-to-frame zig-zags."""
    assert trajectories.ndim == 3 and trajectories.shape[0] >= 3, trajectories.shape
    second = trajectories[2:] - 2 * trajectories[1:-1] + trajectories[:-2]
    return second.square().sum(-1).mean()


def part_rigidity(means: Tensor, rest: Tensor, part: Tensor) -> Tensor:
    """How far each part is from moving rigidly: mean over frames and parts of the mean squared
    residual ``|(mu - c) - R (mu_rest - c_rest)|^2`` of the part's Gaussians from their best
    rigid fit (Kabsch; the rotation is not differentiated, as ARAP's local rotations), in m^2.

    ARAP only asks each neighbourhood to move rigidly, so a thin part (a lid) may bend like a
    sheet at little cost; this asks it of the whole part - right for articulated objects made of
    rigid parts, wrong for cloth (off unless asked for, `RegWeights.rigid`).

    Args:
        means: (T, N, 3) positions; rest: (N, 3) rest positions; part: (N,) part id per point.
    """
    assert means.ndim == 3 and means.shape[1:] == rest.shape and part.shape == rest.shape[:1], (
        means.shape, rest.shape, part.shape)
    terms = []
    for p in torch.unique(part).tolist():
        sel = part == p
        if int(sel.sum()) < 3:
            continue
        x, r = means[:, sel], rest[sel]
        xc, rc = x - x.mean(1, keepdim=True), r - r.mean(0)
        residual = xc - rc @ svd_rotations((xc.transpose(1, 2) @ rc).detach()).transpose(1, 2)
        terms.append(residual.square().sum(-1).mean())
    return torch.stack(terms).mean() if terms else means.new_zeros(())


def turn(means: Tensor, rest: Tensor) -> Tensor:
    """How far an object has turned (or bent) from its rest pose: mean over frames and
    Gaussians of ``|(mu - c) - (mu_rest - c_rest)|^2`` (m^2), the Gaussians' offsets from their
    centroid against the same offsets at rest. Carried by a translation alone it is 0; turned
    rigidly by an angle theta it is ``2 (1 - cos theta)`` times the mean squared distance of the
    Gaussians from the rotation's axis placed through the centroid. It pulls towards no turn, not
    towards the right one (a scripted pick turns the banana 4-18 degrees).

    Args:
        means: (T, N, 3) positions; rest: (N, 3) rest positions.
    """
    assert means.ndim == 3 and means.shape[1:] == rest.shape, (means.shape, rest.shape)
    offsets = means - means.mean(1, keepdim=True)
    return (offsets - (rest - rest.mean(0))).square().sum(-1).mean()


class HeightField(NamedTuple):
    """The static scene's top surface (`static_tops`): ``top`` (I, J) heights, -inf where the
    scene has nothing; square (i, j) spans ``origin + cell * (i, j)`` to one ``cell`` further."""

    top: Tensor
    origin: Tensor
    cell: float


def static_tops(points: Tensor, cell: float = 0.01) -> HeightField:
    """The highest of the static scene's ``points`` (N >= 1, 3) in each ``cell``-sized square of
    the xy plane and its 8 neighbours (so it reaches 1-2 squares beside what is there), over the
    points' whole xy extent; z is up. A column's highest point counts as solid below it (an
    overhang, a lamp's head over the table, is floor too). For `sink`."""
    points = points.detach()
    origin = points[:, :2].min(0).values - cell
    ij = ((points[:, :2] - origin) / cell).floor().long()
    shape = (int(ij[:, 0].max()) + 2, int(ij[:, 1].max()) + 2)
    flat = torch.full((shape[0] * shape[1],), float("-inf"), dtype=points.dtype, device=points.device)
    flat = flat.scatter_reduce(0, ij[:, 0] * shape[1] + ij[:, 1], points[:, 2], "amax")
    top = torch.nn.functional.max_pool2d(flat.view(1, 1, *shape), 3, stride=1, padding=1)[0, 0]
    return HeightField(top, origin, cell)


def sink(means: Tensor, field: HeightField, margin: float = 0.005) -> Tensor:
    """How far points sink into the static scene from above: mean over (T, N) of
    ``relu(top(x, y) - margin - z)^2`` (m^2), ``top`` the `static_tops` height field under each
    point (not differentiated; the gradient moves points up only). A carried object cannot pass
    through the table or the plate it is put on; a flow may otherwise hide it in them (what a
    prior asks to erase where the object lies). Points outside the field count 0; ``margin``
    leaves the object's own resting contact alone.

    Args:
        means: (T, N, 3) positions; field: `static_tops` of the static scene's points.
    """
    top, origin, cell = field.top.detach(), field.origin, field.cell
    ij = ((means[..., :2].detach() - origin) / cell).floor().long()
    inside = (ij >= 0).all(-1) & (ij[..., 0] < top.shape[0]) & (ij[..., 1] < top.shape[1])
    floor = top[ij[..., 0].clamp(0, top.shape[0] - 1), ij[..., 1].clamp(0, top.shape[1] - 1)]
    floor = torch.where(inside, floor, torch.full_like(floor, float("-inf")))
    return (floor - margin - means[..., 2]).clamp(min=0).square().mean()


def part_overlap(means: Tensor, rest: Tensor, part: Tensor, hulls: tuple[Tensor, ...],
                 margin: float = 0.002, max_points: int = 256) -> Tensor:
    """How far the parts of one object pass through each other: mean over frames and the other
    parts' points of ``relu(depth - depth_at_rest - margin)^2`` (m^2), where a point's depth
    is how far inside a part's convex hull (`flowgen.parts.part_hulls`) it is, in that part's
    frame (the best rigid fit of its tested points at the frame, the rotation not
    differentiated, as `part_rigidity`). Rigid parts cannot pass through each other: a lamp's
    head turned into its own arm, a lid closed through its base. Points inside at rest (where two parts meet at a
    joint) count only what they sink deeper, beyond ``margin``. At most ``max_points`` points
    of each part are tested (every k-th).

    Args:
        means: (T, N, 3) positions; rest: (N, 3) rest positions; part: (N,) part id per point;
        hulls: per part id, (F, 4) facet planes, (0, 4) for a part with no solid.
    """
    assert means.ndim == 3 and means.shape[1:] == rest.shape and part.shape == rest.shape[:1], (
        means.shape, rest.shape, part.shape)
    ids = [p for p in range(len(hulls)) if int((part == p).sum()) >= 3]
    rows = {p: torch.nonzero(part == p).squeeze(1) for p in ids}
    rows = {p: r[:: max(1, -(-len(r) // max_points))] for p, r in rows.items()}
    terms = []
    for p in ids:
        others = [rows[q] for q in ids if q != p]
        if len(hulls[p]) == 0 or not others:  # no solid, or the other parts too small to test
            continue
        others = torch.cat(others)
        normal, offset = hulls[p][:, :3].to(means), hulls[p][:, 3].to(means)
        x, r = means[:, rows[p]], rest[rows[p]]  # the part's frame from its tested points
        xc, rc = x.mean(1, keepdim=True), r.mean(0)
        rot = svd_rotations(((x - xc).transpose(1, 2) @ (r - rc)).detach())  # rest offsets -> current
        # the other parts' points in part p's rest frame: r = R^T (x - c_t) + c_rest
        local = (means[:, others] - xc) @ rot + rc
        depth = -(local @ normal.T + offset).amax(-1)  # (T, M): > 0 inside
        at_rest = -(rest[others] @ normal.T + offset).amax(-1)
        terms.append(torch.relu(depth - at_rest.clamp(min=0) - margin).square().mean())
    return torch.stack(terms).mean() if terms else means.new_zeros(())


def arap(graph: ArapGraph, deformed: Tensor) -> Tensor:
    """ARAP energy of (T, M, 3) deformed near-surface points, per edge (mean squared
    residual in m^2), so its weight does not depend on |S|."""
    return arap_energy(graph, deformed) / max(graph.num_edges, 1)


def minimal_motion(means: Tensor, rest: Tensor, scale: float = 0.005, part: Tensor | None = None,
                   part_weight: dict[int, float] | None = None) -> Tensor:
    """A robust pull towards not moving: mean over (T, N) of Welsch's
    ``1 - exp(-d^2 / (2 scale^2))`` of the displacement ``d`` from the (N, 3) rest positions.

    Its pull peaks at ``d = scale`` and vanishes for ``d >> scale``: it holds still what the
    video barely moves (one camera leaves depth weakly constrained, so a static part would
    otherwise drift along the viewing ray) and leaves alone what clearly moves, instead of
    dragging a turning lid back towards its rest pose (what an L1 or L2 penalty does).

    With ``part`` (N,) the penalty is on each part's mean displacement magnitude instead (mean
    over frames and parts): a lid turning about its hinge escapes as a whole, while per point
    its Gaussians near the hinge (which barely move) would hold the whole rigid lid back;
    ``part_weight`` (part id -> factor, default 1) weighs the parts.
    """
    d2 = (means - rest).square().sum(-1)
    if part is None:
        return (1 - torch.exp(-d2 / (2 * scale * scale))).mean()
    terms = []
    for p in torch.unique(part).tolist():
        mean = (d2[:, part == p] + 1e-12).sqrt().mean(-1)  # (T,)
        factor = 1.0 if part_weight is None else part_weight.get(p, 1.0)
        terms.append(factor * (1 - torch.exp(-mean.square() / (2 * scale * scale))))
    return torch.stack(terms).mean()


def contact(means: Tensor, pairs: Tensor, rest: Tensor, group: Tensor, closest: int = 16,
            smooth: float = 0.0) -> Tensor:
    """Parts that touch at rest keep touching: for each pair of parts, the mean distance of its
    ``closest`` nearest point pairs stays at its rest value (absolute difference, m; with
    ``smooth`` > 0 the smooth L1 of the difference, quadratic below ``smooth`` m, so a joint's
    few millimetres of play do not cost a constant-size gradient).

    A hinge keeps the pairs on its axis together while the rest of the lid swings away, so the
    true motion costs nothing; a part sliding off or into its neighbour (along the viewing ray,
    where one camera barely sees it) changes every pair's distance and is penalised.

    Args:
        means: (T, N, 3) positions; pairs: (E, 2) indices into N; rest: (E,) rest distances;
        group: (E,) which pair of parts each pair joins.
    """
    if pairs.shape[0] == 0:
        return means.new_zeros(())
    dist = (means[:, pairs[:, 0]] - means[:, pairs[:, 1]]).norm(dim=-1)  # (T, E)
    terms = []
    for g in torch.unique(group).tolist():
        sel = group == g
        k = min(closest, int(sel.sum()))
        now = dist[:, sel].topk(k, dim=-1, largest=False).values.mean(-1)  # (T,)
        then = rest[sel].topk(k, largest=False).values.mean()
        gap = now - then
        terms.append(torch.nn.functional.smooth_l1_loss(gap, torch.zeros_like(gap), beta=smooth)
                     if smooth > 0 else gap.abs().mean())
    return torch.stack(terms).mean()


def still(displacement: Tensor, mask: Tensor) -> Tensor:
    """Mean over frames and pixels of ``mask * |displacement|^2``: the rendered 3D displacement
    since frame 0, ``mu^t - mu^0``, where the video shows no change (mask (T, H, W) from
    `flowgen.priors.video.still_pixels`), in m^2.

    Args:
        displacement: (T, H, W, 3) render of the Gaussians' displacement since rest.
        mask: (T, H, W) 1 on still pixels.
    """
    assert displacement.shape[:-1] == mask.shape, (displacement.shape, mask.shape)
    return (displacement.square().sum(-1) * mask).mean()
