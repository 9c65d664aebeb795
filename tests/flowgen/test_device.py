"""One device for the run (issue #19 item 1): the model, its optimiser state, the renders'
inputs and the regularisers on the run's device.

No GPU here, so the checks run on PyTorch's ``meta`` device, which (like CUDA) refuses to mix
its tensors with CPU ones in an operation: a tensor the loop makes on the CPU by mistake fails
the dry run. The rasteriser is the one step ``meta`` cannot run (its pixel pairs depend on
values); the dry run stands a shape-only differentiable function in for it, and the CPU
rasterisers are tested against each other elsewhere (gsplat against them on CUDA).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from flowgen import schedules
from flowgen.config import rigid_parts
from flowgen.model import MovingObject, build_model, model_tensors, parameters, to_device
from flowgen.objective import motion_objective
from flowgen.optimize import make_optimizer
from flowgen.priors.video import VideoPrior
from flowgen.raster.render import RenderOutput

from .conftest import tiny_config, tiny_prior


def _shape_only_render(means, quats, scales, opacities, features, viewmat, K, width, height, background=None,
                       backend="auto", **_):
    """(H, W, C) images that depend on every input (so gradients reach them), for ``meta``."""
    touch = means.sum() + quats.sum() + scales.sum() + opacities.sum()
    color = (features.mean(0) + 0.0 * touch).expand(height, width, features.shape[1])
    alpha = (opacities.mean() + 0.0 * touch).expand(height, width)
    return RenderOutput(color=color, alpha=alpha, depth=alpha)


def _host(path: str) -> bool:
    """Whether a `model_tensors` path is a moving object's field kept on the host."""
    host = {f.name for f in dataclasses.fields(MovingObject) if f.metadata.get("host")}
    parts = path.split(".")
    return parts[0] == "moving" and len(parts) == 3 and parts[2] in host


def _on(prior: VideoPrior, device: str) -> VideoPrior:
    """The prior with its guide videos on ``device``, as `chord_robot.app.flowrun` builds it."""
    return VideoPrior(tuple(g.to(device) for g in prior.guides), prior.ssim_weight, prior.silhouette_weight)


def test_to_device_moves_every_tensor_and_keeps_parameters_and_sharing(hinge_scene):
    model = build_model(hinge_scene, rigid_parts(tiny_config()))
    moved = to_device(model, "meta")
    tensors = model_tensors(moved)
    assert len(tensors) == len(model_tensors(model)) > 30
    on_host = {k for k in tensors if _host(k)}  # structure, read in Python
    assert {k.rsplit(".", 1)[1] for k in on_host} == {"part", "contact", "contact_group", "supported", "part_parent",
                                                        "surface_part"}
    assert {t.device.type for k, t in tensors.items() if k not in on_host} == {"meta"}, \
        [k for k, t in tensors.items() if t.device.type != "meta" and k not in on_host]
    assert {tensors[k].device.type for k in on_host} <= {"cpu"}
    before, after = parameters(model), parameters(moved)
    assert list(before) == list(after)
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in after.values())
    # the originals are untouched
    assert {t.device.type for t in model_tensors(model).values()} == {"cpu"}
    # a tensor held in two places (the near-surface points and the ARAP graph's rest) is
    # still one tensor, on the device
    obj, before_obj = moved.moving[0], model.moving[0]
    assert before_obj.arap.rest is before_obj.surface
    assert obj.arap.rest is obj.surface and obj.surface.device.type == "meta"
    again = to_device(moved, "meta")  # parameters become new leaves
    assert parameters(again)[f"{obj.name}/coarse/quats"] is not obj.coarse_store.quats


@pytest.mark.parametrize("use_fine", [False, True])
def test_a_motion_iteration_runs_on_the_models_device(hinge_scene, monkeypatch, use_fine):
    import flowgen.raster

    monkeypatch.setattr(flowgen.raster, "render", _shape_only_render)
    config = rigid_parts(tiny_config())  # every term: part motions, rigidity, contacts
    model = to_device(build_model(hinge_scene, config), "meta")
    prior = _on(tiny_prior(config.num_frames), "meta")
    views = prior.views([torch.tensor([1, 3])], 1.0)
    objective = motion_objective(model, prior, views, schedules.reg_weights(config, 5), use_fine)
    assert objective.total.device.type == "meta" and set(objective.terms) == {
        "photometric", "silhouette", "still", "temporal", "arap", "attach", "rigid", "motion"}
    optimizer = make_optimizer(parameters(model))
    objective.total.backward()
    optimizer.step()
    reached = [n for n, p in parameters(model).items() if p.grad is not None]
    assert any(n.endswith("coarse/quats") for n in reached) and any(n.endswith("/albedo") for n in reached)
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor) and t.dim() > 0]
    assert state and {t.device.type for t in state} == {"meta"}
    assert {t.device.type for k, t in model_tensors(model).items() if not _host(k)} == {"meta"}
