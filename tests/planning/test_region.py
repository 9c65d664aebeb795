"""Object selection, moving part, carried points and the rigid fit, on flows with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot import geometry
from chord_robot.errors import InputError, PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion
from planning import analytic
from planning.region import (
    RegionConfig,
    carried_points,
    local_bending,
    moving_mask,
    pinched_point,
    rigid_fit,
    rigid_residual,
    select_object,
)


def test_the_most_moving_object_is_selected():
    flow = analytic.translation_flow(5)
    assert select_object(flow) == "object"
    assert select_object(flow, "object") == "object"
    with pytest.raises(InputError, match="not in the flow"):
        select_object(flow, "lamp")
    with pytest.raises(PlanningFailure, match="does not move"):
        select_object(flow, "table")


def test_a_flow_where_nothing_moves_is_a_planning_failure():
    pts = analytic.box_surface((0.1, 0.1, 0.1), (0.5, 0, 0.05))
    flow = ObjectFlow({"box": ObjectMotion.rigid(pts, np.repeat(np.eye(4)[None], 4, 0))}, "stay")
    with pytest.raises(PlanningFailure, match="nothing moves"):
        select_object(flow)


def test_moving_part_of_the_hinge_is_the_lid():
    motion = analytic.hinge_flow(9).objects["object"]
    mask = moving_mask(motion)
    on_lid = motion.points[:, 2] > 0.08  # lid points above the hinge, block below
    near_hinge = motion.points[:, 2] < 0.05 + 0.3 * 0.26  # lid points move little near the hinge
    assert not mask[~on_lid].any()
    assert mask[on_lid & ~near_hinge].all()


def test_rigid_fit_recovers_the_hinge_rotation():
    flow = analytic.hinge_flow(9, angle_deg=60.0)
    motion = flow.objects["object"]
    mask = moving_mask(motion)
    top = motion.points[mask][np.argmax(motion.points[mask][:, 2])]
    carried = carried_points(motion, top, mask, np.random.default_rng(0), RegionConfig(points=64))
    assert carried.index.shape == (64,) and carried.trajectories.shape == (9, 64, 3)
    assert np.all(carried.weights[carried.weights > 0] <= 1.0)
    fit = rigid_fit(carried)
    expected = analytic.hinge_poses(analytic.HINGE_PIVOT, analytic.HINGE_AXIS, np.deg2rad(60.0), 9)
    assert np.abs(fit - expected).max() < 1e-5
    assert np.isclose(np.rad2deg(geometry.rotation_angle(fit[-1])), 60.0, atol=1e-3)


def test_carried_points_are_padded_with_zero_weight():
    motion = analytic.translation_flow(5).objects["object"]
    mask = moving_mask(motion)
    carried = carried_points(
        motion, motion.points[0], mask, np.random.default_rng(0), RegionConfig(points=4096)
    )
    real = int((carried.weights > 0).sum())
    assert 0 < real < 4096
    assert np.all(carried.weights[real:] == 0)


def _two_links(num_frames: int = 9):
    """A 2 cm thick, 30 cm arm turning 40 degrees about its foot, and a 10 cm head beyond its
    tip turning 60 degrees more (a desk lamp): (points, trajectories, is_head)."""
    arm = analytic.box_surface((0.02, 0.02, 0.29), (0.0, 0.0, 0.145), spacing=0.01)
    head = analytic.box_surface((0.09, 0.02, 0.02), (0.06, 0.0, 0.3), spacing=0.01)
    y = np.array([0.0, 1.0, 0.0])
    arm_poses = analytic.hinge_poses(np.zeros(3), y, np.deg2rad(40.0), num_frames)
    tip = np.array([0.0, 0.0, 0.3])
    head_local = analytic.hinge_poses(tip, y, np.deg2rad(60.0), num_frames)
    traj = np.concatenate(
        [
            geometry.transform_points(arm_poses, np.broadcast_to(arm, (num_frames, len(arm), 3))),
            geometry.transform_points(arm_poses @ head_local, np.broadcast_to(head, (num_frames, len(head), 3))),
        ],
        1,
    )
    return traj[0], traj, np.r_[np.zeros(len(arm), bool), np.ones(len(head), bool)]


def test_carried_points_stay_on_the_grasped_link():
    pts, traj, is_head = _two_links()
    motion = ObjectMotion(
        pts, traj, pts[:1], np.tile([1.0, 0, 0, 0], (9, 1, 1)), np.zeros((9, 1, 3))
    )
    mask = np.linalg.norm(traj[-1] - traj[0], axis=1) > 0.05
    grasp = np.array([0.0, 0.0, 0.25])  # on the arm, 5 cm below the head's joint
    carried = carried_points(motion, grasp, mask, np.random.default_rng(0), RegionConfig())
    index = carried.index[carried.weights > 0]
    # the head turns away from the arm: only its end at the joint stays within
    # rigid_tolerance (1 cm) of the arm's motion and is carried
    assert len(index) >= 50 and np.all(pts[index[is_head[index]], 0] < 0.04)
    assert is_head[np.flatnonzero(mask)].sum() > 3 * is_head[index].sum()
    fit = rigid_fit(carried)
    expected = analytic.hinge_poses(np.zeros(3), np.array([0.0, 1, 0]), np.deg2rad(40.0), 9)
    assert np.abs(fit - expected).max() < 2e-3


def _lamp_tip(num_frames: int = 9):
    """A 12 mm thin arm (40 degrees about its foot) whose tip is inside a head's 3 cm thick
    neck (60 degrees more about the tip), 5 mm spacing: (points, motion, is_head)."""
    arm = analytic.box_surface((0.02, 0.012, 0.29), (0.0, 0.0, 0.145), spacing=0.005)
    head = analytic.box_surface((0.12, 0.03, 0.03), (0.045, 0.0, 0.2965), spacing=0.005)
    y = np.array([0.0, 1.0, 0.0])
    arm_poses = analytic.hinge_poses(np.zeros(3), y, np.deg2rad(40.0), num_frames)
    head_local = analytic.hinge_poses(np.array([0.0, 0.0, 0.3]), y, np.deg2rad(60.0), num_frames)
    traj = np.concatenate(
        [
            geometry.transform_points(arm_poses, np.broadcast_to(arm, (num_frames, len(arm), 3))),
            geometry.transform_points(arm_poses @ head_local, np.broadcast_to(head, (num_frames, len(head), 3))),
        ],
        1,
    )
    motion = ObjectMotion(
        traj[0], traj, traj[0, :1], np.tile([1.0, 0, 0, 0], (num_frames, 1, 1)), np.zeros((num_frames, 1, 3))
    )
    return traj[0], motion, np.r_[np.zeros(len(arm), bool), np.ones(len(head), bool)]


def test_the_grasped_link_is_the_one_the_fingers_touch():
    """Fingers on the arm's two faces 1 cm below the head's neck: the head's points are nearer
    their midpoint (inside the arm) than the arm's faces are, yet the arm is what they hold."""
    pts, motion, is_head = _lamp_tip()
    arm = np.flatnonzero(~is_head)
    contacts = np.array([pts[arm[np.argmin(np.linalg.norm(pts[arm] - [0.0, side, 0.28], axis=1))]]
                         for side in (-0.006, 0.006)])
    centre = contacts.mean(0)
    nearest = np.argsort(np.linalg.norm(pts - centre, axis=1))[:12]
    assert is_head[nearest].sum() >= 8  # what the midpoint alone takes for the grasped part
    mask = np.ones(len(pts), bool)
    by_contacts = rigid_fit(carried_points(motion, contacts, mask, np.random.default_rng(0), RegionConfig()))
    assert abs(np.rad2deg(geometry.rotation_angle(by_contacts[-1])) - 40.0) < 0.5  # the arm's 40
    by_centre = rigid_fit(carried_points(motion, centre, mask, np.random.default_rng(0), RegionConfig()))
    assert np.rad2deg(geometry.rotation_angle(by_centre[-1])) > 99.0  # the head's 100


