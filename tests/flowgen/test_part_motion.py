"""Part motion (``FlowConfig.part_motion``): one rigid motion per part and frame, about the
part's contacts, composed after the control points' skinning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowgen import schedules
from flowgen.config import RIGID_PARTS_ATTACH_SMOOTH, FlowConfig, rigid_parts
from flowgen.fenwick import query_all
from flowgen.model import build_model, parameters
from flowgen.motion import deform_object, deform_surface
from flowgen.optimize import make_optimizer, optimize
from flowgen.parts import part_joints
from flowgen.quat import quat_multiply, quat_to_matrix

from .conftest import tiny_config, tiny_prior


def _turn(axis: np.ndarray, degrees: float) -> torch.Tensor:
    half = math.radians(degrees) / 2
    return torch.tensor([math.cos(half), *(math.sin(half) * axis / np.linalg.norm(axis))], dtype=torch.float32)


def test_pivots_are_where_parts_touch_or_their_centroid():
    means = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0], [9.0, 9, 9], [11.0, 9, 9]])
    part = torch.tensor([0, 0, 1, 1, 2, 2])
    contact = torch.tensor([[1, 2]])  # parts 0 and 1 touch between x = 1 and x = 2
    pivots, parent = part_joints(means, part, contact)
    assert parent.tolist() == [-1, -1, -1]
    assert torch.allclose(pivots[0], torch.tensor([1.5, 0, 0])) and torch.allclose(pivots[1], torch.tensor([1.5, 0, 0]))
    assert torch.allclose(pivots[2], torch.tensor([10.0, 9, 9]))  # touches nothing: its centroid


def test_a_part_motion_turns_one_part_rigidly_about_its_hinge(hinge_scene):
    config = tiny_config(part_motion=True)
    obj = build_model(hinge_scene, config).moving[0]
    frames = torch.arange(config.num_frames)
    rest = deform_object(obj, frames, use_fine=True)
    assert torch.allclose(rest.points, obj.rest.means.expand_as(rest.points), atol=1e-6)  # identity at start
    lid = int(obj.part[obj.rest.means[:, 2].argmax()])  # the highest Gaussian is on the lid
    pivot = obj.part_pivot[lid]
    # the hinge is the line y = 0.1, z = 0.1; this coarse mesh's contacts reach 5 cm in front of it
    assert math.hypot(float(pivot[1]) - 0.1, float(pivot[2]) - 0.1) < 0.025
    turn = _turn(np.array([-1.0, 0.0, 0.0]), 40.0)
    with torch.no_grad():  # the last Fenwick node covers every frame from 1 on (T - 1 a power of 2)
        obj.part_store.quats[-1, lid] = turn
    moved = deform_object(obj, frames, use_fine=True)
    on_lid = obj.part == lid
    want = (obj.rest.means[on_lid] - pivot) @ quat_to_matrix(turn).T + pivot
    assert torch.allclose(moved.points[-1, on_lid], want, atol=1e-5)
    assert torch.allclose(moved.points[-1, ~on_lid], obj.rest.means[~on_lid], atol=1e-6)  # the base stays
    assert torch.allclose(moved.quats[-1, on_lid], quat_multiply(turn.expand(int(on_lid.sum()), 4), obj.rest.quats[on_lid]), atol=1e-6)
    surface = deform_surface(obj, frames, use_fine=True)
    on_lid_s = obj.surface_part == lid
    assert torch.allclose(surface[-1, on_lid_s], (obj.surface[on_lid_s] - pivot) @ quat_to_matrix(turn).T + pivot, atol=1e-5)
    assert torch.allclose(surface[0], obj.surface, atol=1e-6)


def test_part_motions_are_parameters_of_their_own_group_and_optimised(hinge_scene):
    config = tiny_config(part_motion=True, iterations=6)
    model = build_model(hinge_scene, config)
    params = parameters(model)
    assert {"box/part/quats", "box/part/trans"} <= set(params)
    groups = {g["name"]: g["params"] for g in make_optimizer(params).param_groups}
    assert any(p is params["box/part/quats"] for p in groups["part"])
    assert any(p is params["box/part/trans"] for p in groups["part_translation"])
    rates, still = schedules.learning_rates(config, 0), schedules.appearance_learning_rates(config)
    assert rates["part"] == pytest.approx(config.lr_part.start) and still["part"] == 0
    assert rates["part_translation"] == pytest.approx(config.lr_part_translation.start) and still["part_translation"] == 0
    optimize(model, tiny_prior(config.num_frames), config)
    quats, trans = query_all(model.moving[0].part_store)
    assert torch.equal(trans[0], torch.zeros_like(trans[0]))  # frame 0 is the rest pose
    assert float(quats[1:, :, 1:].detach().abs().max()) > 1e-4 and float(trans[1:].detach().abs().max()) > 1e-5  # the parts moved
    plain = build_model(hinge_scene, tiny_config())
    assert plain.moving[0].part_store is None and not any("/part/" in k for k in parameters(plain))


def test_rigid_parts_turns_part_motion_and_the_smooth_contact_on():
    assert not FlowConfig().part_motion and FlowConfig().weights.attach_smooth == 0
    config = rigid_parts(FlowConfig())
    assert config.part_motion and config.weights.attach_smooth == RIGID_PARTS_ATTACH_SMOOTH > 0


def test_pivots_follow_the_chain_from_the_supported_part():
    # a lamp: base (0) - arm (1) - head (2); the arm turns where it meets the base, not between its joints
    means = torch.tensor([[0.0, 0, 0], [0.0, 0, 1], [0.0, 0, 2], [0.0, 0, 3], [0.0, 0, 4], [0.0, 0, 5]])
    part = torch.tensor([0, 0, 1, 1, 2, 2])
    contact = torch.tensor([[1, 2], [3, 4]])
    loose, _ = part_joints(means, part, contact)
    assert torch.allclose(loose[1], torch.tensor([0.0, 0, 2.5]))  # the mean of both joints
    chain, parent = part_joints(means, part, contact, roots=torch.tensor([0]))
    assert parent.tolist() == [-1, 0, 1]
    assert torch.allclose(chain[1], torch.tensor([0.0, 0, 1.5])) and torch.allclose(chain[2], torch.tensor([0.0, 0, 3.5]))
    assert torch.allclose(chain[0], loose[0])


def test_a_chain_carries_each_part_by_the_one_it_hangs_from():
    from types import SimpleNamespace

    from flowgen.fenwick import fenwick_identity
    from flowgen.motion import _part_transforms

    store = fenwick_identity(2, 3)  # frames 0 and 1; node 1 is frame 1
    arm, head = _turn(np.array([0.0, 1.0, 0.0]), 30.0), _turn(np.array([0.0, 1.0, 0.0]), 20.0)
    store.quats[0, 0], store.quats[0, 1], store.quats[0, 2] = _turn(np.array([1.0, 0, 0]), 50.0), arm, head
    obj = SimpleNamespace(part_store=store, supported=torch.tensor([0]), part_parent=torch.tensor([-1, 0, 1]),
                          part_pivot=torch.tensor([[0.0, 0, 0], [0.0, 0, 1], [0.0, 0, 3]]))
    rot, quats, offset = _part_transforms(obj, torch.tensor([0, 1]))
    move = lambda p, x: rot[1, p] @ x + offset[1, p]
    tip = torch.tensor([0.0, 0.0, 4.0])
    about = lambda q, c, x: quat_to_matrix(q) @ (x - c) + c
    want = about(arm, torch.tensor([0.0, 0, 1]), about(head, torch.tensor([0.0, 0, 3]), tip))
    assert torch.allclose(move(2, tip), want, atol=1e-6)  # the head turns at its joint, carried by the arm
    assert torch.allclose(move(1, torch.tensor([0.0, 0, 1])), torch.tensor([0.0, 0, 1]), atol=1e-6)  # the arm's joint stays
    assert torch.allclose(move(0, tip), tip) and torch.allclose(rot[0], torch.eye(3).expand(3, 3, 3))  # the base is held
    assert torch.allclose(quat_to_matrix(quats[1, 2]), rot[1, 2], atol=1e-6)


def test_free_parts_let_what_rests_on_the_table_move_as_a_whole(hinge_scene):
    """`free_object` (a carried object): the part resting on the table gets a rigid motion of its
    own; without ``free_parts`` a rigid motion set on it is ignored (the table holds it). Nor
    does the minimal-motion prior hold it (the wan cpu preset's weight 3 dropped); a cloth keeps
    that prior."""
    from dataclasses import replace

    from flowgen.config import FREE_PART_TRANSLATION, PRESETS, free_object

    frames = torch.arange(5)
    lift = torch.tensor([0.0, 0.05, 0.12])
    moved = {}
    for free in (False, True):
        obj = build_model(hinge_scene, replace(tiny_config(part_motion=True), free_parts=free)).moving[0]
        base = int(obj.part[obj.rest.means[:, 2].argmin()])  # the lowest Gaussian is on the base
        assert (base in obj.supported.tolist()) != free
        with torch.no_grad():
            obj.part_store.trans[-1, base] = lift
        on_base = obj.part == base
        moved[free] = deform_object(obj, frames, use_fine=True).points[-1, on_base] - obj.rest.means[on_base]
    assert float(moved[False].abs().max()) < 1e-6
    assert torch.allclose(moved[True], lift.expand_as(moved[True]), atol=1e-5)
    preset = rigid_parts(PRESETS["cpu"]("wan"))
    carried, cloth = free_object(preset, rigid=True), free_object(preset, rigid=False)
    assert carried.part_motion and carried.free_parts and carried.lr_part_translation == FREE_PART_TRANSLATION
    assert carried.weights.rigid > 0 and not carried.weights.motion_per_part
    assert preset.weights.motion == 3.0 and carried.weights.motion == 0  # nothing holds it where it rests
    assert not cloth.part_motion and cloth.weights.rigid == 0 and cloth.weights.motion == 3.0
