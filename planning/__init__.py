"""ObjectFlow + scene -> Plan: grasp or push, trajectory optimisation, timing (DESIGN.md §5).

Layer 1: imports numpy, scipy, jax, jaxlie, jaxls, pyroki, yourdfpy (and its trimesh), toppra
and the `chord_robot` contracts only. Importing this package loads JAX; the CLI imports it
lazily.

Entry points::

    from planning import FlowPlanner, plan_from_flow, default_config, describe
    plan = plan_from_flow(flow, scene_points, default_config(mode="grasp"), base=parse_base("0,0,0,0"))
    print(describe(plan))

Modules, one concept each: `robot` (URDF -> PyRoki model within the published limits of
`chord_robot.robots`, covering spheres, collision hulls), `kinematics` (TCP chain, link
frames, IK), `region` (object, moving part, the rigidly carried part or a pinched point),
`grasps` (antipodal sampling, collisions, the `GraspPlanner` protocol), `push`, `pinch`
(sheets), `candidates` (ranking), `placement` (automatic base), `trajopt` (jaxls problem with
table clearance, jitted once per shape), `timing` (TOPP-RA, verified on the curve arms follow,
`chord_robot.trajectory`), `pipeline`, `analytic` (flows with known motion); poses and
transforms come from `chord_robot.geometry`.
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
