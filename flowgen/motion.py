"""The 4D model at given frames: the Fenwick stores queried, the control points' skinning
(`flowgen.skinning`), then each part's rigid motion.

Part motion (``FlowConfig.part_motion``, an extension outside the paper for objects made of
rigid parts): each part also gets one rigid motion per frame, in a Fenwick store of its own,
turning it about a pivot - the centre of its contacts with other parts (a lid's hinge), or its
centroid when it touches none (`flowgen.parts.part_joints`) - after the control points'
skinning. Parts resting on a static object (`flowgen.parts.supported_parts`) have none: the
minimal-motion prior holds them by their control points.

    x^t = R_p^t (x_cf^t - c_p) + c_p + T_p^t,        q^t = r_p^t ⊗ q_cf^t

Along a chain of parts (base -> arm -> head) a part's motion is carried by the one it hangs
from, as a joint is. The control points then carry only what the parts' rigid motions do not;
a lid turned by the prior moves through 6 numbers per Fenwick node instead of through every
control point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from flowgen.fenwick import query_all
from flowgen.quat import quat_identity, quat_multiply, quat_normalize, quat_to_matrix
from flowgen.skinning import Deformed, deform

if TYPE_CHECKING:
    from flowgen.model import MovingObject

__all__ = ["deform_object", "deform_surface"]


def _motions(obj: MovingObject, frames: Tensor, use_fine: bool):
    coarse_q, coarse_t = query_all(obj.coarse_store)
    coarse = (coarse_q[frames], coarse_t[frames])
    if not use_fine or obj.fine_store is None:
        return coarse, None
    fine_q, fine_t = query_all(obj.fine_store)
    return coarse, (fine_q[frames], fine_t[frames])


def _part_transforms(obj: MovingObject, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each part's rigid motion at ``frames``, carried along its chain: rotations (T, P, 3, 3),
    their quaternions (T, P, 4) and offsets (T, P, 3), ``x -> R x + b``."""
    quats, trans = query_all(obj.part_store)
    quats, trans = quat_normalize(quats[frames]), trans[frames]
    held = torch.zeros(quats.shape[1], dtype=torch.bool, device=quats.device)
    held[obj.supported] = True  # what rests on a static object moves by its control points only
    quats = torch.where(held[:, None], quat_identity(len(held), dtype=quats.dtype, device=quats.device), quats)
    trans = torch.where(held[:, None], torch.zeros(()), trans)
    rot = quat_to_matrix(quats)
    pivot = obj.part_pivot
    offset = pivot - (rot @ pivot[:, :, None])[..., 0] + trans  # turn about the pivot, then move
    rots, qs, offsets = [None] * len(pivot), [None] * len(pivot), [None] * len(pivot)

    def resolve(p: int) -> None:
        if rots[p] is not None:
            return
        above = int(obj.part_parent[p]) if obj.part_parent is not None else -1
        if above < 0:
            rots[p], qs[p], offsets[p] = rot[:, p], quats[:, p], offset[:, p]
            return
        resolve(above)  # the chain carries the joint: world = parent's motion after this part's
        rots[p] = rots[above] @ rot[:, p]
        qs[p] = quat_multiply(qs[above], quats[:, p])
        offsets[p] = (rots[above] @ offset[:, p, :, None])[..., 0] + offsets[above]

    for p in range(len(pivot)):
        resolve(p)
    return torch.stack(rots, 1), torch.stack(qs, 1), torch.stack(offsets, 1)


def _move_parts(obj: MovingObject, frames: Tensor, part: Tensor, deformed: Deformed) -> Deformed:
    """``deformed`` (points of parts ``part``) carried by the parts' rigid motions at ``frames``."""
    if obj.part_store is None or obj.part_pivot is None:
        return deformed
    rot, quats, offset = _part_transforms(obj, frames)
    points = (rot[:, part] @ deformed.points[..., None])[..., 0] + offset[:, part]
    turned = None if deformed.quats is None else quat_multiply(quats[:, part], deformed.quats)
    return Deformed(points, turned)


def deform_object(obj: MovingObject, frames: Tensor, use_fine: bool) -> Deformed:
    """The object's Gaussians at ``frames`` (T,): means (T, N, 3) and quats (T, N, 4)."""
    coarse, fine = _motions(obj, frames, use_fine)
    return _move_parts(obj, frames, obj.part, deform(obj.rest.means, obj.coarse, coarse, obj.binding,
                                                     obj.fine if fine else None, fine, obj.rest.quats))


def deform_surface(obj: MovingObject, frames: Tensor, use_fine: bool) -> Tensor:
    """(T, M, 3) the near-surface ARAP points at ``frames``, by the same skinning."""
    coarse, fine = _motions(obj, frames, use_fine)
    moved = deform(obj.surface, obj.coarse, coarse, obj.surface_binding, obj.fine if fine else None, fine)
    if obj.surface_part is None:
        return moved.points
    return _move_parts(obj, frames, obj.surface_part, moved).points

