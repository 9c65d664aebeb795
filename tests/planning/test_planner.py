"""End to end on analytic flows: the planned end effector reproduces the grasped points' flow."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy.spatial import cKDTree

from chord_robot import geometry
from chord_robot.errors import PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion
from chord_robot.plans import Plan
from planning import analytic
from planning.grasps import Grasp, gripper_boxes, inside_gripper
from planning.region import moving_mask

from .conftest import BASE, FRAMES

FLOWS = ("translation", "hinge", "arc")


def attachment_error(flow, plan: Plan, radius: float = 0.12) -> np.ndarray:
    """(T, N) reference error of the stored plan: every moving point within ``radius`` of the
    grasp should follow E(t) E(0)^-1 (the flows are rigid, so all of them must)."""
    motion = flow.objects[plan.object]
    mask = moving_mask(motion)
    grasp = geometry.pose_to_matrix(plan.grasp_pose)
    near = mask & (np.linalg.norm(motion.points - grasp[:3, 3], axis=1) < radius)
    ee = geometry.pose_to_matrix(plan.ee_poses[plan.segment("manipulate")])
    local = geometry.transform_points(geometry.invert(grasp), motion.points[near].astype(np.float64))
    predicted = geometry.transform_points(ee, np.broadcast_to(local, (len(ee),) + local.shape))
    return np.linalg.norm(predicted - motion.trajectories[:, near], axis=-1)


@pytest.mark.parametrize("name", FLOWS)
def test_end_effector_reproduces_the_flow(plans, planner, name):
    flow, plan = plans[name]
    err = attachment_error(flow, plan)
    assert err.shape[0] == FRAMES
    assert err.mean() < 0.005, f"{name}: mean error {err.mean() * 1000:.2f} mm"
    assert plan.costs["alignment_mean_m"] < 0.005
    assert plan.mode == "grasp" and 0 < plan.grasp_width <= 0.08


@pytest.mark.parametrize("name", FLOWS)
def test_plan_is_consistent_and_within_joint_limits(plans, planner, name):
    _, plan = plans[name]
    model = planner.model
    assert plan.joints.shape[1] == 7 and plan.joint_names == [
        f"panda_joint{i}" for i in range(1, 8)
    ]
    assert np.all(plan.joints >= model.lower) and np.all(plan.joints <= model.upper)
    a, b = plan.segments["manipulate"]
    assert b - a + 1 == FRAMES
    assert plan.segments["approach"][0] == 0 and plan.segments["retreat"][1] == plan.num_steps - 1
    # ee_poses are the forward kinematics of the joints, placed at the robot base.
    ee = geometry.pose_to_matrix(plan.robot_base) @ model.tcp_pose(plan.joints)
    assert np.abs(ee - geometry.pose_to_matrix(plan.ee_poses)).max() < 1e-5
    assert np.allclose(geometry.pose_to_matrix(plan.robot_base), BASE)
    # The approach starts at home; the grasp is the first manipulate pose.
    assert np.allclose(plan.joints[0], model.home, atol=1e-2)
    at_grasp = geometry.invert(geometry.pose_to_matrix(plan.grasp_pose)) @ geometry.pose_to_matrix(plan.ee_poses[a])
    assert np.linalg.norm(at_grasp[:3, 3]) < 0.002
    assert np.rad2deg(geometry.rotation_angle(at_grasp)) < 1.0
    # Gripper: open on the approach, closed while manipulating, open for the retreat.
    assert plan.gripper[plan.segment("approach")].min() == 1.0
    assert plan.gripper[plan.segment("manipulate")].max() == 0.0
    assert plan.gripper[plan.segment("retreat")].min() == 1.0
    # The pre-grasp is 8 cm back along the approach axis.
    pre = geometry.pose_to_matrix(plan.ee_poses[planner.config.approach_free + 1])
    grasp = geometry.pose_to_matrix(plan.grasp_pose)
    assert np.isclose((grasp[:3, 3] - pre[:3, 3]) @ grasp[:3, 2], 0.08, atol=0.005)


def test_hinge_turns_the_hand_60_degrees_about_the_hinge_axis(plans):
    _, plan = plans["hinge"]
    ee = geometry.pose_to_matrix(plan.ee_poses[plan.segment("manipulate")])
    rel = ee[-1] @ geometry.invert(ee[0])
    assert np.isclose(np.rad2deg(geometry.rotation_angle(rel)), 60.0, atol=1.0)
    r = rel[:3, :3]
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    assert abs(axis / np.linalg.norm(axis) @ analytic.HINGE_AXIS) > 0.99


def test_a_new_flow_of_the_same_shape_does_not_recompile(plans, planner):
    traces = planner.optimizer.traces
    assert traces == 1
    flow = analytic.translation_flow(FRAMES, offset=(0.05, -0.1, 0.08))
    plan = planner.plan(flow, base=BASE, mode="grasp")
    assert planner.optimizer.traces == traces
    assert plan.costs["alignment_mean_m"] < 0.005


def test_push_mode_follows_the_lid(plans, planner):
    # From in front, pushing the top of the lid away would need the Panda's wrist beyond
    # Franka's published limits (panda_joint6 > 3.75 rad); from beside the hinge it is easy.
    flow, _ = plans["hinge"]
    beside = geometry.yaw_pose(0.5, -0.5, 0.0, np.pi / 2)
    plan = planner.plan(flow, base=beside, mode="push")
    assert plan.mode == "push" and plan.grasp_width == 0.0
    assert plan.gripper.max() == 0.0
    assert attachment_error(flow, plan).mean() < 0.005


def test_a_target_outside_the_workspace_is_a_planning_failure(planner):
    flow = analytic.translation_flow(FRAMES, offset=(1.2, 0.0, 0.3))
    with pytest.raises(PlanningFailure, match="workspace"):
        planner.plan(flow, base=BASE, mode="grasp")


def test_automatic_base_placement_reaches_the_motion(planner):
    flow = analytic.arc_flow(FRAMES)
    plan = planner.plan(flow)  # no base: placed automatically
    base = geometry.pose_to_matrix(plan.robot_base)
    assert abs(base[2, 3] - 0.0) < 1e-6  # on the table top the box stands on
    assert plan.costs["alignment_mean_m"] < 0.005
    # The base faces the object.
    to_object = flow.objects["object"].points.mean(0)[:2] - base[:2, 3]
    assert base[:2, 0] @ to_object / np.linalg.norm(to_object) > 0.9


def test_plan_round_trips_through_zarr(plans, tmp_path):
    _, plan = plans["arc"]
    path = tmp_path / "plan.zarr"
    plan.save(path)
    back = Plan.load(path)
    assert (
        back.segments == plan.segments
        and back.robot_urdf == "pybullet_data:franka_panda/panda.urdf"
    )
    assert np.allclose(back.joints, plan.joints) and np.allclose(back.robot_base, plan.robot_base)
    assert back.costs["alignment_mean_m"] == pytest.approx(plan.costs["alignment_mean_m"])


class FixedGraspPlanner:
    """A stand-in for a learned planner: one top-down grasp across the box's narrow side."""

    def __init__(self, pose: np.ndarray) -> None:
        self.pose = pose
        self.calls = 0

    def propose(self, request, rng):
        from planning.grasps import Grasp

        self.calls += 1
        contacts = self.pose[:3, 3] + np.outer([-1, 1], self.pose[:3, 1]) * 0.02
        return [Grasp(self.pose, 0.04, 1.0, contacts)]


