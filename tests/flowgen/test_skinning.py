"""Linear blend skinning: exact cases, and the batched path against plain loops."""

from __future__ import annotations

import pytest
import torch

from flowgen.quat import (
    matrix_to_quat,
    quat_continuous,
    quat_multiply,
    quat_normalize,
    quat_to_matrix,
)
from flowgen.skinning import (
    Binding,
    ControlLevel,
    bind,
    bind_hierarchy,
    blend,
    deform,
    lbs,
    skinning_weights,
)
from tests.flowgen.skinning_reference import deform_reference, lbs_reference

F64 = torch.float64


def make_level(
    num: int, seed: int, anisotropic: bool = False, rotated: bool = False, groups: int = 0
) -> ControlLevel:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(num, 3, generator=gen, dtype=F64)
    shape = (num, 3) if anisotropic else (num,)
    log_scales = torch.log(0.2 + 0.2 * torch.rand(shape, generator=gen, dtype=F64))
    rotations = quat_normalize(torch.randn(num, 4, generator=gen, dtype=F64)) if rotated else None
    group = torch.arange(num) % groups if groups else None
    return ControlLevel(centres, log_scales, rotations, group)


def random_points(num: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(num, 3, generator=gen, dtype=F64)
    quats = quat_normalize(torch.randn(num, 4, generator=gen, dtype=F64))
    return points, quats


def random_motion(num_frames: int, num_controls: int, seed: int, amount: float = 0.3):
    gen = torch.Generator().manual_seed(seed)
    quats = torch.tensor([1.0, 0, 0, 0], dtype=F64) + amount * torch.randn(
        num_frames, num_controls, 4, generator=gen, dtype=F64
    )
    quats[0] = torch.tensor([1.0, 0, 0, 0])
    trans = amount * torch.randn(num_frames, num_controls, 3, generator=gen, dtype=F64)
    trans[0] = 0
    return quats, trans


def identity_motion(num_frames: int, num_controls: int):
    quats = torch.zeros(num_frames, num_controls, 4, dtype=F64)
    quats[..., 0] = 1
    return quats, torch.zeros(num_frames, num_controls, 3, dtype=F64)


def rigid_sequence(num_frames: int, seed: int):
    """(T, 3, 3) rotations and (T, 3) translations, identity at frame 0."""
    gen = torch.Generator().manual_seed(seed)
    quats = quat_normalize(torch.randn(num_frames, 4, generator=gen, dtype=F64))
    quats[0] = torch.tensor([1.0, 0, 0, 0])
    trans = torch.randn(num_frames, 3, generator=gen, dtype=F64)
    trans[0] = 0
    return quat_to_matrix(quats), trans


def rigid_motion_of_controls(rot, trans, centres):
    """Control motion that moves every control rigidly by x -> R x + t.

    ``centres`` (K, 3) or (T, K, 3); control translation T_k = (R - I) p_k + t.
    """
    num_frames = rot.shape[0]
    centres = centres.expand(num_frames, -1, -1)
    eye = torch.eye(3, dtype=F64)
    ctrl_t = ((rot - eye)[:, None] @ centres[..., None])[..., 0] + trans[:, None]
    ctrl_q = matrix_to_quat(rot)[:, None].expand(-1, centres.shape[1], -1)
    return ctrl_q.contiguous(), ctrl_t


def assert_rigid(out, rot, trans, points, quats):
    """Deformed points are R x + t and Gaussian rotations R ⊗ q, every frame."""
    expected = (rot[:, None] @ points[None, :, :, None])[..., 0] + trans[:, None]
    torch.testing.assert_close(out.points, expected, rtol=0, atol=1e-12)
    expected_q = quat_multiply(matrix_to_quat(rot)[:, None], quats[None])
    torch.testing.assert_close(
        quat_to_matrix(out.quats), quat_to_matrix(expected_q), rtol=0, atol=1e-12
    )


def test_identity_motion_is_exact():
    level = make_level(12, seed=0, anisotropic=True, rotated=True)
    points, quats = random_points(50, seed=1)
    binding = bind(points, level, 6)
    out = lbs(points, level, binding, identity_motion(5, 12), quats)
    assert out.points.shape == (5, 50, 3) and out.quats.shape == (5, 50, 4)
    assert (out.points - points).abs().max() == 0  # displacement form: exactly zero
    torch.testing.assert_close(out.quats, quats.expand(5, -1, -1), rtol=0, atol=1e-15)


@pytest.mark.parametrize("anisotropic", [False, True])
def test_one_rigid_motion_moves_points_and_rotations_rigidly(anisotropic):
    level = make_level(16, seed=2, anisotropic=anisotropic, rotated=anisotropic)
    points, quats = random_points(40, seed=3)
    rot, trans = rigid_sequence(6, seed=4)
    motion = rigid_motion_of_controls(rot, trans, level.centres)
    out = lbs(points, level, bind(points, level, 5), motion, quats)
    assert_rigid(out, rot, trans, points, quats)


def test_hierarchy_with_identity_fine_equals_coarse():
    coarse, fine = make_level(8, seed=5), make_level(30, seed=6)
    points, quats = random_points(60, seed=7)
    binding = bind_hierarchy(points, coarse, fine, num_neighbours=4)
    motion = random_motion(4, 8, seed=8)
    both = deform(points, coarse, motion, binding, fine, identity_motion(4, 30), quats)
    coarse_only = deform(points, coarse, motion, binding, point_quats=quats)
    torch.testing.assert_close(both.points, coarse_only.points, rtol=0, atol=1e-15)
    torch.testing.assert_close(both.quats, coarse_only.quats, rtol=0, atol=1e-15)


def test_hierarchy_composes_two_rigid_motions_exactly():
    """Coarse by (R1, t1), fine by (R2, t2) about its carried centres: R2 (R1 x + t1) + t2."""
    coarse, fine = make_level(8, seed=9), make_level(30, seed=10)
    points, quats = random_points(60, seed=11)
    binding = bind_hierarchy(points, coarse, fine, num_neighbours=4)
    rot1, trans1 = rigid_sequence(5, seed=12)
    rot2, trans2 = rigid_sequence(5, seed=13)
    carried = (rot1[:, None] @ fine.centres[None, :, :, None])[..., 0] + trans1[:, None]
    out = deform(
        points, coarse, rigid_motion_of_controls(rot1, trans1, coarse.centres), binding,
        fine, rigid_motion_of_controls(rot2, trans2, carried), quats,
    )  # fmt: skip
    rot, trans = rot2 @ rot1, (rot2 @ trans1[..., None])[..., 0] + trans2
    assert_rigid(out, rot, trans, points, quats)


def test_single_level_matches_reference_forward_and_gradient():
    level = make_level(10, seed=14, anisotropic=True, rotated=True)
    level = ControlLevel(
        level.centres, level.log_scales.requires_grad_(), level.rotations.requires_grad_()
    )
    points, quats = random_points(25, seed=15)
    binding = bind(points, level, 4)
    motion_q, motion_t = random_motion(3, 10, seed=16)
    motion_q.requires_grad_(), motion_t.requires_grad_()
    fast = lbs(points, level, binding, (motion_q, motion_t), quats)
    slow = lbs_reference(points, level, binding, (motion_q, motion_t), quats)
    torch.testing.assert_close(fast.points, slow.points, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.quats, slow.quats, rtol=0, atol=1e-12)
    leaves = [level.log_scales, level.rotations, motion_q, motion_t]
    gen = torch.Generator().manual_seed(0)
    wp = torch.randn(fast.points.shape, generator=gen, dtype=F64)
    wq = torch.randn(fast.quats.shape, generator=gen, dtype=F64)
    g_fast = torch.autograd.grad((fast.points * wp).sum() + (fast.quats * wq).sum(), leaves)
    g_slow = torch.autograd.grad((slow.points * wp).sum() + (slow.quats * wq).sum(), leaves)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        assert a.abs().max() > 0


def test_hierarchy_matches_reference_with_groups_and_padding():
    coarse = make_level(9, seed=17, groups=2)
    fine = make_level(24, seed=18, anisotropic=True, groups=2)
    points, quats = random_points(30, seed=19)
    point_group = torch.arange(30) % 2
    binding = bind_hierarchy(points, coarse, fine, num_neighbours=6, point_group=point_group)
    assert not binding.coarse.valid.all()  # group 1 has 4 coarse controls < 6: padded
    coarse_motion = random_motion(3, 9, seed=20)
    fine_motion = random_motion(3, 24, seed=21, amount=0.1)
    fast = deform(points, coarse, coarse_motion, binding, fine, fine_motion, quats)
    slow = deform_reference(points, coarse, coarse_motion, binding, fine, fine_motion, quats)
    torch.testing.assert_close(fast.points, slow.points, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.quats, slow.quats, rtol=0, atol=1e-12)


def test_groups_isolate_parts():
    """Moving every control of group 1 leaves group-0 points exactly still."""
    level = make_level(20, seed=22, groups=2)
    points, _ = random_points(50, seed=23)
    point_group = (torch.arange(50) % 2).long()
    binding = bind(points, level, 8, point_group)
    same = level.group[binding.index] == point_group[:, None]
    assert same[binding.valid].all()
    quats, trans = identity_motion(2, 20)
    trans[1, level.group == 1] = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    out = lbs(points, level, binding, (quats, trans))
    assert torch.equal(out.points[1, point_group == 0], points[point_group == 0])
    moved = point_group == 1
    torch.testing.assert_close(out.points[1, moved, 2], points[moved, 2] + 1.0)
    unrestricted = lbs(points, level, bind(points, level, 8), (quats, trans))
    assert (unrestricted.points[1, point_group == 0] - points[point_group == 0]).abs().max() > 0.1


def test_weights_are_normalised_gaussians():
    level = make_level(6, seed=24)
    points, _ = random_points(10, seed=25)
    binding = bind(points, level, 3)
    weights = skinning_weights(points, level, binding)
    torch.testing.assert_close(weights.sum(-1), torch.ones(10, dtype=F64))
    d2 = ((points[:, None] - level.centres[binding.index]) ** 2).sum(-1)
    raw = torch.exp(-0.5 * d2 / level.log_scales.exp()[binding.index] ** 2)
    torch.testing.assert_close(weights, raw / raw.sum(-1, keepdim=True))


def test_far_points_do_not_produce_nan():
    level = make_level(6, seed=26)
    far = torch.full((3, 3), 100.0, dtype=F64)
    weights = skinning_weights(far, level, bind(far, level, 3))
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=F64))


