"""The 4D model: per moving object, Gaussians skinned by coarse + fine control points whose
motion lives in Fenwick trees (DESIGN.md §4); static objects are Gaussians that never move.

Appearance: each Gaussian has an albedo; with ``shading`` the rendered colour is

    c_i^t = albedo_i * (ambient + diffuse * max(0, n_i^t . l))

with one global light ``l`` and the Gaussian's normal ``n_i^t`` turned by the same skinning
as its rotation (flat Gaussians carry their surface normal as the third axis). A lid that
turns away from the light then darkens in the render as it does in the video, instead of the
darkening being explained by a wrong pose (the findings note: blue 169 -> 88 while closing).

Parts: a Gaussian, an ARAP point or a control point belongs to one part (mesh connected
component, `flowgen.control`), and binds only to control points of its part; ARAP edges stay
within a part. Where two parts touch at rest (a hinge), pairs of their Gaussians are kept for
the contact term (`flowgen.losses.contact`), which holds the parts together without coupling
their motions.

Part motion (``FlowConfig.part_motion``, an extension outside the paper for objects made of
rigid parts): each part also gets one rigid motion per frame, in a Fenwick store of its own,
turning it about a pivot - the centre of its contacts with other parts (a lid's hinge), or its
centroid when it touches none - after the control points' skinning (parts resting on a static
object, `supported_parts`, have none: the minimal-motion prior holds them by their control
points, and a base free to swing about its own hinge drifted 9 cm):

    x^t = R_p^t (x_cf^t - c_p) + c_p + T_p^t,        q^t = r_p^t ⊗ q_cf^t

Along a chain of parts (base -> arm -> head, `part_joints`) a part's motion is carried by the
one it hangs from, as a joint is. The control points then carry only what the parts' rigid
motions do not; a lid turned by the prior moves through 6 numbers per Fenwick node instead of
through every control point (measured in docs/trained-prior.md).

The model is a frozen dataclass of tensors; the optimised ones are ``torch.nn.Parameter``
leaves, listed by :func:`parameters` under stable names (checkpoints, optimiser groups).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import trimesh
from torch import Tensor

from chord_robot.errors import InputError
from chord_robot.scene import Scene, SceneObject
from flowgen.arap import ArapGraph, arap_graph
from flowgen.config import FlowConfig
from flowgen.control import ObjectControls, object_controls, point_cloud_field, point_groups
from flowgen.fenwick import DeformationStore, as_parameters, fenwick_identity, per_frame_identity, query_all
from flowgen.gaussians import Gaussians, from_object
from flowgen.mesh_fit import fit_to_mesh
from flowgen.quat import quat_identity, quat_multiply, quat_normalize, quat_to_matrix
from flowgen.skinning import ControlLevel, Deformed, HierarchyBinding, bind_hierarchy, deform

__all__ = [
    "Light",
    "MovingObject",
    "SceneModel",
    "StaticObject",
    "albedo",
    "build_model",
    "contact_pairs",
    "deform_object",
    "deform_surface",
    "gaussian_normals",
    "parameter_group",
    "parameters",
    "part_joints",
    "rest_gaussians",
    "shade",
]


@dataclass(frozen=True)
class Light:
    """One directional light plus ambient, shared by the scene.

    Attributes:
        direction: (3,) towards the light (normalised when used).
        ambient: () softplus-parametrised ambient term.
        diffuse: () softplus-parametrised diffuse term.
    """

    direction: Tensor
    ambient: Tensor
    diffuse: Tensor


@dataclass(frozen=True)
class MovingObject:
    """An object that may deform.

    Attributes:
        name: scene object name.
        rest: its Gaussians at rest (``rest.colors`` are the scan's, the albedo prior).
        albedo_logit: (N, 3) logit of the albedo.
        log_scales: (N, 3) the Gaussians' log standard deviations (fitted in the appearance
            stage: the sampled discs overlap the surface's edges, which biases depth).
        opacity_logit: (N,) logit of the opacities (fitted with the scales).
        part: (N,) part id of each Gaussian.
        coarse: coarse control level (log-scales and rotations are parameters).
        fine: fine control level, or None.
        binding: Gaussians -> controls.
        coarse_store: Fenwick nodes (or per-frame rows, ``deformation_store``) of the coarse controls.
        fine_store: the same of the fine controls, or None.
        surface: (M, 3) near-surface points S (ARAP).
        surface_binding: S -> controls.
        arap: the ARAP graph of S (edges within a part).
        controls: the control initialisation (voxel size, parts), for export.
        contact: (P, 2) int64 pairs of Gaussians of two different parts that touch at rest
            (closer than 1.5 sample spacings); empty for a one-part object.
        contact_rest: (P,) their rest distances.
        contact_group: (P,) int64 id of the pair of parts each pair joins.
        supported: int64 ids of the parts that rest on a static object (their Gaussians come
            within SUPPORT_DISTANCE of it at rest: a laptop's base on the table, not its lid).
        part_store: per-part rigid motions (K = number of part ids) with ``part_motion``, else None.
        part_pivot: (P, 3) the point each part turns about (see the module docstring).
        part_parent: (P,) int64 the part each part hangs from (its motion carries this one), -1: none.
        surface_part: (M,) int64 part id of each near-surface point.
    """

    name: str
    rest: Gaussians
    albedo_logit: Tensor
    log_scales: Tensor
    opacity_logit: Tensor
    part: Tensor
    coarse: ControlLevel
    fine: ControlLevel | None
    binding: HierarchyBinding
    coarse_store: DeformationStore
    fine_store: DeformationStore | None
    surface: Tensor
    surface_binding: HierarchyBinding
    arap: ArapGraph
    controls: ObjectControls
    contact: Tensor
    contact_rest: Tensor
    contact_group: Tensor
    supported: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    part_store: DeformationStore | None = None
    part_pivot: Tensor | None = None
    part_parent: Tensor | None = None
    surface_part: Tensor | None = None


@dataclass(frozen=True)
class StaticObject:
    """An object that never moves (rendered when no background image is known).

    Attributes:
        name: scene object name.
        rest: its Gaussians.
        albedo_logit: (N, 3) logit of the albedo.
        log_scales: (N, 3) log standard deviations.
        opacity_logit: (N,) logit of the opacities.
    """

    name: str
    rest: Gaussians
    albedo_logit: Tensor
    log_scales: Tensor
    opacity_logit: Tensor


@dataclass(frozen=True)
class SceneModel:
    """All objects of a scene and the light.

    Attributes:
        moving: the objects that may move, in scene order.
        static: the static ones.
        light: the shared light.
        num_frames: T.
        shading: whether colours are shaded (see the module docstring).
    """

    moving: tuple[MovingObject, ...]
    static: tuple[StaticObject, ...]
    light: Light
    num_frames: int
    shading: bool


def _logit(colors: Tensor) -> Tensor:
    c = colors.clamp(0.02, 0.98)
    return torch.log(c / (1 - c))


def _softplus_inverse(x: float) -> float:
    return float(np.log(np.expm1(x)))


def _object_controls(obj: SceneObject, config: FlowConfig) -> tuple[ObjectControls, trimesh.Trimesh | None]:
    if obj.kind == "mesh":
        mesh = trimesh.Trimesh(obj.points, obj.faces, process=False)
        return object_controls(mesh, config.controls), mesh
    return object_controls(point_cloud_field(obj.points), config.controls), None


def contact_pairs(means: np.ndarray, part: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of points of different parts closer than ``factor`` x the median nearest-neighbour
    spacing, and the id of the pair of parts each joins: ((P, 2), (P,)) int64."""
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


def rest_gaussians(obj: SceneObject, count: int, config: FlowConfig, rng: np.random.Generator,
                   log: Callable[[str], None] | None = None) -> Gaussians:
    """The Gaussians of ``obj`` at rest: `from_object`, then, for a mesh, fitted to renders of
    the mesh (`flowgen.mesh_fit`) unless ``config.mesh_fit.enabled`` is False; ``log`` gets
    one line per fit."""
    rest = from_object(obj, count, rng)
    if obj.kind == "mesh" and config.mesh_fit.enabled:
        rest, fit = fit_to_mesh(rest, obj, config.mesh_fit, config.seed)
        if log is not None:
            log(f"{obj.name}: Gaussians fitted to {config.mesh_fit.views} mesh renders, loss {fit.loss_first:.3f} "
                f"-> {fit.loss_last:.3f} ({rest.num:,} Gaussians, {fit.iterations} steps, {fit.seconds:.1f} s)")
    return rest


def _moving(obj: SceneObject, config: FlowConfig, rng: np.random.Generator,
            log: Callable[[str], None] | None = None) -> MovingObject:
    rest = rest_gaussians(obj, config.num_gaussians, config, rng, log)
    controls, mesh = _object_controls(obj, config)
    part = torch.as_tensor(point_groups(controls, rest.means.numpy(), mesh), dtype=torch.long)
    levels = []
    for init in controls.levels[:2]:
        num = len(init.centres)
        levels.append(ControlLevel(
            centres=torch.as_tensor(init.centres, dtype=torch.float32),
            log_scales=torch.nn.Parameter(torch.log(torch.as_tensor(init.scales, dtype=torch.float32))),
            rotations=torch.nn.Parameter(quat_identity(num)),
            group=torch.as_tensor(init.group, dtype=torch.long),
        ))
    coarse, fine = levels[0], (levels[1] if len(levels) > 1 else None)
    k = config.skin_neighbours
    surface = torch.as_tensor(controls.surface_points, dtype=torch.float32)
    surface_group = torch.as_tensor(controls.surface_group, dtype=torch.long)
    identity = per_frame_identity if config.deformation_store == "per-frame" else fenwick_identity
    stores = [as_parameters(identity(config.num_frames, lv.num_controls)) for lv in levels]
    pairs, pair_group = contact_pairs(rest.means.numpy(), part.numpy())
    pairs_t = torch.as_tensor(pairs, dtype=torch.long)
    part_store = part_pivot = part_parent = None
    if config.part_motion:
        part_pivot, part_parent = part_joints(rest.means, part, pairs_t)
        part_store = as_parameters(identity(config.num_frames, len(part_pivot)))
    return MovingObject(
        name=obj.name,
        rest=rest,
        albedo_logit=torch.nn.Parameter(_logit(rest.colors)),
        log_scales=torch.nn.Parameter(rest.log_scales.clone()),
        opacity_logit=torch.nn.Parameter(rest.opacity_logits.clone()),
        part=part,
        coarse=coarse,
        fine=fine,
        binding=bind_hierarchy(rest.means, coarse, fine, k, part),
        coarse_store=stores[0],
        fine_store=stores[1] if fine is not None else None,
        surface=surface,
        surface_binding=bind_hierarchy(surface, coarse, fine, k, surface_group),
        arap=arap_graph(surface, config.arap_neighbours, surface_group),
        controls=controls,
        contact=pairs_t,
        contact_rest=(rest.means[pairs_t[:, 0]] - rest.means[pairs_t[:, 1]]).norm(dim=-1),
        contact_group=torch.as_tensor(pair_group, dtype=torch.long),
        part_store=part_store,
        part_pivot=part_pivot,
        part_parent=part_parent,
        surface_part=surface_group,
    )


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


def build_model(scene: Scene, config: FlowConfig, log: Callable[[str], None] | None = None) -> SceneModel:
    """The initial model of ``scene``: identity motion, scan colours (mesh objects' Gaussians
    fitted to renders of the mesh, `rest_gaussians`), a light from above.

    Raises InputError when the scene has no movable object. ``log`` gets one-line messages
    (the mesh fits).
    """
    if not scene.movable():
        raise InputError(
            f"{scene.source or 'the scan'} has no movable object (every object is static: "
            f"{', '.join(scene.objects)}); label the object to animate, or name it other than a support"
        )
    rng = np.random.default_rng(config.seed)
    moving, static = [], []
    for obj in scene.objects.values():
        if obj.static:
            rest = rest_gaussians(obj, config.num_static_gaussians, config, rng, log)
            static.append(StaticObject(obj.name, rest, torch.nn.Parameter(_logit(rest.colors)),
                                       torch.nn.Parameter(rest.log_scales.clone()),
                                       torch.nn.Parameter(rest.opacity_logits.clone())))
        else:
            moving.append(_moving(obj, config, rng, log))
    if static:
        moving = [replace(obj, supported=supported_parts(obj, static)) for obj in moving]
        moving = [obj if obj.part_store is None else
                  replace(obj, **dict(zip(("part_pivot", "part_parent"),
                                          part_joints(obj.rest.means, obj.part, obj.contact, obj.supported))))
                  for obj in moving]
    light = Light(
        direction=torch.nn.Parameter(torch.tensor([0.3, -0.4, 0.87])),
        ambient=torch.nn.Parameter(torch.tensor(_softplus_inverse(0.6))),
        diffuse=torch.nn.Parameter(torch.tensor(_softplus_inverse(0.4))),
    )
    return SceneModel(tuple(moving), tuple(static), light, config.num_frames, config.shading)


def parameters(model: SceneModel) -> dict[str, Tensor]:
    """Every optimised tensor under a stable name ``object/what`` (checkpoint keys)."""
    out: dict[str, Tensor] = {}
    for obj in model.moving:
        for level, store, tag in ((obj.coarse, obj.coarse_store, "coarse"), (obj.fine, obj.fine_store, "fine")):
            if level is None or store is None:
                continue
            out[f"{obj.name}/{tag}/quats"] = store.quats
            out[f"{obj.name}/{tag}/trans"] = store.trans
            out[f"{obj.name}/{tag}/log_scales"] = level.log_scales
            assert level.rotations is not None
            out[f"{obj.name}/{tag}/rotations"] = level.rotations
        if obj.part_store is not None:
            out[f"{obj.name}/part/quats"] = obj.part_store.quats
            out[f"{obj.name}/part/trans"] = obj.part_store.trans
        out[f"{obj.name}/albedo"] = obj.albedo_logit
        out[f"{obj.name}/log_scale"] = obj.log_scales
        out[f"{obj.name}/opacity"] = obj.opacity_logit
    for obj in model.static:
        out[f"{obj.name}/albedo"] = obj.albedo_logit
        out[f"{obj.name}/log_scale"] = obj.log_scales
        out[f"{obj.name}/opacity"] = obj.opacity_logit
    out["light/direction"] = model.light.direction
    out["light/ambient"] = model.light.ambient
    out["light/diffuse"] = model.light.diffuse
    return out


def parameter_group(name: str) -> str:
    """The optimiser group of a parameter name: deform, part, part_translation, control_scale, control_rotation,
    color, gaussian_scale, opacity or light (each has its own learning-rate schedule)."""
    if name.startswith("light/"):
        return "light"
    if name.endswith("/part/quats"):
        return "part"
    if name.endswith("/part/trans"):
        return "part_translation"
    leaf = name.rsplit("/", 1)[-1]
    return {"quats": "deform", "trans": "deform", "log_scales": "control_scale",
            "rotations": "control_rotation", "albedo": "color", "log_scale": "gaussian_scale",
            "opacity": "opacity"}[leaf]


def _motions(obj: MovingObject, frames: Tensor, use_fine: bool):
    coarse_q, coarse_t = query_all(obj.coarse_store)
    coarse = (coarse_q[frames], coarse_t[frames])
    if not use_fine or obj.fine_store is None:
        return coarse, None
    fine_q, fine_t = query_all(obj.fine_store)
    return coarse, (fine_q[frames], fine_t[frames])


def _part_transforms(obj: MovingObject, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each part's rigid motion at ``frames``, carried along its chain: rotations (F, P, 3, 3),
    their quaternions (F, P, 4) and offsets (F, P, 3), ``x -> R x + b``."""
    quats, trans = query_all(obj.part_store)
    quats, trans = quat_normalize(quats[frames]), trans[frames]
    held = torch.zeros(quats.shape[1], dtype=torch.bool)
    held[obj.supported] = True  # what rests on a static object moves by its control points only
    quats = torch.where(held[:, None], quat_identity(len(held)), quats)
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
    """The object's Gaussians at ``frames`` (F,): means (F, N, 3) and quats (F, N, 4)."""
    coarse, fine = _motions(obj, frames, use_fine)
    return _move_parts(obj, frames, obj.part, deform(obj.rest.means, obj.coarse, coarse, obj.binding,
                                                     obj.fine if fine else None, fine, obj.rest.quats))


def deform_surface(obj: MovingObject, frames: Tensor, use_fine: bool) -> Tensor:
    """(F, M, 3) the near-surface ARAP points at ``frames``, by the same skinning."""
    coarse, fine = _motions(obj, frames, use_fine)
    moved = deform(obj.surface, obj.coarse, coarse, obj.surface_binding, obj.fine if fine else None, fine)
    if obj.surface_part is None:
        return moved.points
    return _move_parts(obj, frames, obj.surface_part, moved).points


def gaussian_normals(quats: Tensor) -> Tensor:
    """(..., 3) third axis (the flat Gaussians' normal) of (..., 4) wxyz rotations."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack((2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)), -1)


def albedo(logit: Tensor) -> Tensor:
    """(N, 3) albedo in (0, 1) from its logit."""
    return torch.sigmoid(logit)


def shade(model: SceneModel, albedo_rgb: Tensor, normals: Tensor | None) -> Tensor:
    """Colours (..., N, 3) of albedo (N, 3) under the model's light, for normals (..., N, 3).

    Without shading (or without normals, e.g. a 3DGS scan) the albedo is the colour.
    """
    if normals is None:
        return albedo_rgb
    if not model.shading:
        return albedo_rgb.expand(*normals.shape[:-1], 3)
    light = model.light
    direction = light.direction / light.direction.norm().clamp_min(1e-8)
    lambert = (normals @ direction).clamp_min(0.0)[..., None]
    ambient = torch.nn.functional.softplus(light.ambient)
    diffuse = torch.nn.functional.softplus(light.diffuse)
    return albedo_rgb * (ambient + diffuse * lambert)