def test_a_plugged_in_grasp_planner_is_used(planner):
    from planning.planner import FlowPlanner

    flow = analytic.translation_flow(FRAMES)
    center = flow.objects["object"].points.mean(0) + np.array([0.0, 0.02, 0.03])
    pose = geometry.frame_from_axes(np.array([0.0, 0, -1]), np.array([1.0, 0, 0]), center)
    custom = FixedGraspPlanner(pose)
    other = FlowPlanner(planner.config, model=planner.model, grasp_planner=custom)
    other.optimizer, other.ik = planner.optimizer, planner.ik  # share the compiled solvers
    plan = other.plan(flow, base=BASE, mode="grasp")
    assert custom.calls == 1
    got = geometry.pose_to_matrix(plan.grasp_pose)
    assert np.allclose(got[:3, 3], center, atol=1e-6)
    assert abs(got[:3, 1] @ pose[:3, 1]) > 0.999  # the grasp or its 180-degree twin
    assert plan.costs["alignment_mean_m"] < 0.005


def test_base_parsing():
    from chord_robot.errors import InputError
    from planning.robot import parse_base

    base = parse_base("0.1,-0.2,0.05,90")
    assert np.allclose(base[:3, 3], [0.1, -0.2, 0.05]) and np.allclose(
        base[:3, 0], [0, 1, 0], atol=1e-12
    )
    with pytest.raises(InputError, match="x,y,z,yaw"):
        parse_base("1,2,3")