def test_blend_equals_dense_sum():
    gen = torch.Generator().manual_seed(27)
    level = make_level(7, seed=28)
    points, _ = random_points(15, seed=29)
    binding = bind(points, level, 3)
    weights = torch.rand(15, 3, generator=gen, dtype=F64)
    channels = torch.randn(4, 7, 5, generator=gen, dtype=F64)
    dense = torch.einsum("nj,tnjc->tnc", weights, channels[:, binding.index])
    torch.testing.assert_close(blend(weights, binding, channels), dense, rtol=0, atol=1e-13)


def test_quaternion_signs_made_continuous_before_blending():
    """Two neighbours with the same rotation given as q and -q blend to that rotation."""
    level = make_level(2, seed=30)
    points, quats = random_points(5, seed=31)
    rot, trans = rigid_sequence(3, seed=32)
    motion_q, motion_t = rigid_motion_of_controls(rot, trans, level.centres)
    motion_q = motion_q.clone()
    motion_q[:, 1] = -motion_q[:, 1]  # same rotations, other hemisphere for control 1
    flipped = motion_q.clone()
    flipped[2] = -flipped[2]  # and a sign jump over time for both
    out = lbs(points, level, bind(points, level, 2), (flipped, motion_t), quats)
    assert_rigid(out, rot, trans, points, quats)
    cont = quat_continuous(torch.tensor([[1.0, 0, 0, 0], [-0.9, 0.1, 0, 0], [0.8, -0.2, 0, 0]]))
    assert (cont[:, 0] > 0).all()


