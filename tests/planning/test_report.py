"""The terminal summary of a plan, and the reasons a trajectory is not accepted."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest


def test_describe_reports_grasp_error_and_time(plans):
    from planning.report import describe

    text = describe(plans["arc"][1])
    assert "grasp 'object'" in text and "alignment error: mean" in text and "solve" in text
    # the analytic scenes hold nothing but the object: no figure for the rest of the scene
    assert "motion_clearance_m" not in plans["arc"][1].costs
    assert re.search(r"clearance: table \d+ mm; rest of the scene while moving it: arm -, hand -", text), text
    near = dataclasses.replace(plans["arc"][1], costs=plans["arc"][1].costs | {"motion_clearance_m": 0.031,
                                                                               "hand_clearance_m": -0.0012})
    assert "arm 31 mm, hand -1 mm" in describe(near)


@pytest.mark.parametrize(("arm", "hand", "why"), [
    (float("inf"), float("inf"), None),
    (-0.009, -0.0019, None),  # within both tolerances (10 mm for the arm's spheres, 2 for the hand)
    (-0.011, 0.05, "the panda would hit the rest of the scene while moving 'banana' (11 mm overlap at step 13)"),
    (0.05, -0.0021, "the panda's hand would hit the rest of the scene while moving 'banana' (2 mm into it at step 14)"),
])
def test_a_trajectory_into_the_rest_of_the_scene_is_not_accepted(arm, hand, why):
    from planning.config import PlanConfig
    from planning.report import TrajectoryResult
    from planning.trajopt import TrajSolution

    s = 24
    ok = TrajectoryResult(TrajSolution(np.zeros((s, 7)), np.zeros(s), np.full(s, 0.05)), np.zeros((s, 7)),
                          np.tile(np.eye(4), (s, 1, 1)), np.zeros((9, 4)), 0.001, 0.002, 0.001, 0.05, 3, 0.02)
    traj = dataclasses.replace(ok, motion_clearance=arm, motion_step=13, hand_clearance=hand, hand_step=14)
    problem = traj.problem(PlanConfig(), "banana")
    assert (problem is None) if why is None else problem.startswith(why), problem
