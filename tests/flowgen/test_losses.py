"""Loss terms with known values: the rendered 3D-flow loss, ARAP, SSIM, contact, motion."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen import losses
from flowgen.arap import arap_graph
from flowgen.fenwick import from_per_frame
from flowgen.model import build_model, deform_object
from flowgen.objective import _frames_and_slots, _pose, motion_objective, render_views
from flowgen.quat import quat_identity

from .conftest import tiny_config, tiny_prior

WEIGHTS = {"temporal": 1.0, "arap": 0.0, "motion": 0.0, "motion_scale": 0.005, "attach": 0.0, "still": 0.0}


def _translate(model, velocity: torch.Tensor) -> None:
    """Write a constant-velocity translation of every moving object into its coarse store."""
    for obj in model.moving:
        store = obj.coarse_store
        num_frames, k = store.num_frames, store.num_controls
        trans = torch.arange(num_frames, dtype=torch.float32)[:, None, None] * velocity.expand(1, k, 3)
        new = from_per_frame(quat_identity(num_frames, k), trans)
        with torch.no_grad():
            store.quats.copy_(new.quats)
            store.trans.copy_(new.trans)


def _flow_images(model, prior, frames):
    views = prior.views([torch.tensor(frames)], 1.0)
    needed, slot = _frames_and_slots(views)
    with torch.no_grad():
        posed = _pose(model, needed, use_fine=False)
        (_, _, flow, _, alpha), = list(render_views(model, views, posed, slot))
    return flow, alpha


def test_temporal_flow_loss_is_zero_for_a_static_scene_and_measures_motion(hinge_scene):
    config = tiny_config(num_frames=4)
    model, prior = build_model(hinge_scene, config), tiny_prior(4)
    flow, _ = _flow_images(model, prior, [1, 2, 3])
    assert losses.temporal_flow(flow).item() == 0.0
    objective = motion_objective(model, prior, prior.views([torch.tensor([2, 3])], 1.0), WEIGHTS, False)
    assert objective.terms["temporal"].item() == 0.0

    velocity = torch.tensor([0.01, -0.02, 0.0])  # m per frame
    _translate(model, velocity)
    flow, alpha = _flow_images(model, prior, [1, 2, 3])
    # every pixel shows alpha * v (one velocity), so the loss is |v|^2 * mean(alpha^2)
    expected = velocity.square().sum() * alpha.square().mean()
    assert losses.temporal_flow(flow).item() == pytest.approx(expected.item(), rel=1e-4)
    assert expected.item() > 1e-6
    objective = motion_objective(model, prior, prior.views([torch.tensor([2, 3])], 1.0), WEIGHTS, False)
    assert objective.terms["temporal"].item() > 0


def test_flow_loss_of_frame_one_uses_the_rest_pose(hinge_scene):
    config = tiny_config(num_frames=3)
    model, prior = build_model(hinge_scene, config), tiny_prior(3)
    _translate(model, torch.tensor([0.0, 0.0, 0.03]))
    flow, alpha = _flow_images(model, prior, [1])
    covered = alpha > 0.99
    assert torch.allclose(flow[covered][:, 2], torch.tensor(0.03) * alpha[covered], atol=1e-4)


def test_arap_is_zero_for_rigid_motion_and_positive_for_shear():
    gen = torch.Generator().manual_seed(0)
    rest = torch.rand(200, 3, generator=gen)
    graph = arap_graph(rest, 10)
    angle = torch.tensor(0.7)
    rot = torch.tensor([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1.0]])
    rigid = (rest @ rot.T + torch.tensor([0.3, -0.1, 0.2]))[None]
    assert losses.arap(graph, rigid).item() < 1e-10
    shear = rest.clone()
    shear[:, 0] += 0.5 * rest[:, 2]
    assert losses.arap(graph, shear[None]).item() > 1e-3


def test_ssim_tolerates_brightness_more_than_a_shift():
    gen = torch.Generator().manual_seed(1)
    small = torch.rand(1, 3, 12, 16, generator=gen)
    image = torch.nn.functional.interpolate(small, size=(48, 64), mode="bilinear").permute(0, 2, 3, 1)
    assert losses.ssim(image, image).item() == pytest.approx(1.0, abs=1e-6)
    darker = image * 0.8
    shifted = torch.roll(image, 3, dims=2)
    assert losses.l1(darker, image) > 0.5 * losses.l1(shifted, image)  # L1 sees both alike
    assert 1 - losses.ssim(darker, image) < 0.5 * (1 - losses.ssim(shifted, image))


def test_silhouette_and_minimal_motion():
    alpha = torch.zeros(2, 4, 4)
    mask = torch.zeros(2, 4, 4)
    mask[:, :2] = 1
    assert losses.silhouette(alpha, mask).item() == pytest.approx(0.5)
    rest = torch.rand(10, 3)
    assert losses.minimal_motion(rest[None].expand(3, 10, 3), rest).item() == 0.0
    step = torch.tensor([0.005, 0.0, 0.0])
    assert losses.minimal_motion((rest + step)[None], rest, 0.005).item() == pytest.approx(1 - math.exp(-0.5), rel=1e-5)
    # robust: the pull is strongest near `scale` and fades for large motions
    pull = []
    for d in (0.002, 0.005, 0.05):
        moved = (rest + torch.tensor([d, 0.0, 0.0])).requires_grad_()
        losses.minimal_motion(moved[None], rest, 0.005).backward()
        pull.append(moved.grad[:, 0].sum().item())
    assert pull[1] > pull[0] > 100 * pull[2] > 0


def test_contact_allows_a_hinge_and_penalises_a_slide_or_a_push(hinge_scene):
    config = tiny_config(num_frames=2)
    model = build_model(hinge_scene, config)
    obj = model.moving[0]
    assert obj.contact.shape[0] > 0 and obj.contact_rest.max() < 0.05
    lid = obj.part == obj.part[obj.contact[0, 0]]  # one of the two parts (which does not matter)
    means = obj.rest.means
    # turn the lid part 40 degrees about the hinge (the base's back top edge, along x)
    origin = torch.tensor([0.0, 0.1, 0.1])
    c, s = math.cos(math.radians(40)), math.sin(math.radians(40))
    rot = torch.tensor([[1.0, 0, 0], [0, c, s], [0, -s, c]])
    hinged = means.clone()
    hinged[lid] = (means[lid] - origin) @ rot.T + origin
    slid = means.clone()
    slid[lid] += torch.tensor([0.0, 0.01, -0.01])
    value = lambda m: losses.contact(m[None], obj.contact, obj.contact_rest, obj.contact_group).item()
    pressed = means.clone()
    pressed[lid] += torch.tensor([0.0, 0.0, -0.008])
    assert value(means) == 0.0
    assert value(hinged) < 2e-3
    assert value(slid) > 0.008
    assert value(pressed) > 0.002  # two-sided: pushing one part into the other costs too


def test_deformation_of_an_identity_model_is_the_rest_pose(hinge_scene):
    model = build_model(hinge_scene, tiny_config(num_frames=3))
    obj = model.moving[0]
    d = deform_object(obj, torch.arange(3), use_fine=True)
    assert torch.allclose(d.points, obj.rest.means.expand(3, -1, -1), atol=1e-6)