def test_group_without_controls_is_an_error():
    level = make_level(4, seed=33, groups=2)
    points, _ = random_points(3, seed=34)
    with pytest.raises(ValueError, match="no control point of that group"):
        bind(points, level, 2, torch.tensor([0, 1, 5]))


def test_laptop_lid_hinge_is_exact_with_parts():
    """Controls from flowgen.control, motion through a Fenwick store, parts kept apart.

    The lid turns about the hinge axis, the base stays: with group-restricted binding
    every vertex follows its own part exactly (the findings note's observation).
    """
    import math

    import trimesh

    from flowgen.control import ControlConfig, object_controls, point_groups
    from flowgen.fenwick import from_per_frame, query_all
    from flowgen.skinning import control_level

    base = trimesh.creation.box((0.3, 0.2, 0.02))
    lid = trimesh.creation.box((0.3, 0.01, 0.2)).apply_translation((0.0, 0.11, 0.115))
    mesh = trimesh.util.concatenate([base, lid])
    controls = object_controls(mesh, ControlConfig(target_surface_points=2000, num_controls=(16,)))
    init = controls.levels[0]
    level = control_level(init.centres, init.scales, init.group, dtype=F64)
    vertices = torch.as_tensor(mesh.vertices)
    groups = torch.as_tensor(point_groups(controls, mesh.vertices, mesh))
    lid_group = int(groups[-1])  # the lid's vertices come last in the concatenation
    on_lid = groups == lid_group

    angles = torch.linspace(0, math.radians(60), 9, dtype=F64)
    rot = torch.zeros(9, 3, 3, dtype=F64)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(angles), -torch.sin(angles)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(angles), torch.cos(angles)
    hinge = torch.tensor([0.0, 0.11, 0.01], dtype=F64)
    trans = hinge - (rot @ hinge)  # rotation about the hinge line x -> R (x - h) + h
    lid_q, lid_t = rigid_motion_of_controls(rot, trans, level.centres)
    quats, trans_k = identity_motion(9, level.num_controls)
    is_lid = level.group == lid_group
    quats[:, is_lid], trans_k[:, is_lid] = lid_q[:, is_lid], lid_t[:, is_lid]
    motion = query_all(from_per_frame(quats, trans_k))

    out = lbs(vertices, level, bind(vertices, level, 6, groups), motion)
    expected = (rot[:, None] @ vertices[None, :, :, None])[..., 0] + trans[:, None]
    torch.testing.assert_close(out.points[:, on_lid], expected[:, on_lid], rtol=0, atol=1e-9)
    torch.testing.assert_close(out.points[:, ~on_lid], vertices.expand(9, -1, -1)[:, ~on_lid])
    unrestricted = lbs(vertices, level, bind(vertices, level, 6), motion)
    assert (unrestricted.points[-1, ~on_lid] - vertices[~on_lid]).norm(dim=-1).max() > 1e-3


