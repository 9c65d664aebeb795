"""ObjectFlow + scene -> Plan: grasp or push, trajectory optimisation, timing (DESIGN.md §5).

Layer 1: imports numpy, scipy, jax, jaxlie, jaxls, pyroki, yourdfpy (and its trimesh), toppra
and the `chord_robot` contracts only. Importing this package loads JAX; the CLI imports it
lazily.

Entry points::

    from planning import FlowPlanner, plan_from_flow, default_config, describe
    plan = plan_from_flow(flow, scene_points, default_config(mode="grasp"), base=parse_base("0,0,0,0"))
    print(describe(plan))

Modules, in reading order:
    config      -- `PlanConfig` (every component's config, acceptance thresholds), presets.
    planner     -- `FlowPlanner` (robot, IK and jitted optimiser reused across plans) and
                   `plan_from_flow`: object -> search -> optimise -> timed Plan.
    search      -- `CandidateSearch`: proposals, ranking, IK along the whole motion; base
                   poses, obstacles, the grasp request.
    clearance   -- how near the robot's spheres (approach, arm) and the hand's own boxes
                   (while it carries) come to the rest of the scene.
    report      -- what an optimised trajectory achieves, why it is rejected, the Plan's
                   costs, the failure message, `describe`.
    robot       -- the `chord_robot.robots` description plus the planner's parts (locked
                   fingers, home, gripper, covering spheres) -> PyRoki model, collision hulls.
    kinematics  -- TCP chain, link frames, body points, path IK.
    region      -- object, moving part, the rigidly carried part or a pinched point.
    hinge       -- a grip on a hinged link put on a hinge (`PlanConfig.hinge`, off by default).
    grasps      -- antipodal sampling, gripper collisions, the `GraspPlanner` protocol.
    push, pinch -- push contacts; pinches of sheets.
    candidates  -- ranking and diversity of proposals.
    placement   -- automatic base placement.
    layout      -- the steps of one manipulation, their targets, assembly into a Plan.
    trajopt     -- the jaxls problem with table clearance, jitted once per shape.
    timing      -- TOPP-RA, verified on the curve arms follow (`chord_robot.trajectory`).
    cache       -- JAX's persistent compilation cache (for applications).
    analytic    -- flows with known motion, for tests and benchmarks.

Poses and transforms come from `chord_robot.geometry`. Shapes: T flow frames, N points,
S optimisation steps, dof arm joints.
"""

from planning.cache import enable_compilation_cache
from planning.config import PRESETS, PlanConfig, default_config, fast_config
from planning.grasps import AntipodalGraspPlanner, Grasp, GraspConfig, GraspPlanner, GraspRequest
from planning.planner import FlowPlanner, plan_from_flow
from planning.report import describe
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