def test_auto_mode_pushes_what_the_gripper_cannot_hold(planner):
    # A 12 x 12 x 10 cm box sliding 15 cm along y: wider than the 8 cm gripper everywhere.
    pts = analytic.box_surface((0.12, 0.12, 0.10), (0.5, -0.05, 0.05))
    poses = np.repeat(np.eye(4)[None], FRAMES, 0)
    poses[:, 1, 3] = 0.15 * analytic.ease(FRAMES)
    flow = ObjectFlow({"crate": ObjectMotion.rigid(pts, poses)}, "push the crate")
    plan = planner.plan(flow, {"table": analytic.table()}, base=BASE, mode="auto")
    assert plan.mode == "push" and plan.object == "crate"
    grasp = geometry.pose_to_matrix(plan.grasp_pose)
    assert grasp[:3, 2] @ np.array([0.0, 1.0, 0.0]) > 0.5  # pushing along +y, from behind
    assert plan.costs["alignment_mean_m"] < 0.005


def laptop_flow(end_deg: float, start_deg: float = 105.0) -> ObjectFlow:
    """A laptop 20 x 30 cm whose lid (1 cm thick), hinged at the base's far edge, closes from
    ``start_deg`` to ``end_deg``; its base stays still."""
    pivot, axis = np.array([0.6, 0.0, 0.02]), np.array([0.0, 1.0, 0.0])
    base = analytic.box_surface((0.2, 0.3, 0.02), (0.5, 0.0, 0.01))
    closed = analytic.box_surface((0.19, 0.28, 0.01), (0.505, 0.0, 0.025))
    lid = geometry.transform_points(analytic.hinge_poses(pivot, axis, np.deg2rad(start_deg), 2)[-1], closed)
    poses = analytic.hinge_poses(pivot, axis, np.deg2rad(end_deg - start_deg), FRAMES)
    trajectories = np.concatenate([geometry.transform_points(poses, np.broadcast_to(lid, (FRAMES, *lid.shape))),
                                   np.broadcast_to(base, (FRAMES, *base.shape))], 1)
    still = np.repeat(np.eye(4)[None], FRAMES, 0)
    return ObjectFlow({"laptop": ObjectMotion(np.concatenate([lid, base]), trajectories),
                       "table": ObjectMotion.rigid(analytic.table(), still, static=True)}, "close the laptop")


def test_a_grip_keeps_its_hand_off_the_objects_still_part(planner):
    # Closed to 5 degrees, the lid's far edge is 1.7 cm above the base: fingers 1.8 cm thick
    # that hold it would end inside the base (in simulation they met it and shoved the laptop).
    with pytest.raises(PlanningFailure) as failure:
        planner.plan(laptop_flow(5.0), mode="grasp")
    proposed = int(re.search(r"(\d+) grasp proposals", str(failure.value)).group(1))
    refused = int(re.search(r"(\d+) grips left out: the hand would meet the object's still part", str(failure.value)).group(1))
    assert proposed > 10 and refused == proposed, failure.value  # 26 of 26
    assert "push (--mode push)" in str(failure.value)
    # Closed to 60 degrees there is room: a grip, whose planned hand stays clear of the base.
    flow = laptop_flow(60.0)
    plan = planner.plan(flow, mode="grasp")
    assert plan.mode == "grasp" and plan.costs["alignment_mean_m"] < 0.002
    assert 1 <= plan.costs["grips_into_object"] <= 10  # 5: grips low on the lid swing into the base
    base = analytic.box_surface((0.2, 0.3, 0.02), (0.5, 0.0, 0.01))
    ee = geometry.pose_to_matrix(plan.ee_poses[plan.segment("manipulate")])
    boxes = gripper_boxes(planner.config.robot.gripper, plan.grasp_width, 0.0)
    inside = inside_gripper(ee, base, boxes, planner.config.still_clearance)
    assert not (inside[1:] & ~inside[0]).any()


