"""Object selection, moving part, carried points and the rigid fit, on flows with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.errors import InputError, PlanningFailure
from chord_robot.flow import ObjectFlow, ObjectMotion
from planning import analytic, se3
from planning.region import RegionConfig, carried_points, moving_mask, rigid_fit, select_object


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
    assert np.isclose(np.rad2deg(se3.rotation_angle(fit[-1])), 60.0, atol=1e-3)


def test_carried_points_are_padded_with_zero_weight():
    motion = analytic.translation_flow(5).objects["object"]
    mask = moving_mask(motion)
    carried = carried_points(
        motion, motion.points[0], mask, np.random.default_rng(0), RegionConfig(points=4096)
    )
    real = int((carried.weights > 0).sum())
    assert 0 < real < 4096
    assert np.all(carried.weights[real:] == 0)
