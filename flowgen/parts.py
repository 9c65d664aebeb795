"""Parts of a moving object at rest: which touch (contact pairs), which rest on a static object,
and the joints they turn about.

A Gaussian, an ARAP point or a control point belongs to one part (mesh connected component,
`flowgen.control`), and binds only to control points of its part; ARAP edges stay within a
part. Where two parts touch at rest (a hinge), pairs of their Gaussians are kept for the
contact term (`flowgen.losses.contact`), which holds the parts together without coupling their
motions. With ``FlowConfig.part_motion`` each part also turns about a pivot (`part_joints`),
carried along its chain of parts (`flowgen.motion`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from flowgen.model import MovingObject, StaticObject

__all__ = ["SUPPORT_DISTANCE", "contact_pairs", "part_hulls", "part_joints", "supported_parts"]


def contact_pairs(means: np.ndarray, part: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of points of different parts closer than ``factor`` x the median nearest-neighbour
    spacing, and the id of the pair of parts each joins: ((E, 2), (E,)) int64 for E pairs."""
    from scipy.spatial import cKDTree

    pairs, groups = [np.zeros((0, 2), np.int64)], [np.zeros(0, np.int64)]
    ids = np.unique(part)
    if len(ids) < 2:
        return pairs[0], groups[0]
    spacing = float(np.median(cKDTree(means).query(means, k=2)[0][:, 1]))
    trees = {g: (np.flatnonzero(part == g), cKDTree(means[part == g])) for g in ids}
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            rows_a, _ = trees[ids[a]]
            rows_b, tree_b = trees[ids[b]]
            dist, idx = tree_b.query(means[rows_a], distance_upper_bound=factor * spacing)
            near = np.isfinite(dist)
            if near.any():
                pairs.append(np.stack((rows_a[near], rows_b[idx[near]]), 1))
                groups.append(np.full(int(near.sum()), a * len(ids) + b, np.int64))
    return np.concatenate(pairs), np.concatenate(groups)



def part_hulls(means: np.ndarray, part: np.ndarray, max_points: int = 256) -> tuple[Tensor, ...]:
    """For part ids 0..max: the (F, 4) float32 facet planes ``(n, b)`` of the convex hull of the
    part's points (unit outward normals; a point x is inside where ``n . x + b <= 0`` for every
    facet), the solid a rigid part occupies as far as its surface samples tell - a box, a rod or
    a shade as they are, a concave part larger than it is. The hull is of at most
    ``max_points`` of the part's points (every k-th: a few hundred facets, not thousands).
    (0, 4) for a part whose points span no volume (flat, or fewer than 4) and for every part of
    an object of one part (nothing to pass through)."""
    from scipy.spatial import ConvexHull, QhullError

    num = int(part.max()) + 1 if len(part) else 0
    empty = torch.zeros(0, 4)
    if len(np.unique(part)) < 2:
        return tuple(empty for _ in range(num))
    hulls = []
    for p in range(num):
        points = np.asarray(means[part == p], np.float64)
        points = points[:: max(1, -(-len(points) // max_points))]
        try:
            hull = ConvexHull(points) if len(points) >= 4 else None
        except QhullError:  # coplanar or collinear
            hull = None
        hulls.append(empty if hull is None else torch.as_tensor(hull.equations, dtype=torch.float32))
    return tuple(hulls)


def part_joints(means: Tensor, part: Tensor, contact: Tensor, roots: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """For part ids 0..max: (P, 3) the point each part turns about and (P,) int64 the part it
    hangs from (-1: none).

    With ``roots`` (the parts resting on a static object) the parts form chains out from the
    roots through their contacts (a lamp: base -> arm -> head): a part hangs from the part before
    it in the chain and turns about the mean midpoint of their contact pairs (the joint).
    Otherwise, and for parts no chain reaches, a part hangs from nothing and turns about the mean
    midpoint of all its contact pairs (a hinge), or its centroid if it touches no other part."""
    num = int(part.max()) + 1 if len(part) else 0
    pivots, parent = torch.zeros(num, 3), torch.full((num,), -1, dtype=torch.long)
    pa, pb = (part[contact[:, 0]], part[contact[:, 1]]) if len(contact) else (part[:0], part[:0])
    mid = (means[contact[:, 0]] + means[contact[:, 1]]) / 2 if len(contact) else means[:0]
    for p in range(num):
        touching = (pa == p) | (pb == p)
        if bool(touching.any()):
            pivots[p] = mid[touching].mean(0)
        elif bool((part == p).any()):
            pivots[p] = means[part == p].mean(0)
    if roots is None or not len(roots):
        return pivots, parent
    reached, frontier = set(roots.tolist()), list(roots.tolist())
    while frontier:
        above = frontier.pop(0)
        for p in range(num):
            joint = ((pa == above) & (pb == p)) | ((pa == p) & (pb == above))
            if p not in reached and bool(joint.any()):
                pivots[p], parent[p] = mid[joint].mean(0), above
                reached.add(p)
                frontier.append(p)
    return pivots, parent


SUPPORT_DISTANCE = 0.01
"""A part closer than this (m) to a static object at rest rests on it."""


def supported_parts(obj: MovingObject, static: list[StaticObject]) -> Tensor:
    """Ids of ``obj``'s parts that rest on one of the ``static`` objects (closer than
    SUPPORT_DISTANCE at rest)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(torch.cat([o.rest.means for o in static]).detach().numpy())
    dist, _ = tree.query(obj.rest.means.detach().numpy(), distance_upper_bound=SUPPORT_DISTANCE)
    near = torch.as_tensor(np.isfinite(dist))
    return torch.unique(obj.part[near])