def test_blend_kernel_gradients_match_the_sparse_product():
    """The CPU kernel's hand-written backward against torch's sparse product (float64), with
    padding (zero weights) and repeated controls in a row."""
    from flowgen.blend import blend_rows, blend_rows_sparse

    gen = torch.Generator().manual_seed(41)
    index = torch.randint(0, 6, (20, 4), generator=gen)
    index[3] = 2  # one control four times
    weights = torch.rand(20, 4, generator=gen, dtype=F64)
    weights[5, 2:] = 0.0  # padding
    values = torch.randn(6, 7, generator=gen, dtype=F64)
    upstream = torch.randn(20, 7, generator=gen, dtype=F64)
    grads = []
    for fn in (blend_rows, blend_rows_sparse):
        w, v = weights.clone().requires_grad_(True), values.clone().requires_grad_(True)
        out = fn(w, index, v)
        (out * upstream).sum().backward()
        grads.append((out.detach(), w.grad, v.grad))
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda w, v: blend_rows(w, index, v),
                                    (weights.clone().requires_grad_(True), values.clone().requires_grad_(True)))
    v = values.clone().requires_grad_(True)  # only the values need a gradient: the same one
    (blend_rows(weights, index, v) * upstream).sum().backward()
    torch.testing.assert_close(v.grad, grads[0][2], rtol=0, atol=1e-12)


