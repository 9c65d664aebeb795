"""A grip on a hinged link follows a hinge (`planning.hinge`), on flows with known motion."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from chord_robot import geometry
from chord_robot.flow import ObjectMotion
from planning import analytic
from planning.hinge import HingeConfig, hinged
from planning.planner import FlowPlanner
from planning.region import carried_points, moving_mask, rigid_fit

from .conftest import BASE, FRAMES

ON = HingeConfig(enabled=True)
GRASP = analytic.HINGE_PIVOT + np.array([0.0, 0.0, 0.2])  # on the lid, 15 mm below its top edge
WANDER = np.array([0.02, 0.0, -0.01])  # where the wandering lid's joint ends up (metres)


def wandering_hinge(num_frames: int = FRAMES, wander: np.ndarray = WANDER, wobble_deg: tuple[float, float] = (6.0, 4.0)) -> ObjectMotion:
    """`analytic.hinge_flow`'s lid turning 60 degrees as a generated flow turns it: its joint
    slides 2.2 cm (`WANDER`) and it wobbles about the other two axes (6 and 4 degrees at
    mid-motion); the base block still. (A generated lamp's arm, docs/planning-notes.md, session 25.)"""
    exact = analytic.hinge_flow(num_frames).objects["object"]
    lid = exact.points[:, 2] > analytic.HINGE_PIVOT[2] + 0.001  # the block's top is at the pivot's height
    s = analytic.ease(num_frames)
    bump = np.sin(np.pi * s)
    pivot = analytic.HINGE_PIVOT
    wobble = geometry.rotation_about(np.array([0.0, 0.0, 1.0]), np.deg2rad(wobble_deg[0]) * bump) @ \
        geometry.rotation_about(np.array([1.0, 0.0, 0.0]), np.deg2rad(wobble_deg[1]) * bump)
    turn = wobble @ geometry.rotation_about(analytic.HINGE_AXIS, np.deg2rad(60.0) * s)
    poses = geometry.make_transform(turn, pivot + s[:, None] * wander - np.einsum("tij,j->ti", turn, pivot))
    traj = exact.trajectories.copy()
    traj[:, lid] = geometry.transform_points(poses, np.broadcast_to(exact.points[lid], traj[:, lid].shape))
    return ObjectMotion(exact.points, traj)


def carried(motion: ObjectMotion, grasp: np.ndarray = GRASP):
    return carried_points(motion, grasp, moving_mask(motion), np.random.default_rng(0))


def pivot_travel(poses: np.ndarray) -> float:
    """How far (metres) ``poses`` (T, 4, 4) carry the true hinge's pivot at worst."""
    moved = geometry.transform_points(poses, np.broadcast_to(analytic.HINGE_PIVOT, (len(poses), 3)))
    return float(np.linalg.norm(moved - analytic.HINGE_PIVOT, axis=-1).max())


def test_an_exact_hinge_keeps_its_own_pivot_and_changes_nothing():
    motion = analytic.hinge_flow(FRAMES).objects["object"]
    region = carried(motion)
    hinge = hinged(motion, moving_mask(motion), region, ON)
    assert hinge is not None and hinge.own_pivot
    assert abs(hinge.axis @ analytic.HINGE_AXIS) > 0.9999
    assert np.isclose(np.rad2deg(abs(hinge.angles[-1])), 60.0, atol=0.05)
    assert pivot_travel(hinge.poses) < 2e-4 and hinge.residual < 2e-4
    keep = region.weights > 0
    assert np.abs(hinge.carry(region).trajectories[:, keep] - region.trajectories[:, keep]).max() < 5e-4


def test_a_hinge_that_wobbles_about_a_fixed_pivot_keeps_it():
    motion = wandering_hinge(wander=np.zeros(3), wobble_deg=(1.5, 1.0))
    hinge = hinged(motion, moving_mask(motion), carried(motion), ON)
    assert hinge is not None and hinge.own_pivot, hinge
    assert pivot_travel(hinge.poses) < 2e-4 and hinge.residual < 0.002  # 0.07 mm; the wobble's 1.7 mm


def test_a_wandering_hinge_turns_about_where_the_lid_meets_its_base():
    motion = wandering_hinge()
    region = carried(motion)
    assert pivot_travel(rigid_fit(region)) > 0.02  # held as the flow says, the hand drags the hinge 2.2 cm
    hinge = hinged(motion, moving_mask(motion), region, ON)
    assert hinge is not None and not hinge.own_pivot
    # the normal of the plane the lid's points move nearest: 7.7 degrees off the joint's axis
    assert np.rad2deg(np.arccos(abs(hinge.axis @ analytic.HINGE_AXIS))) < 9.0
    assert np.isclose(np.rad2deg(abs(hinge.angles[-1])), 60.0, atol=1.0)  # 59.5
    # the lid meets its block 5 mm above the true pivot: the hinge carries that pivot 7.0 mm
    assert pivot_travel(hinge.poses) < 0.008
    assert abs(hinge.residual - 0.0325) < 0.003  # what it leaves of the flow (the wander, the wobble)


def test_no_hinge_for_a_free_object_a_slide_or_a_link_off_the_still_part():
    """...and a lamp held by its arm has one, held by its head none."""
    arc = analytic.arc_flow(FRAMES).objects["object"]  # nothing of it stays still
    assert hinged(arc, moving_mask(arc), carried(arc, arc.points.mean(0)), ON) is None
    exact = analytic.hinge_flow(FRAMES).objects["object"]
    lid = exact.points[:, 2] > analytic.HINGE_PIVOT[2] + 0.001
    slide = exact.trajectories.copy()  # the lid slides 15 cm along x, as a drawer does
    slide[:, lid] = exact.points[lid] + analytic.ease(FRAMES)[:, None, None] * np.array([0.15, 0.0, 0.0])
    drawer = ObjectMotion(exact.points, slide)
    assert hinged(drawer, moving_mask(drawer), carried(drawer), ON) is None
    # a lamp: an arm hinged on its block turns 30 degrees, a head hinged on the arm 40 more; held
    # by the head, which touches no still point and turns about no fixed one
    block = analytic.box_surface((0.06, 0.06, 0.05), (0.5, 0.0, 0.025), spacing=0.01)
    arm = analytic.box_surface((0.02, 0.02, 0.25), (0.5, 0.0, 0.18), spacing=0.005)
    head = analytic.box_surface((0.1, 0.04, 0.04), (0.56, 0.0, 0.33), spacing=0.005)
    y = np.array([0.0, 1.0, 0.0])
    arm_turn = analytic.hinge_poses(np.array([0.5, 0.0, 0.05]), y, np.deg2rad(30.0), FRAMES)
    head_turn = arm_turn @ analytic.hinge_poses(np.array([0.5, 0.0, 0.31]), y, np.deg2rad(40.0), FRAMES)
    points = np.concatenate([block, arm, head])
    traj = np.concatenate([np.broadcast_to(block, (FRAMES,) + block.shape),
                           geometry.transform_points(arm_turn, np.broadcast_to(arm, (FRAMES,) + arm.shape)),
                           geometry.transform_points(head_turn, np.broadcast_to(head, (FRAMES,) + head.shape))], 1)
    lamp = ObjectMotion(points, traj)
    assert hinged(lamp, moving_mask(lamp), carried(lamp, np.array([0.59, 0.0, 0.33])), ON) is None
    arm_hinge = hinged(lamp, moving_mask(lamp), carried(lamp, np.array([0.5, 0.0, 0.2])), ON)  # held by the arm
    assert arm_hinge is not None and arm_hinge.own_pivot and pivot_travel(arm_hinge.poses) < 1e-3
    assert hinged(exact, lid, carried(exact)) is None  # off by default


def test_a_grip_on_a_wandering_lid_plans_along_the_hinge(planner):
    motion = wandering_hinge()
    flow = analytic.hinge_flow(FRAMES)
    flow.objects["object"] = motion
    hinged_planner = FlowPlanner(replace(planner.config, hinge=ON), model=planner.model)
    plan = hinged_planner.plan(flow, base=BASE, mode="grasp", rng=np.random.default_rng(0))
    ee = geometry.pose_to_matrix(plan.ee_poses[plan.segment("manipulate")])
    hand = ee @ geometry.invert(ee[0])  # the grasped lid's motion as the hand carries it
    assert pivot_travel(hand) < 0.01  # 9.1 mm; the flow's own would carry it 2.2 cm
    assert np.isclose(np.rad2deg(geometry.rotation_angle(hand[-1])), 60.0, atol=1.5)
    assert abs(plan.costs["hinge_residual_m"] - 0.034) < 0.004  # how far the plan leaves the flow, reported
