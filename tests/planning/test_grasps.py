"""Grasp proposals with known answers: a box is grasped across its narrow side; the table is avoided."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot import geometry
from planning import analytic
from planning.grasps import (
    AntipodalGraspPlanner,
    Grasp,
    GraspConfig,
    GraspRequest,
    estimate_normals,
    is_collision_free,
)
from planning.pinch import PinchConfig, PinchPlanner
from planning.push import PushPlanner, motion_directions
from planning.robot import GripperSpec

GRIPPER = GripperSpec()
SIZE = analytic.BOX_SIZE  # 4 x 12 x 10 cm: only the 4 cm side fits the 8 cm gripper
CENTER = (0.5, 0.0, SIZE[2] / 2)


def box_request() -> GraspRequest:
    pts = analytic.box_surface(SIZE, CENTER)
    return GraspRequest(
        pts,
        estimate_normals(pts),
        np.ones(len(pts)),
        analytic.table(),
        GRIPPER,
        np.array([0, 0, -1.0]),
    )


def test_box_normals_point_out_of_its_faces():
    req = box_request()
    rel = (req.points - np.asarray(CENTER)) / (np.asarray(SIZE) / 2)
    face = np.abs(rel).argmax(1)
    to_edge = np.asarray(SIZE) / 2 - np.abs(
        req.points - np.asarray(CENTER)
    )  # 0 on the point's own face
    interior = np.sort(to_edge, 1)[:, 1] > 0.012  # at least 12 mm from every edge
    expected = np.zeros_like(req.points)
    expected[np.arange(len(face)), face] = np.sign(rel[np.arange(len(face)), face])
    cos = np.einsum("ij,ij->i", req.normals[interior], expected[interior])
    assert cos.min() > 0.99


def test_box_is_grasped_across_its_narrow_side():
    grasps = AntipodalGraspPlanner(GraspConfig(samples=150)).propose(
        box_request(), np.random.default_rng(0)
    )
    assert len(grasps) >= 10
    closing = np.stack([g.pose[:3, 1] for g in grasps])
    widths = np.array([g.width for g in grasps])
    assert np.abs(closing[:, 0]).min() > 0.95  # fingers close along x
    assert np.all(np.abs(widths - SIZE[0]) < 0.003)
    # Fingertips never go below the table top; the contacts lie on the two x faces.
    tips = np.array([g.pose[:3, 3] + g.pose[:3, 2] * GRIPPER.finger_tip for g in grasps])
    assert tips[:, 2].min() > 0.0
    for g in grasps:
        assert np.allclose(np.sort(g.contacts[:, 0]), [0.48, 0.52], atol=1e-3)
    scores = [g.score for g in grasps]
    assert scores == sorted(scores, reverse=True)


def test_a_grasp_whose_fingers_hit_the_table_is_rejected():
    # A short box (3 cm): grasped from above near its bottom the fingertips reach the table.
    short = analytic.box_surface((0.04, 0.12, 0.03), (0.5, 0.0, 0.015))
    table = analytic.table()
    down, across = np.array([0.0, 0, -1.0]), np.array([1.0, 0, 0])

    def grasp_at(z: float) -> Grasp:
        return Grasp(
            geometry.frame_from_axes(down, across, np.array([0.5, 0.0, z])), 0.04, 1.0, np.zeros((2, 3))
        )

    scene = np.concatenate([table, short])
    assert not is_collision_free(grasp_at(0.004), scene, GRIPPER)  # tips 4 mm into the table
    assert is_collision_free(grasp_at(0.004), short, GRIPPER)  # it is the table that rejects it
    assert is_collision_free(grasp_at(0.02), scene, GRIPPER)
    # The planner's proposals on the short box all keep the fingertips above the table.
    req = GraspRequest(short, estimate_normals(short), np.ones(len(short)), table, GRIPPER, down)
    grasps = AntipodalGraspPlanner(GraspConfig(samples=150)).propose(req, np.random.default_rng(0))
    assert len(grasps) > 0
    fingertips = np.array([g.pose[:3, 3] + g.pose[:3, 2] * GRIPPER.finger_tip for g in grasps])
    lowest_finger = np.array(
        [
            (
                g.pose[:3, :3]
                @ np.array(
                    [0, s * (g.width / 2 + 0.01 + GRIPPER.finger_thickness), GRIPPER.finger_tip]
                )
            )[2]
            + g.pose[2, 3]
            for g in grasps
            for s in (-1, 1)
        ]
    )
    assert fingertips[:, 2].min() > GraspConfig().clearance
    assert lowest_finger.min() > 0.0


def test_a_grasp_across_the_wide_side_collides_with_the_box():
    req = box_request()
    down, along_y = np.array([0.0, 0, -1.0]), np.array([0.0, 1, 0])
    wide = Grasp(
        geometry.frame_from_axes(down, along_y, np.array([0.5, 0.0, 0.08])), 0.12, 1.0, np.zeros((2, 3))
    )
    assert not is_collision_free(wide, req.points, GRIPPER)


def test_pushes_face_against_the_motion():
    flow = analytic.hinge_flow(11)
    motion = flow.objects["object"]
    dirs = motion_directions(motion.trajectories)
    pts = motion.points.astype(np.float64)
    weights = np.linalg.norm(motion.trajectories[-1] - motion.points, axis=1)
    weights = weights / weights.max()
    req = GraspRequest(
        pts, estimate_normals(pts), weights, analytic.table(), GRIPPER, np.array([0, 0, -1.0])
    )
    pushes = PushPlanner(dirs).propose(req, np.random.default_rng(0))
    assert len(pushes) > 0
    for p in pushes:
        i = np.argmin(np.linalg.norm(pts - p.contacts[0], axis=1))
        assert p.mode == "push" and p.width == 0.0
        assert p.pose[:3, 2] @ dirs[i] > 0.5  # the hand pushes along the motion
        # Just before touching (1 mm + clearance back), hand and sweep are free.
        before = Grasp(p.pose.copy(), 0.0, p.score, p.contacts, "push")
        before.pose[:3, 3] -= p.pose[:3, 2] * 0.006
        assert is_collision_free(before, np.concatenate([req.obstacles, pts]), GRIPPER, sweep=0.06)
        # At the contact the fingertips press 2 mm into the surface.
        tip = p.pose[:3, 3] + p.pose[:3, 2] * GRIPPER.finger_tip
        assert np.isclose((tip - p.contacts[0]) @ p.pose[:3, 2], 0.002, atol=1e-9)


def test_collision_counts_match_a_plain_loop():
    """The batched box test against a point-by-point reference."""
    from planning.grasps import collision_counts, gripper_boxes

    rng = np.random.default_rng(3)
    points = rng.uniform(-0.15, 0.15, size=(400, 3)) + np.array([0.5, 0.0, 0.05])
    poses = np.stack(
        [
            geometry.make_transform(geometry.rotation_about(rng.normal(size=3), rng.uniform(0, np.pi)), [0.5, 0, 0.05])
            for _ in range(6)
        ]
    )
    got = collision_counts(poses, points, GRIPPER, 0.05, 0.04, 0.002)
    boxes = gripper_boxes(GRIPPER, 0.05, 0.04)
    expected = []
    for pose in poses:
        inv = np.linalg.inv(pose)
        count = 0
        for p in points:
            q = inv[:3, :3] @ p + inv[:3, 3]
            count += any(np.all(q >= lo - 0.002) and np.all(q <= hi + 0.002) for lo, hi in boxes)
        expected.append(count)
    assert got.tolist() == expected
    assert max(expected) > 0


def test_box_gaps_are_the_signed_distance_to_the_gripper():
    """Outside: the distance to the nearest box (a point beside a fingertip, one beyond a
    corner); inside: minus the depth to the nearest face; and below zero exactly where the
    box test says inside."""
    from planning.grasps import box_gaps, gripper_boxes, inside_gripper

    boxes = gripper_boxes(GRIPPER, 0.04, 0.0)  # fingers' pads at y = +-0.02
    pose = geometry.make_transform(geometry.rotation_about([0.3, -1.0, 0.2], 0.7), [0.5, 0.1, 0.2])
    tip = GRIPPER.finger_tip
    local = np.array([
        [0.0, 0.0, tip],  # between the pads: 20 mm from either
        [0.0, 0.02 + GRIPPER.finger_thickness / 2, tip + 0.003],  # 3 mm past a fingertip
        [0.0, 0.025, tip - 0.01],  # in a finger, 5 mm from its pad (its nearest face)
        [GRIPPER.finger_depth / 2 + 0.003, 0.02 + GRIPPER.finger_thickness + 0.004, tip + 0.012],  # past a corner
    ])
    world = local @ pose[:3, :3].T + pose[:3, 3]
    gaps = [box_gaps(pose[None], p[None], boxes)[0] for p in world]
    np.testing.assert_allclose(gaps, [0.02, 0.003, -0.005, np.sqrt(0.003**2 + 0.004**2 + 0.012**2)], atol=1e-9)
    rng = np.random.default_rng(5)
    cloud = rng.uniform(-0.12, 0.12, size=(2000, 3)) @ pose[:3, :3].T + pose[:3, 3]
    poses = np.stack([pose, geometry.make_transform(np.eye(3), [0.5, 0.1, 0.2])])
    each = np.stack([box_gaps(poses, c[None], boxes) for c in cloud], axis=1)  # (2, M)
    inside = inside_gripper(poses, cloud, boxes, 0.0)
    assert np.array_equal(each < 0, inside) and inside.any(1).all()
    np.testing.assert_array_equal(box_gaps(poses, cloud, boxes), each.min(1))


def test_both_faces_of_a_thin_plate_get_outward_normals():
    # An 8 mm plate (a laptop lid): each point's neighbours span both faces, so orienting
    # away from the object's centroid would point one face inward.
    size = (0.008, 0.2, 0.25)
    plate = analytic.box_surface(size, (0.5, 0.0, 0.2), spacing=0.008)
    base = analytic.box_surface((0.2, 0.2, 0.02), (0.4, 0.0, 0.01), spacing=0.01)
    pts = np.concatenate([plate, base])
    normals = estimate_normals(pts)[: len(plate)]
    face = np.abs(plate[:, 0] - 0.5) > 0.003  # the two big faces, x = 0.496 and 0.504
    inner = face & (np.abs(plate[:, 1]) < 0.08) & (np.abs(plate[:, 2] - 0.2) < 0.1)
    expected = np.sign(plate[inner, 0] - 0.5)
    assert np.all(normals[inner, 0] * expected > 0.9)
    # ...so the plate is grasped across its thickness
    req = GraspRequest(
        pts,
        estimate_normals(pts),
        np.r_[np.ones(len(plate)), np.zeros(len(base))],
        analytic.table(),
        GRIPPER,
        np.array([0, 0, -1.0]),
    )
    grasps = AntipodalGraspPlanner(GraspConfig(samples=150)).propose(req, np.random.default_rng(0))
    assert len(grasps) > 0
    assert all(abs(g.width - 0.008) < 0.002 and abs(g.pose[0, 1]) > 0.95 for g in grasps)


def _cloth_fold(n: int = 9):
    """A 24 cm sheet on the table whose (-, -) half folds over its anti-diagonal."""
    xs = np.linspace(-0.12, 0.12, 25)
    gx, gy = np.meshgrid(xs, xs)
    pts = np.stack([gx.ravel() + 0.5, gy.ravel(), np.full(gx.size, 0.002)], 1)
    pivot, axis = np.array([0.5, 0.0, 0.008]), np.array([1.0, -1.0, 0.0])
    poses = analytic.hinge_poses(pivot, axis, -np.pi, n)
    side = (pts[:, 0] - 0.5) + pts[:, 1] < 0
    traj = np.repeat(pts[None], n, 0)
    traj[:, side] = geometry.transform_points(poses, np.broadcast_to(pts[side], (n, side.sum(), 3)))
    return pts, traj


def test_a_sheet_is_pinched_from_above_where_it_moves_most_closing_across_its_travel():
    pts, traj = _cloth_fold()
    disp = np.linalg.norm(traj[-1] - traj[0], axis=1)
    req = GraspRequest(
        pts,
        estimate_normals(pts),
        disp / disp.max(),
        analytic.table(),
        GRIPPER,
        np.array([0, 0, -1.0]),
    )
    assert AntipodalGraspPlanner().propose(req, np.random.default_rng(0)) == []
    pinches = PinchPlanner(traj[-1] - traj[0]).propose(req, np.random.default_rng(0))
    best = pinches[0]
    assert best.pinch and best.mode == "grasp" and best.width == 0.0
    np.testing.assert_allclose(best.contacts[0], [0.38, -0.12, 0.002])  # the folding corner
    np.testing.assert_allclose(best.pose[:3, 2], [0, 0, -1], atol=1e-9)  # from above
    tips = best.pose[2, 3] + best.pose[2, 2] * GRIPPER.finger_tip
    assert tips - 0.002 == pytest.approx(PinchConfig().gap)
    travel = (traj[-1] - traj[0])[np.argmin(np.linalg.norm(pts - best.contacts[0], axis=1))]
    assert abs(best.pose[:3, 1] @ travel) < 1e-9  # the fingers close across the travel
    # a box is no sheet
    assert (
        PinchPlanner(np.zeros_like(box_request().points)).propose(
            box_request(), np.random.default_rng(0)
        )
        == []
    )


def test_sparse_points_still_give_antipodal_grasps():
    """A flow sampled about every centimetre (e.g. from a coarse scan): the ray widens with the
    spacing; with the fixed 4 mm ray almost no opposite point lies on the normal line."""
    full = box_request()
    keep = np.random.default_rng(1).choice(len(full.points), size=80, replace=False)
    pts = full.points[keep]
    req = GraspRequest(pts, estimate_normals(pts, k=8), np.ones(len(pts)), analytic.table(), GRIPPER,
                       np.array([0, 0, -1.0]))
    from scipy.spatial import cKDTree

    spacing = float(np.median(cKDTree(pts).query(pts, k=2)[0][:, 1]))
    assert spacing > 0.009
    adaptive = AntipodalGraspPlanner(GraspConfig(samples=150)).propose(req, np.random.default_rng(0))
    fixed = AntipodalGraspPlanner(GraspConfig(samples=150, spacing_factor=0.0)).propose(
        req, np.random.default_rng(0))
    assert len(adaptive) >= 5
    assert len(adaptive) >= 3 * max(len(fixed), 1)
    for g in adaptive:  # still across the narrow side, contacts on the two x faces
        assert abs(g.pose[0, 1]) > 0.8
        assert np.allclose(np.sort(g.contacts[:, 0]), [0.48, 0.52], atol=2e-3)
