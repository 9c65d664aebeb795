"""The step layout: indices, targets of each step, and the repeated grasp/release steps."""

from __future__ import annotations

import numpy as np

from chord_robot import geometry
from planning import analytic
from planning.layout import StepLayout, back_off, step_targets
from planning.region import RegionConfig, carried_points, moving_mask, rigid_fit


def test_layout_indices():
    layout = StepLayout(frames=21, approach_free=4, insert_steps=4, retreat_steps=6)
    assert (layout.first_target, layout.grasp, layout.size) == (5, 9, 36)
    mask = layout.smoothness_mask()
    assert mask.shape == (34,) and mask.sum() == 32
    assert mask[layout.grasp - 1] == 0 and mask[layout.grasp + layout.frames - 2] == 0
    parts = layout.plan_segments(np.arange(layout.size))
    assert [len(p) for p in parts] == [10, 21, 7]
    assert parts[0][-1] == parts[1][0] == 9 and parts[1][-1] == parts[2][0] == 29


def test_step_targets():
    layout = StepLayout(frames=5, approach_free=2, insert_steps=3, retreat_steps=2)
    motion = analytic.translation_flow(5).objects["object"]
    mask = moving_mask(motion)
    grasp = geometry.frame_from_axes(
        np.array([0, 0, -1.0]), np.array([1.0, 0, 0]), np.array([0.5, -0.05, 0.08])
    )
    carried = carried_points(
        motion, grasp[:3, 3], mask, np.random.default_rng(0), RegionConfig(points=32)
    )
    ee = rigid_fit(carried) @ grasp
    local, target, weights = step_targets(layout, grasp, ee, carried, approach=0.08, retreat=0.1)
    assert local.shape == target.shape == (layout.size, 32, 3)
    # Start and free steps have no target; the pre-grasp is 8 cm above the grasp.
    assert weights[: layout.first_target].sum() == 0
    pre = target[layout.first_target, 0]
    assert np.allclose(pre, back_off(grasp, 0.08)[:3, 3]) and np.isclose(pre[2] - 0.08, 0.08)
    # Manipulate steps carry the flow; their points sit at their frame-0 place at the grasp.
    sl = layout.manipulate
    assert np.allclose(target[sl], carried.trajectories)
    assert np.allclose(geometry.transform_points(grasp, local[layout.grasp]), carried.points)
    # The retreat backs 10 cm off the last pose.
    last = target[-1, 0]
    assert np.allclose(last, back_off(ee[-1], 0.1)[:3, 3])