def test_an_exact_flow_carries_only_what_moves_with_the_grasped_link():
    """On an exact flow the tolerance shrinks to ``min_rigid_tolerance``: the head's points
    that stay within 1 cm of the arm's motion (up to ~3 cm from the joint) are not carried;
    with 1 mm of noise it grows with the noise (between the two) and keeps the whole arm."""
    pts, motion, is_head = _lamp_tip()
    contacts = np.array([[0.0, -0.006, 0.26], [0.0, 0.006, 0.26]])
    mask = np.ones(len(pts), bool)

    def carried(m, **config):
        c = carried_points(m, contacts, mask, np.random.default_rng(0), RegionConfig(points=4096, **config))
        index = c.index[c.weights > 0]
        return int(is_head[index].sum()), int((~is_head[index]).sum())

    arm_near = 363  # the arm's points within attach_radius of the grasp
    assert carried(motion) == (2, arm_near)
    assert carried(motion, min_rigid_tolerance=0.01)[0] >= 20  # the tolerance before: 24
    noise = np.random.default_rng(1).normal(0, 0.001, motion.trajectories.shape)
    noise[0] = 0.0
    noisy = ObjectMotion(motion.points, motion.trajectories + noise, motion.points[:1],
                         np.tile([1.0, 0, 0, 0], (9, 1, 1)), np.zeros((9, 1, 3)))
    head, arm = carried(noisy)
    assert arm == arm_near and 4 <= head <= 14  # 9


