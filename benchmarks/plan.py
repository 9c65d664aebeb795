"""Trajectory optimisation speed: the jitted, shape-stable solve against the naive PyRoki use.

    python benchmarks/plan.py [--frames 41] [--points 256] [--repeats 5]

Cold: the first plan in the process (traces and compiles the IK and the solver).
Warm: later plans of new flows with the same shape (the compiled solver is reused).
Naive: a pose-only PyRoki problem over the same frames, built and solved on every call
(`LeastSquaresProblem(...).analyze().solve()` outside any jit), which re-traces each time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def naive_solve(model, targets: np.ndarray) -> float:
    """Build and solve a pose-only PyRoki trajectory problem for (T, 4, 4) targets; seconds."""
    import jax
    import jax.numpy as jnp
    import jaxlie
    import jaxls
    import pyroki as pk

    from chord_robot import geometry

    t0 = time.perf_counter()
    robot = model.kinematics
    n = len(targets)
    var = robot.joint_var_cls(jnp.arange(n))
    batched = jax.tree.map(lambda x: x[None], robot)
    costs = [
        pk.costs.pose_cost(
            batched,
            var,
            jaxlie.SE3(jnp.asarray(geometry.matrix_to_pose(targets), jnp.float32)),
            jnp.full(n, model.tcp_index, jnp.int32),
            50.0,
            10.0,
        ),
        pk.costs.limit_cost(batched, var, jnp.full((n, 1), 100.0)),
        pk.costs.smoothness_cost(
            robot.joint_var_cls(jnp.arange(1, n)), robot.joint_var_cls(jnp.arange(n - 1)), 1.0
        ),
    ]
    init = jaxls.VarValues.make(
        [var.with_value(jnp.tile(jnp.asarray(model.home, jnp.float32), (n, 1)))]
    )
    sol = jaxls.LeastSquaresProblem(costs, [var]).analyze().solve(init, verbose=False)
    jax.block_until_ready(sol[var])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=41)
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-repeats", type=int, default=2)
    parser.add_argument(
        "--cache", help="JAX persistent compilation cache directory (cold = cached)"
    )
    args = parser.parse_args()

    from loguru import logger

    logger.remove()  # jaxls logs every problem it builds

    from chord_robot import geometry
    from planning import analytic
    from planning import FlowPlanner, default_config, enable_compilation_cache
    from planning.region import RegionConfig

    if args.cache:
        enable_compilation_cache(args.cache)

    t0 = time.perf_counter()
    planner = FlowPlanner(default_config(region=RegionConfig(points=args.points)))
    load = time.perf_counter() - t0
    base = geometry.yaw_pose(0.0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(0)

    def run(k: int):
        offset = (0.03 * (k % 3), 0.15 - 0.05 * k, 0.05 + 0.01 * k)
        flow = analytic.translation_flow(args.frames, offset=offset)
        t = time.perf_counter()
        plan = planner.plan(flow, base=base, mode="grasp", rng=rng)
        return plan, time.perf_counter() - t

    cold_plan, cold_total = run(0)
    warm = [run(k + 1) for k in range(args.repeats)]
    solve_cold = cold_plan.costs["solve_time_s"]
    solve_warm = statistics.median(p.costs["solve_time_s"] for p, _ in warm)
    total_warm = statistics.median(t for _, t in warm)
    align = [p.costs["alignment_mean_m"] * 1000 for p, _ in [(cold_plan, 0), *warm]]

    # The naive problem tracks the same end-effector path, in the robot base frame.
    targets = geometry.pose_to_matrix(cold_plan.ee_poses[cold_plan.segment("manipulate")])
    targets = geometry.invert(geometry.pose_to_matrix(cold_plan.robot_base)) @ targets
    naive = [naive_solve(planner.model, targets) for _ in range(args.naive_repeats)]
    naive_mean = statistics.mean(naive)

    print(
        f"frames {args.frames}, carried points {args.points}, optimiser steps {planner.layout(args.frames).size}"
    )
    print(f"robot load                      {load:7.2f} s")
    print(
        f"cold plan (first call)          {cold_total:7.2f} s   trajopt solve incl. compile {solve_cold:6.2f} s, "
        f"IK incl. compile {cold_plan.costs['ik_time_s']:.2f} s"
    )
    print(
        f"warm trajopt solve (median {args.repeats})   {solve_warm:7.3f} s   whole warm plan {total_warm:.2f} s"
    )
    print(
        f"naive PyRoki rebuild per call   {naive_mean:7.2f} s   (pose-only, {args.frames} frames; {', '.join(f'{x:.2f}' for x in naive)})"
    )
    print(f"ratio naive / warm solve        {naive_mean / solve_warm:7.1f} x")
    print(f"solver traces                   {planner.optimizer.traces} (one per shape)")
    print(f"alignment error mean (mm)       {', '.join(f'{x:.2f}' for x in align)}")


if __name__ == "__main__":
    main()