def test_the_hand_is_checked_against_the_scene_by_its_own_shape(plans, planner):
    """While moving the object, the hand's own boxes (closed on it) are measured against the
    rest of the scene, not the spheres round the open hand: a point 4 mm beside a closed finger
    mid-motion is at most 4 mm clear (neighbouring samples of the moving hand pass nearer) where
    the spheres overlap it by 8 mm; one 5 mm into a finger is in; after the
    release the open fingers count: a point 4 mm beside one where the gripper opens is 4 mm
    clear, one 5 mm into it 5 mm in, where a closed finger does not reach."""
    from planning.clearance import hand_clearance, motion_clearance

    _, plan = plans["translation"]
    layout = planner.layout(FRAMES)
    a, t = layout.grasp, layout.frames
    j = plan.joints  # the plan repeats the grasp and the last manipulate step (gripper at rest)
    q = np.concatenate([j[: a + 1], j[a + 2 : a + t + 1], j[a + t + 2 :]])
    assert len(q) == layout.size and np.array_equal(q[a + t - 1], j[a + t + 1])
    grasp = Grasp(geometry.pose_to_matrix(plan.grasp_pose), plan.grasp_width, 0.0, np.zeros((2, 3)))
    tcp = BASE @ planner.model.tcp_pose(q)
    g = planner.config.robot.gripper
    mid = a + t // 2

    def at(step, y, z):  # a point in the TCP frame of a step -> world
        return (tcp[step] @ [0.0, y, z, 1.0])[:3]

    def measure(point):
        tree = cKDTree(point[None])
        return hand_clearance(planner.model, layout, q, BASE, tree, grasp), motion_clearance(
            planner.optimizer, layout, q, BASE, tree)

    assert 0.036 < grasp.width < 0.072  # so beside the closed finger is inside the open one
    beside = at(mid, grasp.width / 2 + g.finger_thickness + 0.004, g.finger_tip - 0.02)
    (gap, step), (arm, _) = measure(beside)
    assert 0.0 < gap <= 0.004 + 1e-9 and step in (mid - 1, mid), (gap, step)
    assert arm > 0.02  # the arm's spheres are far from the fingers
    spheres = planner.optimizer.spheres
    hand = spheres.frame == len(planner.optimizer.chain.links)
    centres = geometry.transform_points(BASE, planner.optimizer.sphere_centers(q[mid : mid + 1])[0, hand])
    assert (np.linalg.norm(centres - beside, axis=1) - spheres.radius[hand]).min() < -0.006  # 8 mm
    (gap, step), _ = measure(at(mid, grasp.width / 2 + 0.005, g.finger_tip - 0.02))
    assert -0.01 < gap <= -0.005 + 1e-9 and step in (mid - 1, mid), (gap, step)
    last = a + t - 1  # where the gripper opens, at rest, before the retreat backs off
    opened = g.max_width / 2 + g.finger_thickness  # the open finger's outer face
    (gap, step), _ = measure(at(last, opened + 0.004, g.finger_tip - 0.01))
    assert gap == pytest.approx(0.004, abs=1e-4) and step == last, (gap, step)
    (gap, step), _ = measure(at(last, opened - 0.005, g.finger_tip - 0.01))
    assert gap == pytest.approx(-0.005, abs=1e-4) and step == last, (gap, step)


