"""ObjectFlow + scene -> Plan: grasp or push, trajectory optimisation, timing (DESIGN.md §5).

Layer 1: imports numpy, scipy, jax, jaxlie, jaxls, pyroki, yourdfpy, toppra and the
`chord_robot` contracts only. Importing this package loads JAX; the CLI imports it lazily.

Entry points::

    from planning import FlowPlanner, plan_from_flow, default_config, describe
    plan = plan_from_flow(flow, scene_points, default_config(mode="grasp"), base=parse_base("0,0,0,0"))
    print(describe(plan))

Modules, one concept each: `robot` (URDF -> PyRoki model, specs), `kinematics` (TCP chain,
IK), `region` (object, moving part, carried points), `grasps` (antipodal sampling,
collisions, the `GraspPlanner` protocol), `push`, `placement` (automatic base),
`trajopt` (jaxls problem, jitted once per shape), `timing` (TOPP-RA), `pipeline`,
`analytic` (flows with known motion), `se3` (numpy transforms).
"""

from planning.grasps import AntipodalGraspPlanner, Grasp, GraspConfig, GraspPlanner, GraspRequest
from planning.pipeline import (
    PRESETS,
    FlowPlanner,
    PlanConfig,
    default_config,
    describe,
    enable_compilation_cache,
    fast_config,
    plan_from_flow,
)
from planning.robot import ROBOTS, RobotSpec, load_robot, panda, parse_base
from planning.trajopt import TrajectoryOptimizer, TrajOptConfig

__all__ = [
    "PRESETS",
    "ROBOTS",
    "AntipodalGraspPlanner",
    "FlowPlanner",
    "Grasp",
    "GraspConfig",
    "GraspPlanner",
    "GraspRequest",
    "PlanConfig",
    "RobotSpec",
    "TrajOptConfig",
    "TrajectoryOptimizer",
    "default_config",
    "describe",
    "enable_compilation_cache",
    "fast_config",
    "load_robot",
    "panda",
    "parse_base",
    "plan_from_flow",
]
