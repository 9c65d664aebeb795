"""Planning from a generated flow: a few mm of non-rigid, temporally correlated noise on the
points (what flowgen's fits show) must not read as "unreachable", and the plan must still
follow the underlying motion."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from chord_robot import geometry
from chord_robot.errors import PlanningFailure
from chord_robot.flow import ObjectFlow
from planning import analytic

from .conftest import BASE, FRAMES
from .test_planner import attachment_error

SIGMA = 0.003
"""Per-axis noise, metres: about 5 mm RMS per point in 3D, beyond the planner's 4 mm IK
tolerance (a generated close-laptop flow deviates 4.5-5 mm from rigid at its worst frame)."""


def with_noise(flow: ObjectFlow, sigma: float, seed: int = 0) -> ObjectFlow:
    """``flow`` with every point of "object" displaced by smooth (over ~3 frames) independent
    noise of ``sigma`` metres per axis, zero at frame 0 (where the flow is the scan)."""
    motion = flow.objects["object"]
    t, n = motion.trajectories.shape[:2]
    smooth = gaussian_filter1d(np.random.default_rng(seed).normal(size=(t, n, 3)), 3.0, axis=0)
    smooth -= smooth[:1]
    smooth *= sigma / smooth[1:].std()
    noisy = replace(motion, trajectories=motion.trajectories + smooth)
    return ObjectFlow({**flow.objects, "object": noisy}, flow.task, fps=flow.fps, prior="video")


@pytest.mark.parametrize("name", ["translation", "hinge"])
def test_a_noisy_flow_plans_and_follows_the_true_motion(plans, planner, name):
    clean, _ = plans[name]
    flow = with_noise(clean, SIGMA)
    # The translation is grasped from the front; the lid is pushed from beside its hinge.
    if name == "hinge":
        base, mode = geometry.yaw_pose(0.5, -0.5, 0.0, np.pi / 2), "push"
    else:
        base, mode = BASE, "grasp"
    plan = planner.plan(flow, base=base, mode=mode, rng=np.random.default_rng(0))
    # No rigid motion of the carried points comes within the IK tolerance of this flow at
    # every frame, so an IK error measured against the raw flow (>= this) refused it.
    assert plan.costs["flow_nonrigid_max_m"] > planner.config.ik_tolerance
    assert plan.mode == mode
    # The hand follows the flow as closely as a rigidly attached hand can (the mean noise of
    # the points is ~4.3 mm, their mean distance to their own best rigid fit ~3.8 mm)...
    costs = plan.costs
    assert costs["alignment_mean_m"] < costs["flow_nonrigid_mean_m"] + 0.0005
    assert costs["alignment_mean_m"] < 0.005
    # ...which is closer to the true motion than the flow's points are (up to a rotation of
    # the grasped region that the noise itself implies).
    truth = attachment_error(clean, plan)
    noise = np.linalg.norm(
        flow.objects["object"].trajectories - clean.objects["object"].trajectories, axis=-1
    )
    assert truth.mean() < min(0.004, noise.mean()), f"{name}: {truth.mean() * 1000:.2f} mm"
    if name == "hinge":
        ee = geometry.pose_to_matrix(plan.ee_poses[plan.segment("manipulate")])
        turn = np.rad2deg(geometry.rotation_angle(ee[-1] @ geometry.invert(ee[0])))
        assert turn == pytest.approx(60.0, abs=4.0)  # 62.5 degrees with this noise


def test_noise_does_not_make_an_unreachable_flow_reachable(planner):
    flow = with_noise(analytic.translation_flow(FRAMES, offset=(1.2, 0.0, 0.3)), SIGMA)
    with pytest.raises(PlanningFailure, match="workspace"):
        planner.plan(flow, base=BASE, mode="grasp")
