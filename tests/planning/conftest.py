"""Shared fixtures: one planner (robot + compiled solvers) for every planning test.

JIT compilation is the cost of these tests, so every plan uses the same number of flow
frames (`FRAMES`) and carried points, and the optimiser compiles once per session.
"""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot import geometry
from planning import analytic
from planning.config import fast_config
from planning.planner import FlowPlanner

FRAMES = 21
BASE = geometry.yaw_pose(0.0, 0.0, 0.0, 0.0)


@pytest.fixture(scope="session")
def planner() -> FlowPlanner:
    return FlowPlanner(fast_config())


@pytest.fixture(scope="session")
def plans(planner: FlowPlanner) -> dict:
    """The three analytic flows and their plans, from a robot base at the origin."""
    flows = {
        "translation": analytic.translation_flow(FRAMES),
        "hinge": analytic.hinge_flow(FRAMES),
        "arc": analytic.arc_flow(FRAMES),
    }
    rng = np.random.default_rng(0)
    return {k: (f, planner.plan(f, base=BASE, mode="grasp", rng=rng)) for k, f in flows.items()}
