"""The 4D model and how it is built: per moving object, Gaussians skinned by coarse + fine
control points whose motion lives in Fenwick trees (DESIGN.md §4); static objects are Gaussians
that never move; one light (`flowgen.shading`).

With ``FlowConfig.part_motion`` each part of a moving object also gets a Fenwick store of rigid
motions and a joint (`flowgen.parts`); `flowgen.motion` poses the model at given frames.

The model is a frozen dataclass of tensors; the optimised ones are ``torch.nn.Parameter``
leaves, listed by :func:`parameters` under stable names (checkpoints, optimiser groups).
"""

from __future__ import annotations

import dataclasses
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
from flowgen.fenwick import DeformationStore, as_parameters, fenwick_identity, per_frame_identity
from flowgen.gaussians import Gaussians, from_object
from flowgen.mesh_fit import fit_to_mesh
from flowgen.parts import contact_pairs, part_hulls, part_joints, supported_parts
from flowgen.quat import quat_identity
from flowgen.shading import Light
from flowgen.skinning import ControlLevel, HierarchyBinding, bind_hierarchy

__all__ = [
    "MovingObject",
    "SceneModel",
    "StaticObject",
    "build_model",
    "model_tensors",
    "parameter_group",
    "parameters",
    "rest_gaussians",
    "to_device",
]


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
        contact: (E, 2) int64 pairs of Gaussians of two different parts that touch at rest
            (closer than 1.5 sample spacings); empty for a one-part object.
        contact_rest: (E,) their rest distances.
        contact_group: (E,) int64 id of the pair of parts each pair joins.
        supported: int64 ids of the parts that rest on a static object (their Gaussians come
            within SUPPORT_DISTANCE of it at rest: a laptop's base on the table, not its lid).
        part_store: per-part rigid motions (P = number of part ids) with ``part_motion``, else None.
        part_pivot: (P, 3) the point each part turns about (`flowgen.parts.part_joints`).
        part_parent: (P,) int64 the part each part hangs from (its motion carries this one), -1: none.

    The part ids, contact pairs and chain (``part``, ``contact``, ``contact_group``,
    ``supported``, ``part_parent``, ``surface_part``) are structure the loop reads in Python
    and indexes with: they stay on the host (`to_device`).
        surface_part: (M,) int64 part id of each near-surface point.
        part_hulls: per part id, (F, 4) the facet planes of its rest points' convex hull
            (`flowgen.parts.part_hulls`), for the overlap term; empty for a one-part object.
    """

    name: str
    rest: Gaussians
    albedo_logit: Tensor
    log_scales: Tensor
    opacity_logit: Tensor
    part: Tensor = field(metadata={"host": True})
    coarse: ControlLevel
    fine: ControlLevel | None
    binding: HierarchyBinding
    coarse_store: DeformationStore
    fine_store: DeformationStore | None
    surface: Tensor
    surface_binding: HierarchyBinding
    arap: ArapGraph
    controls: ObjectControls
    contact: Tensor = field(metadata={"host": True})
    contact_rest: Tensor
    contact_group: Tensor = field(metadata={"host": True})
    supported: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long), metadata={"host": True})
    part_store: DeformationStore | None = None
    part_pivot: Tensor | None = None
    part_parent: Tensor | None = field(default=None, metadata={"host": True})
    surface_part: Tensor | None = field(default=None, metadata={"host": True})
    part_hulls: tuple[Tensor, ...] = ()


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
        shading: whether colours are shaded (`flowgen.shading`).
    """

    moving: tuple[MovingObject, ...]
    static: tuple[StaticObject, ...]
    light: Light
    num_frames: int
    shading: bool

    @property
    def device(self) -> torch.device:
        """Where the model's tensors live (`to_device`)."""
        return self.light.direction.device


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
        log_scales = torch.log(torch.as_tensor(init.scales, dtype=torch.float32))
        if config.per_axis_control_scales:  # three equal scales: the rotation then matters
            log_scales = log_scales[:, None].repeat(1, 3)
        levels.append(ControlLevel(
            centres=torch.as_tensor(init.centres, dtype=torch.float32),
            log_scales=torch.nn.Parameter(log_scales),
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
        part_hulls=part_hulls(rest.means.numpy(), part.numpy()) if config.weights.overlap > 0 else (),
    )



def build_model(scene: Scene, config: FlowConfig, log: Callable[[str], None] | None = None,
                fit_static: bool = True) -> SceneModel:
    """The initial model of ``scene``: identity motion, scan colours (mesh objects' Gaussians
    fitted to renders of the mesh, `rest_gaussians`), a light from above.

    ``fit_static`` False keeps the static objects' sampled Gaussians unfitted (the scan's
    colours, as the exported flow then shows them): for a run whose loop never renders them
    (every view has a background image); the moving objects are the same.
    Raises InputError when the scene has no movable object. ``log`` gets one-line messages
    (the mesh fits).
    """
    if not scene.movable():
        raise InputError(
            f"{scene.source or 'the scan'} has no movable object (every object is static: "
            f"{', '.join(scene.objects)}); label the object to animate, or name it other than a support"
        )
    rng = np.random.default_rng(config.seed)
    static_config = config if fit_static else replace(config, mesh_fit=replace(config.mesh_fit, enabled=False))
    moving, static = [], []
    for obj in scene.objects.values():
        if obj.static:
            rest = rest_gaussians(obj, config.num_static_gaussians, static_config, rng, log)
            static.append(StaticObject(obj.name, rest, torch.nn.Parameter(_logit(rest.colors)),
                                       torch.nn.Parameter(rest.log_scales.clone()),
                                       torch.nn.Parameter(rest.opacity_logits.clone())))
        else:
            moving.append(_moving(obj, config, rng, log))
    if static:
        moving = [replace(obj, supported=torch.zeros(0, dtype=torch.long) if config.free_parts
                          else supported_parts(obj, static)) for obj in moving]
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


def to_device(model: SceneModel, device: torch.device | str) -> SceneModel:
    """The same model with every tensor on ``device`` (the run's) but structure read in Python
    (fields marked ``host``): parameters stay parameters (new leaves), and a tensor held in
    several places stays one tensor. Build the optimiser after moving (its state follows its
    parameters)."""
    device = torch.device(device)
    moved: dict[int, object] = {}

    def move(x):
        if id(x) in moved:
            return moved[id(x)]
        if isinstance(x, torch.nn.Parameter):
            out = torch.nn.Parameter(x.detach().to(device), requires_grad=x.requires_grad)
        elif isinstance(x, Tensor):
            out = x.to(device)
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            changes = {f.name: move(getattr(x, f.name)) for f in dataclasses.fields(x) if not f.metadata.get("host")}
            out = replace(x, **changes) if any(changes[k] is not getattr(x, k) for k in changes) else x
        elif isinstance(x, (tuple, list)):
            items = [move(v) for v in x]
            out = type(x)(items) if any(a is not b for a, b in zip(items, x)) else x
        elif isinstance(x, dict):
            out = {k: move(v) for k, v in x.items()}
        else:
            out = x
        moved[id(x)] = out
        return out

    return move(model)


def model_tensors(model: SceneModel) -> dict[str, Tensor]:
    """Every tensor the model holds under a dotted path (``moving.0.binding.coarse.weights`` ...),
    for checks of where they live."""
    out: dict[str, Tensor] = {}

    def walk(x, path: str) -> None:
        if isinstance(x, Tensor):
            out[path] = x
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name), f"{path}.{f.name}" if path else f.name)
        elif isinstance(x, (tuple, list)):
            for i, v in enumerate(x):
                walk(v, f"{path}.{i}")
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}")

    walk(model, "")
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