def test_a_carried_object_is_lifted_over_what_its_hand_would_hit(plans, planner):
    """A ridge standing where the closed fingers' tips pass mid-motion: the plan raises the
    carried box's path until the hand clears it, the same grip (the flow left upwards where the
    ridge stands, not at the grasp); with no lift allowed that grip is refused for its hand."""
    import copy

    flow, plan = plans["translation"]
    layout = planner.layout(FRAMES)
    a, t = layout.grasp, layout.frames
    j = plan.joints
    q = np.concatenate([j[: a + 1], j[a + 2 : a + t + 1], j[a + t + 2 :]])
    tcp = BASE @ planner.model.tcp_pose(q)
    g = planner.config.robot.gripper
    mid = a + t // 2
    side = plan.grasp_width / 2 + g.finger_thickness / 2
    ridge = np.array([(tcp[mid] @ [x, s * side, g.finger_tip - 0.004, 1.0])[:3]
                      for x in (-0.008, 0.0, 0.008) for s in (-1, 1)])
    scene = {"table": analytic.table(), "ridge": ridge}
    said: list[str] = []
    lifted = planner.plan(flow, scene, base=BASE, mode="grasp", rng=np.random.default_rng(0), log=said.append)
    assert any(line.startswith("lifted the carried 'object' up to") for line in said), said
    np.testing.assert_allclose(lifted.grasp_pose, plan.grasp_pose, atol=1e-9)  # the same grip, lifted
    assert lifted.costs["hand_clearance_m"] > 0.0, lifted.costs  # clear (lift_clearance: 5 mm)
    rise = geometry.pose_to_matrix(lifted.ee_poses)[:, 2, 3] - geometry.pose_to_matrix(plan.ee_poses)[:, 2, 3]
    assert rise[a + 1 + t // 2] > 0.003 and abs(rise[a + 1]) < 0.002, rise  # lifted mid-way; gripped where it was
    strict = copy.copy(planner)  # no lift allowed: that grip is refused for the hand
    strict.config = dataclasses.replace(planner.config, max_lift=0.0)
    said.clear()
    try:
        other = strict.plan(flow, scene, base=BASE, mode="grasp", rng=np.random.default_rng(0), log=said.append)
    except PlanningFailure as e:
        other = e
    assert any("hand would hit the rest of the scene while moving 'object'" in line for line in said), said
    assert isinstance(other, PlanningFailure) or not np.allclose(other.grasp_pose, plan.grasp_pose)


def test_a_grip_on_a_still_part_is_never_planned_to_follow_the_moving_one(planner):
    """A lamp whose 2 cm rod stays still while its head (12 x 12 x 10 cm: too big for the gripper)
    swings 8 cm along +y: a grip on the rod carries nothing that moves, and following the head
    from there would drag the lamp, so no grip is planned (a push on the head is what is left)."""
    rod = analytic.box_surface((0.02, 0.02, 0.2), (0.5, 0.0, 0.1), spacing=0.005)
    head = analytic.box_surface((0.12, 0.12, 0.10), (0.5, 0.0, 0.25))
    poses = np.repeat(np.eye(4)[None], FRAMES, 0)
    poses[:, 1, 3] = 0.08 * analytic.ease(FRAMES)
    moved = geometry.transform_points(poses, np.broadcast_to(head, (FRAMES, *head.shape)))
    lamp = ObjectMotion(np.concatenate([rod, head]),
                        np.concatenate([np.broadcast_to(rod, (FRAMES, *rod.shape)), moved], 1))
    flow = ObjectFlow({"lamp": lamp}, "swing the lamp's head")
    with pytest.raises(PlanningFailure) as failure:
        planner.plan(flow, {"table": analytic.table()}, base=BASE, mode="grasp")
    assert failure.value.stage == "grasp" and "(0 grasp proposals" in str(failure.value), failure.value
    assert "left out: no finger on the moving part" in str(failure.value) and "--mode push" in str(failure.value)
    plan = planner.plan(flow, {"table": analytic.table()}, base=BASE, mode="auto")
    assert plan.mode == "push" and geometry.pose_to_matrix(plan.grasp_pose)[2, 3] > 0.2  # on the head
