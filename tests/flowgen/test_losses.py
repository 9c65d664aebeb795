"""Loss terms with known values: the rendered 3D-flow loss, ARAP, SSIM, contact, motion."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from flowgen import losses
from flowgen.arap import arap_graph
from flowgen.fenwick import from_per_frame
from flowgen.model import build_model
from flowgen.motion import deform_object
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


def test_acceleration_is_zero_at_constant_velocity_and_penalises_a_zig_zag(hinge_scene):
    t = torch.arange(5, dtype=torch.float32)[:, None, None]
    steady = t * torch.tensor([0.01, -0.02, 0.0]).expand(1, 3, 3)
    assert losses.acceleration(steady).item() == pytest.approx(0.0, abs=1e-12)
    zig = steady.clone()
    zig[1::2, :, 0] += 0.01  # odd frames 1 cm ahead: second differences of +-2 cm
    assert losses.acceleration(zig).item() == pytest.approx(0.02 ** 2, rel=1e-5)

    config = tiny_config(num_frames=5)
    model, prior = build_model(hinge_scene, config), tiny_prior(5)
    weights = {**WEIGHTS, "temporal": 0.0, "acceleration": 1.0}
    _translate(model, torch.tensor([0.01, -0.02, 0.0]))  # constant velocity: nothing to penalise
    views = prior.views([torch.tensor([1, 2, 3, 4])], 1.0)
    assert motion_objective(model, prior, views, weights, False).terms["acceleration"].item() < 1e-10
    with torch.no_grad():  # one Fenwick node 1 cm further: the trajectory kinks
        model.moving[0].coarse_store.trans[2] += torch.tensor([0.0, 0.0, 0.01])
    kinked = motion_objective(model, prior, views, weights, False).terms["acceleration"].item()
    assert kinked > 1e-6
    # frame 3 and its predecessor are no run of 3 consecutive frames: no term
    sparse = prior.views([torch.tensor([3])], 1.0)
    assert "acceleration" not in motion_objective(model, prior, sparse, weights, False).terms


def test_part_rigidity_is_zero_for_rigid_parts_and_catches_a_bent_part():
    from scipy.spatial.transform import Rotation

    g = torch.Generator().manual_seed(0)
    rest = torch.rand(200, 3, generator=g) * torch.tensor([0.2, 0.3, 0.01])  # two thin plates
    part = (torch.arange(200) >= 100).long()
    turn = torch.as_tensor(Rotation.from_rotvec([0.0, -0.8, 0.0]).as_matrix(), dtype=torch.float32)
    rigid = rest.clone()
    rigid[part == 1] = rest[part == 1] @ turn.T + torch.tensor([0.0, 0.0, 0.05])  # each part rigid
    frames = torch.stack([rest, rigid])
    assert losses.part_rigidity(frames, rest, part).item() < 1e-10
    # the whole object is not one rigid body: one part id for all is penalised
    assert losses.part_rigidity(frames, rest, torch.zeros(200, dtype=torch.long)).item() > 1e-5
    bent = rigid.clone()
    x = rest[part == 1, 0]
    bent[part == 1, 2] += 2.0 * (x - 0.1) ** 2  # the plate curls: ~5 mm at its ends
    value = losses.part_rigidity(torch.stack([rest, bent]), rest, part).item()
    assert 1e-7 < value < 1e-4
    # a part of fewer than 3 points has no rigid fit: it is skipped
    assert losses.part_rigidity(frames[:, :2], rest[:2], part[:2]).item() == 0.0


def test_turn_is_zero_for_a_carried_object_and_grows_with_its_angle():
    from scipy.spatial.transform import Rotation

    g = torch.Generator().manual_seed(0)
    rest = torch.rand(300, 3, generator=g) * torch.tensor([0.2, 0.04, 0.03])  # a banana-sized bar
    carried = rest + torch.tensor([0.1, -0.2, 0.1])
    assert losses.turn(torch.stack([rest, carried]), rest).item() < 1e-12
    centred = rest - rest.mean(0)
    across = centred[:, :2].square().sum(-1).mean().item()  # mean squared distance from the z axis
    for degrees in (15.0, 90.0, 170.0):
        turn = torch.as_tensor(Rotation.from_euler("z", degrees, degrees=True).as_matrix(), dtype=torch.float32)
        turned = centred @ turn.T + rest.mean(0) + torch.tensor([0.3, 0.0, 0.1])
        expected = 2.0 * (1.0 - np.cos(np.radians(degrees))) * across / 2.0  # half the frames at rest
        assert losses.turn(torch.stack([rest, turned]), rest).item() == pytest.approx(expected, rel=1e-4)
    moved = torch.stack([rest, centred @ turn.T]).requires_grad_(True)  # its gradient: back to the rest offsets
    (grad,) = torch.autograd.grad(losses.turn(moved, rest), moved)
    residual = moved.detach() - moved.detach().mean(1, keepdim=True) - centred
    assert torch.allclose(grad, 2.0 * residual / residual[..., 0].numel(), atol=1e-9)


def test_sink_measures_how_far_points_go_into_the_static_scene_from_above():
    """A table at z = 0 and a plate 2 cm high on it (squares 31-33 of 1 cm, from -7.5 mm): a point 2 cm under
    the table counts its depth less the 5 mm margin, a point on the table or above it none, a
    point at the table's height on the plate or one square beside it the plate's top (the field
    takes each square's neighbours), two squares beside it the table's, one off the scene none."""
    grid = torch.stack(torch.meshgrid(torch.linspace(0.0025, 0.4975, 100), torch.linspace(0.0025, 0.4975, 100),
                                      indexing="ij"), -1)  # inside the squares, not on their edges
    table = torch.cat([grid.reshape(-1, 2), torch.zeros(100 * 100, 1)], 1)
    plate = torch.tensor([[0.305 + dx, 0.305 + dy, 0.02] for dx in (0.0, 0.01, 0.02) for dy in (0.0, 0.01, 0.02)])
    field = losses.static_tops(torch.cat([table, plate]))
    points = torch.tensor([[[0.1, 0.1, -0.02], [0.1, 0.1, 0.0], [0.1, 0.1, 0.3], [0.315, 0.315, 0.0],
                            [0.335, 0.315, 0.0], [0.345, 0.315, 0.0], [0.9, 0.9, -1.0]]], requires_grad=True)
    value = losses.sink(points, field)
    assert value.item() == pytest.approx(3 * 0.015**2 / 7, rel=1e-5)
    (grad,) = torch.autograd.grad(value, points)
    assert torch.allclose(grad[0, :, 2], torch.tensor([-0.03, 0.0, 0.0, -0.03, -0.03, 0.0, 0.0]) / 7)  # up, out
    assert grad[..., :2].abs().max() == 0.0


@pytest.mark.parametrize("term", ["rigid", "turn"])
def test_objective_adds_part_rigidity_and_the_turn_when_asked(hinge_scene, term):
    config = tiny_config(num_frames=4)
    model, prior = build_model(hinge_scene, config), tiny_prior(4)
    weights = {**WEIGHTS, "temporal": 0.0, term: 1.0}
    views = prior.views([torch.tensor([1, 2, 3])], 1.0)
    _translate(model, torch.tensor([0.01, 0.0, 0.0]))  # a rigid translation: carried, not turned
    assert motion_objective(model, prior, views, weights, False).terms[term].item() < 1e-9
    group = model.moving[0].coarse.group
    one = int(torch.nonzero(group == torch.mode(group).values)[0])  # a control of the part with the most
    with torch.no_grad():  # that control alone moves (from frame 2 on): its part bends
        model.moving[0].coarse_store.trans[-1, one] += torch.tensor([0.0, 0.0, 0.02])
    assert motion_objective(model, prior, views, weights, False).terms[term].item() > 1e-7
    assert term not in motion_objective(model, prior, views, WEIGHTS, False).terms


def test_objective_adds_the_sink_when_asked(hinge_scene):
    """The hinged box carried up 2 cm a frame: nothing sinks; down 5 cm a frame: into the table
    under it."""
    config = tiny_config(num_frames=4)
    model, prior = build_model(hinge_scene, config), tiny_prior(4)
    weights = {**WEIGHTS, "temporal": 0.0, "sink": 1.0}
    views = prior.views([torch.tensor([1, 2, 3])], 1.0)
    _translate(model, torch.tensor([0.0, 0.0, 0.02]))
    assert motion_objective(model, prior, views, weights, False).terms["sink"].item() == 0.0
    _translate(model, torch.tensor([0.0, 0.0, -0.05]))
    assert motion_objective(model, prior, views, weights, False).terms["sink"].item() > 1e-5
    assert "sink" not in motion_objective(model, prior, views, WEIGHTS, False).terms


def test_objective_adds_part_overlap_when_asked(hinge_scene):
    from flowgen.config import video_weights

    config = tiny_config(num_frames=4, weights=dataclasses.replace(video_weights(), overlap=1.0))
    model, prior = build_model(hinge_scene, config), tiny_prior(4)
    obj = model.moving[0]
    assert [len(h) > 0 for h in obj.part_hulls] == [True, True]  # base and lid, each a solid
    weights = {**WEIGHTS, "temporal": 0.0, "overlap": 1.0}
    views = prior.views([torch.tensor([1, 2, 3])], 1.0)
    assert motion_objective(model, prior, views, weights, False).terms["overlap"].item() == 0.0
    heights = [float(obj.rest.means[obj.part == p, 2].mean()) for p in range(2)]
    lid = int(np.argmax(heights))
    with torch.no_grad():  # the lid's controls sink 3 cm (from frame 2 on): into the base
        obj.coarse_store.trans[-1, obj.coarse.group == lid] += torch.tensor([0.0, 0.0, -0.03])
    assert motion_objective(model, prior, views, weights, False).terms["overlap"].item() > 1e-6
    assert "overlap" not in motion_objective(model, prior, views, WEIGHTS, False).terms
    assert build_model(hinge_scene, tiny_config(num_frames=4)).moving[0].part_hulls == ()


def test_minimal_motion_per_part_lets_a_turning_lid_go_and_holds_a_still_base():
    from scipy.spatial.transform import Rotation

    x = torch.linspace(0.0, 0.2, 101)
    base = torch.stack([-x, torch.zeros_like(x), torch.zeros_like(x)], -1)
    lid = torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], -1)  # hinged at x = 0
    rest = torch.cat([base, lid])
    part = torch.cat([torch.zeros(101), torch.ones(101)]).long()
    turn = torch.as_tensor(Rotation.from_rotvec([0.0, -0.5, 0.0]).as_matrix(), dtype=torch.float32)
    moved = torch.cat([base, lid @ turn.T])[None].requires_grad_(True)
    per_point = losses.minimal_motion(moved, rest, 0.01)
    (g_point,) = torch.autograd.grad(per_point, moved)
    moved2 = moved.detach().clone().requires_grad_(True)
    per_part = losses.minimal_motion(moved2, rest, 0.01, part)
    (g_part,) = torch.autograd.grad(per_part, moved2)
    near_hinge = slice(101, 111)  # lid points within 2 cm of the hinge: they barely move
    assert g_point[0, near_hinge].norm() > 20 * g_part[0, near_hinge].norm()
    # a base that moves 5 mm is pulled back per part as per point
    shifted = torch.cat([base + torch.tensor([0.0, 0.0, 0.005]), lid])[None].requires_grad_(True)
    (g_base,) = torch.autograd.grad(losses.minimal_motion(shifted, rest, 0.01, part), shifted)
    assert (g_base[0, :101, 2] > 0).all() and g_base[0, :101].norm() > 1e-3


def test_the_base_on_the_table_is_supported_and_held_harder_than_the_lid(hinge_scene):
    model = build_model(hinge_scene, tiny_config(num_frames=4))
    box = model.moving[0]
    counts = torch.bincount(box.part)
    assert len(counts) == 2
    low = [int(p) for p in range(2) if box.rest.means[box.part == p, 2].min() < 0.01]
    assert box.supported.tolist() == low and len(low) == 1  # the part on the table, not the lid
    # a 2 cm lift of the supported part costs ten times that of the other with factor 0.1
    rest = box.rest.means
    held, free = int(box.supported[0]), 1 - int(box.supported[0])
    factors = {held: 1.0, free: 0.1}
    lift = torch.tensor([0.0, 0.0, 0.02])
    cost = {}
    for p in (held, free):
        moved = rest.clone()
        moved[box.part == p] += lift
        cost[p] = losses.minimal_motion(moved[None], rest, 0.01, box.part, factors).item()
    assert cost[held] == pytest.approx(10 * cost[free], rel=1e-5) and cost[free] > 0


def test_smooth_contact_is_quadratic_below_its_scale_and_linear_above():
    means = torch.tensor([[[0.0, 0, 0], [0.0, 0, 0.01]]])
    pairs, group = torch.tensor([[0, 1]]), torch.tensor([0])
    rest = torch.tensor([0.01])
    for gap, linear, smooth in ((0.001, 0.001, 0.5 * 0.001**2 / 0.005), (0.02, 0.02, 0.02 - 0.0025)):
        moved = means.clone()
        moved[0, 1, 2] += gap
        assert losses.contact(moved, pairs, rest, group).item() == pytest.approx(linear, rel=1e-4)
        assert losses.contact(moved, pairs, rest, group, smooth=0.005).item() == pytest.approx(smooth, rel=1e-4)


@pytest.mark.parametrize(("frames", "background"), [([0, 1, 2, 3, 4], False), ([1, 3], True), ([2, 3], False)])
def test_a_views_frames_as_stacked_tensors_render_what_frame_by_frame_does(hinge_scene, frames, background):
    """`render_views` builds a view's frames as (T, N, ·) tensors on a CPU: the same images
    bit for bit as building each frame's splats on its own (``per_frame``), with and without
    the static table (no background), every frame or a few, and the same gradients to
    rounding."""
    model, prior = build_model(hinge_scene, tiny_config()), tiny_prior(5, background=background)
    _translate(model, torch.tensor([0.01, -0.02, 0.005]))
    with torch.no_grad():
        model.moving[0].coarse_store.quats[:, :2].add_(0.05)  # two controls turn too
    views = prior.views([torch.tensor(frames)], 1.0)
    assert (views[0].background is None) == (not background)
    needed, slot = _frames_and_slots(views)
    params = [p for obj in model.moving for p in (obj.coarse_store.quats, obj.coarse_store.trans, obj.log_scales)]
    if not background:  # the table is rendered too
        params += [p for obj in model.static for p in (obj.albedo_logit, obj.log_scales, obj.opacity_logit)]
    weights = torch.rand(len(frames), 24, 32, 10, generator=torch.Generator().manual_seed(3))

    def run(per_frame: bool):
        for p in params:
            p.grad = None
        (_, rgb, flow, moved, alpha), = list(render_views(model, views, _pose(model, needed, False), slot, per_frame))
        images = torch.cat((rgb, flow, moved, alpha[..., None]), -1)
        (images * weights).sum().backward()
        return images.detach(), [p.grad.clone() for p in params]

    (stacked, grads), (single, want) = run(False), run(True)
    assert single[..., 9].max() > 0.5 and single[..., 3:6].abs().max() > 1e-3  # drawn, and moving
    assert torch.equal(stacked, single)
    for got, expect in zip(grads, want):
        assert expect.abs().max() > 0
        torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6 * float(expect.abs().max()))


def _box_and_rod(n: int = 3000, sink: float = 0.0):
    """Surface samples of a 20 x 20 x 4 cm box (part 0) and a rod of radius 1 cm, 20 cm long
    (part 1), standing on the box's top, its foot ``sink`` below it."""
    g = torch.Generator().manual_seed(0)
    half = torch.tensor([0.1, 0.1, 0.02])
    box = (torch.rand(n, 3, generator=g) * 2 - 1) * half
    face = torch.randint(0, 3, (n,), generator=g)
    box[torch.arange(n), face] = torch.sign(box[torch.arange(n), face]) * half[face]  # onto a face
    box[:, 2] += 0.02  # the box spans z 0 .. 0.04
    a = torch.rand(n, generator=g) * 2 * math.pi
    z = torch.rand(n, generator=g) * 0.2
    cap = torch.rand(n, generator=g) < 0.1  # the foot's and the top's discs
    radius = torch.where(cap, 0.01 * torch.rand(n, generator=g).sqrt(), torch.full((n,), 0.01))
    z = torch.where(cap, (torch.rand(n, generator=g) < 0.5).float() * 0.2, z)
    rod = torch.stack([radius * torch.cos(a), radius * torch.sin(a), 0.04 - sink + z], 1)
    return torch.cat([box, rod]), torch.cat([torch.zeros(n), torch.ones(n)]).long()


def _analytic_overlap(box: torch.Tensor, rod: torch.Tensor, foot: float, margin: float) -> float:
    """The loss for a rod whose foot is at height ``foot`` (upright, on the box's axis), from the
    two solids' shapes rather than hulls of samples."""
    inside_box = torch.stack([0.1 - rod[:, 0].abs(), 0.1 - rod[:, 1].abs(), 0.04 - rod[:, 2], rod[:, 2]]).amin(0)
    r = box[:, :2].norm(dim=1)
    inside_rod = torch.stack([0.01 - r, box[:, 2] - foot, foot + 0.2 - box[:, 2]]).amin(0)
    return 0.5 * float(torch.relu(inside_box - margin).square().mean() + torch.relu(inside_rod - margin).square().mean())


def test_part_overlap_is_zero_at_rest_and_measures_a_part_pushed_into_another():
    from flowgen.parts import part_hulls

    rest, part = _box_and_rod()
    hulls = part_hulls(rest.numpy(), part.numpy(), max_points=3000)
    assert [h.shape[1] for h in hulls] == [4, 4] and all(len(h) > 10 for h in hulls)
    assert losses.part_overlap(rest[None], rest, part, hulls, max_points=3000).item() == 0.0
    lowered = rest.clone()
    lowered[part == 1, 2] -= 0.02  # the rod pushed 2 cm into the box
    lowered.requires_grad_(True)
    value = losses.part_overlap(torch.stack([rest, lowered]), rest, part, hulls, max_points=3000)
    # frame 0 adds nothing: the mean over two frames is half of frame 1's
    expected = 0.5 * _analytic_overlap(rest[part == 0], lowered.detach()[part == 1], 0.02, 0.002)
    assert value.item() == pytest.approx(expected, rel=0.1)
    value.backward()
    sunk = (part == 1) & (lowered.detach()[:, 2] < 0.035)
    assert (lowered.grad[sunk, 2] < 0).float().mean() > 0.9  # descent lifts the rod's foot out
    # measured in each part's own frame: the whole object moved rigidly changes nothing
    from scipy.spatial.transform import Rotation

    turn = torch.as_tensor(Rotation.from_rotvec([0.3, 0.5, 0.2]).as_matrix(), dtype=torch.float32)
    shift = torch.tensor([0.1, 0.2, 0.3])
    assert losses.part_overlap((rest @ turn.T + shift)[None], rest, part, hulls, max_points=3000).item() == 0.0
    moved = (lowered.detach() @ turn.T + shift)[None]
    assert losses.part_overlap(moved, rest, part, hulls, max_points=3000).item() == pytest.approx(2 * expected, rel=0.1)


def test_part_overlap_counts_only_what_sinks_deeper_than_at_rest():
    from flowgen.parts import part_hulls

    rest, part = _box_and_rod(sink=0.005)  # a post in a socket: its foot 5 mm inside at rest
    hulls = part_hulls(rest.numpy(), part.numpy(), max_points=3000)
    assert losses.part_overlap(rest[None], rest, part, hulls, max_points=3000).item() == 0.0
    deeper = rest.clone()
    deeper[part == 1, 2] -= 0.01
    assert losses.part_overlap(deeper[None], rest, part, hulls, max_points=3000).item() > 1e-7
    # one part (a banana, a cloth): no hulls, nothing to pass through
    one = part_hulls(rest.numpy(), torch.zeros_like(part).numpy())
    assert [len(h) for h in one] == [0]
    assert losses.part_overlap(deeper[None], rest, torch.zeros_like(part), one).item() == 0.0
    # a flat part has no solid; a part of two points none, and nothing of it is tested
    flat = rest.clone()
    flat[part == 1, 2] = 0.5
    assert [len(h) > 0 for h in part_hulls(flat.numpy(), part.numpy())] == [True, False]
    speck = torch.zeros_like(part)
    speck[:2] = 1
    hulls = part_hulls(rest.numpy(), speck.numpy())
    assert len(hulls[0]) > 0 and len(hulls[1]) == 0
    assert losses.part_overlap(deeper[None], rest, speck, hulls).item() == 0.0