@pytest.mark.parametrize("per_axis,turned", [(False, False), (True, False), (True, True)])
def test_weights_kernel_equals_the_torch_ops(per_axis, turned):
    """The CPU kernel of the skinning weights against the torch ops (float64): the weights, with
    padding, and the gradients of the points, centres, log-scales and rotations."""
    from flowgen.quat import quat_normalize
    from flowgen.skin_weights import skinning_weights_torch

    gen = torch.Generator().manual_seed(43)
    num_controls, num_points, k = 12, 40, 5
    centres = torch.randn(num_controls, 3, generator=gen, dtype=F64)
    points = torch.randn(num_points, 3, generator=gen, dtype=F64)
    log_scales = 0.3 * torch.randn((num_controls, 3) if per_axis else (num_controls,), generator=gen, dtype=F64)
    quats = quat_normalize(torch.randn(num_controls, 4, generator=gen, dtype=F64)) if turned else None
    valid = torch.rand(num_points, k, generator=gen) > 0.3
    valid[:, 0] = True
    binding = Binding(torch.randint(0, num_controls, (num_points, k), generator=gen), valid)
    upstream = torch.randn(num_points, k, generator=gen, dtype=F64)
    results = []
    for fn in (skinning_weights, skinning_weights_torch):
        leaves = [t.clone().requires_grad_(True) for t in (points, centres, log_scales)]
        rotations = None if quats is None else quats.clone().requires_grad_(True)
        weights = fn(leaves[0], ControlLevel(leaves[1], leaves[2], rotations), binding)
        (weights * upstream).sum().backward()
        results.append([weights.detach(), *(t.grad for t in leaves), *([] if rotations is None else [rotations.grad])])
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert (results[0][0][~valid] == 0).all() and results[0][3].abs().max() > 1e-3
    if turned:
        assert results[1][4].abs().max() > 1e-3  # per-axis scales: the rotation has a gradient


def test_weights_kernel_in_float32_with_fixed_points_and_centres():
    """As training runs it: float32, the points and centres without gradient (the kernel's empty
    outputs), per-axis scales and rotations - the torch ops' weights and gradients to 1e-5."""
    from flowgen.quat import quat_normalize
    from flowgen.skin_weights import skinning_weights_torch

    gen = torch.Generator().manual_seed(44)
    centres, points = torch.randn(30, 3, generator=gen), torch.randn(500, 3, generator=gen)
    binding = bind(points, ControlLevel(centres, torch.zeros(30)), 6)
    upstream = torch.randn(500, 6, generator=gen)
    log_scales = 0.3 * torch.randn(30, 3, generator=gen)
    quats = quat_normalize(torch.randn(30, 4, generator=gen))
    results = []
    for fn in (skinning_weights, skinning_weights_torch):
        leaves = [log_scales.clone().requires_grad_(True), quats.clone().requires_grad_(True)]
        weights = fn(points, ControlLevel(centres, *leaves), binding)
        results.append([weights.detach(), *torch.autograd.grad((weights * upstream).sum(), leaves)])
    for ours, theirs in zip(*results):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert results[0][1].abs().max() > 1e-2 and results[0][2].abs().max() > 1e-2


def test_weights_kernel_refuses_an_index_out_of_range():
    from flowgen.skin_weights import gaussian_weights

    index = torch.tensor([[0, 3]])
    with pytest.raises(ValueError, match="out of range"):
        gaussian_weights(torch.zeros(1, 3), torch.zeros(3, 3), index, torch.ones(1, 2, dtype=torch.bool), None,
                         torch.ones(3, 3))