def test_a_push_keeps_the_wide_tolerance_a_grip_does_not():
    """A push holds nothing, so the region it follows keeps the 1 cm tolerance; a grip at the
    same place carries only what moves with its link (the README's quick 240-iteration laptop
    flow had no plan at all with the tight tolerance on its pushes)."""
    from planning.config import PlanConfig
    from planning.grasps import Grasp
    from planning.search import CandidateSearch

    pts, motion, is_head = _lamp_tip()
    mask = np.ones(len(pts), bool)
    config = PlanConfig(region=RegionConfig(points=4096))
    search = CandidateSearch(config, None, None, None, None, motion, mask, None, np.random.default_rng(0))
    contacts = np.array([[0.0, -0.006, 0.26], [0.0, 0.006, 0.26]])
    grip = Grasp(np.eye(4), 0.012, 1.0, contacts)
    push = Grasp(np.eye(4), 0.0, 1.0, contacts[[0, 0]], mode="push")

    def head_points(carried):
        return int(is_head[carried.index[carried.weights > 0]].sum())

    assert head_points(search.carried(grip)) == 2
    assert head_points(search.carried(push)) >= 20  # 24


def test_local_bending_is_large_at_a_joint_and_nil_along_a_link():
    pts, motion, _ = _lamp_tip()
    mask = np.ones(len(pts), bool)
    mid_arm = local_bending(motion, np.array([0.0, 0.0, 0.15]), mask, 0.05)
    at_joint = local_bending(motion, np.array([0.0, 0.0, 0.28]), mask, 0.05)
    on_head = local_bending(motion, np.array([0.08, 0.0, 0.3]), mask, 0.05)
    assert mid_arm < 1e-6 and on_head < 1e-6  # each link moves rigidly
    assert 0.014 < at_joint < 0.017  # arm and head within 5 cm turn 60 degrees apart: 15.6 mm
    assert local_bending(motion, np.array([1.0, 0.0, 0.0]), mask, 0.05) == 0.0  # nothing near


def test_a_pinch_carries_its_point_by_translation():
    pts, traj, _ = _two_links()
    motion = ObjectMotion(
        pts, traj, pts[:1], np.tile([1.0, 0, 0, 0], (9, 1, 1)), np.zeros((9, 1, 3))
    )
    mask = np.ones(len(pts), bool)
    carried = pinched_point(motion, pts[40] + 0.0001, mask, RegionConfig(points=16))
    assert (carried.weights > 0).sum() == 4 and carried.index[0] == 40
    fit = rigid_fit(carried)
    np.testing.assert_allclose(fit[:, :3, :3], np.broadcast_to(np.eye(3), (9, 3, 3)), atol=1e-9)
    np.testing.assert_allclose(fit[:, :3, 3], traj[:, 40] - traj[0, 40], atol=1e-6)


def test_rigid_residual_is_the_flow_s_distance_from_moving_rigidly():
    from planning.region import CarriedPoints

    # A square of four points turns 30 degrees and shifts; at frame 2 it also grows by 3 mm
    # outwards at every corner, which no rigid motion reproduces: the residual is exactly 3 mm.
    square = np.array([[0.1, 0.1, 0.0], [-0.1, 0.1, 0.0], [-0.1, -0.1, 0.0], [0.1, -0.1, 0.0]])
    r = geometry.rotation_about(np.array([0.0, 0.0, 1.0]), np.deg2rad([0.0, 15.0, 30.0]))
    traj = (
        np.einsum("tij,pj->tpi", r, square)
        + np.array([[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]])[:, None]
    )
    radial = traj[2] - traj[2].mean(0)
    traj[2] += 0.003 * radial / np.linalg.norm(radial, axis=1, keepdims=True)
    carried = CarriedPoints(np.arange(4), np.ones(4), traj)
    assert rigid_residual(carried) == pytest.approx([0.0, 0.0, 0.003], abs=1e-9)
    # Zero-weight padding does not count.
    padded = CarriedPoints(
        np.zeros(5, int), np.r_[np.ones(4), 0.0], np.concatenate([traj, traj[:, :1] + 1.0], 1)
    )
    assert rigid_residual(padded) == pytest.approx([0.0, 0.0, 0.003], abs=1e-9)
