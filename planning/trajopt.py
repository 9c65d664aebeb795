"""Trajectory optimisation with jaxls (PyRoki's solver): joint configurations per step.

Variables: one configuration per step of approach + manipulate + retreat (S steps). Costs,
each a vector of residuals (STYLE.md §6):

- attached points, one 3-vector per point and step: points fixed in the TCP frame should reach
  their targets (the solver sees four points per step with the same cost, `moment_points`). In the manipulate steps these are the grasped points under the rigid
  attachment model, ``p_i(t) = E(t) E(0)^-1 p_i(0)`` with E(0) the grasp; in approach and
  retreat steps they are marker points that pin a TCP pose target;
- joint limits (the hinge residual of PyRoki's limit cost), start state, a weak pull to the
  initialisation;
- table clearance: points of the arm links' collision hulls and the corners of the hand's
  boxes (`kinematics.robot_body_points`) stay above the plane the robot stands on, one hinge
  residual per point and step;
- velocity and acceleration smoothness (first and second differences), switched off across
  the two steps where the arm stops for the gripper.

The problem is built inside one jitted function whose arguments are the data arrays
(`TrajProblem`): jaxls' problem analysis runs at trace time only, so a new flow with the same
(S, N) shape reuses the compiled solve. Point counts are padded to a fixed N with zero weights.

Compile time is the cold-start cost, and it grows with the number of cost groups that run
forward kinematics (each is traced at several places inside the Levenberg-Marquardt loop):
all per-step terms therefore form one group (`step_residual`) and all couplings between
steps another, rather than one PyRoki cost factory per term (compile times measured:
docs/planning-notes.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, wraps
from typing import Any

import jax
import jax.numpy as jnp
import jaxls
import numpy as np

from planning.kinematics import (
    BodyPoints,
    TcpChain,
    attached_point_residual,
    body_points,
    normalized_sqrt_weights,
    robot_body_points,
    robot_spheres,
    tcp_chain,
    tcp_fk,
)
from planning.robot import RobotModel


@dataclass(frozen=True)
class TrajOptConfig:
    """Weights and solver settings of the trajectory optimisation."""

    point_weight: float = 30.0
    """Scale of the attached-point residuals (1/m): a step's squared cost is
    point_weight^2 times its weighted mean squared point distance."""
    limit_weight: float = 100.0
    """Weight of joint-limit violations (1/rad)."""
    start_weight: float = 30.0
    """Weight holding the first step at the start configuration (1/rad)."""
    init_weight: float = 0.1
    """Weak pull of every step towards its initialisation (the IK path): resolves the arm's
    redundancy and keeps Gauss-Newton well conditioned, so few iterations are needed (1/rad)."""
    velocity_weight: float = 0.05
    """Weight of first differences of joints between steps (1/rad)."""
    acceleration_weight: float = 1.0
    """Weight of second differences of joints between steps (1/rad)."""
    table_z: float | None = 0.0
    """Height of the table plane in the robot base frame (the base stands on it); None for
    no table."""
    table_margin: float = 0.004
    """Clearance every body point keeps above the table, beyond its radius (metres)."""
    table_weight: float = 100.0
    """Weight of table penetration (1/m)."""
    max_iterations: int = 40
    """Levenberg-Marquardt iteration cap."""
    cost_tolerance: float = 1e-3
    """Stop when an iteration changes the cost by less than this fraction. The IK path is a
    close start, so a loose tolerance trades nothing visible for fewer iterations."""


@dataclass(frozen=True)
class TrajProblem:
    """Data of one solve; S steps, N attached points per step (padded with zero weight).

    Attributes:
        local: (S, N, 3) points in the TCP frame.
        target: (S, N, 3) targets of those points in the robot base frame.
        weights: (S, N) non-negative point weights (all zero: no target at that step).
        q_start: (dof,) configuration the first step must hold.
        q_init: (S, dof) initial guess (IK along the targets).
        smooth: (S - 2,) multiplier of the smoothness residuals centred at steps 1..S-2; 0
            where the arm stops anyway (segment boundaries, where the gripper acts).
        hold: (S,) multiplier of each step's pull towards ``q_init`` (None: all 1); a large
            one keeps a step on its initial guess (e.g. an approach checked against the scene).
    """

    local: np.ndarray
    target: np.ndarray
    weights: np.ndarray
    q_start: np.ndarray
    q_init: np.ndarray
    smooth: np.ndarray
    hold: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, p = self.weights.shape
        assert self.local.shape == self.target.shape == (n, p, 3), (
            self.local.shape,
            self.target.shape,
        )
        assert self.q_init.shape == (n, len(self.q_start)), (self.q_init.shape, self.q_start.shape)
        assert n >= 3, "need at least three steps"
        assert self.smooth.shape == (n - 2,), self.smooth.shape
        assert self.hold is None or self.hold.shape == (n,), self.hold.shape


@dataclass(frozen=True)
class TrajSolution:
    """Result of a solve.

    Attributes:
        joints: (S, dof) optimised configurations (not yet clipped to the limits).
        point_rms: (S,) weighted RMS distance of each step's attached points to their
            targets, metres (0 where a step has no target).
        clearance: (S,) smallest distance of the robot's body above the table at each step,
            metres (negative: into it; +inf without a table).
        costs: squared norm of each residual group at the optimum.
        solve_time: wall time of the call, seconds (includes compilation on a first call).
    """

    joints: np.ndarray
    point_rms: np.ndarray
    clearance: np.ndarray
    costs: dict[str, float] = field(default_factory=dict)
    solve_time: float = 0.0


def moment_points(
    local: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four weighted points per step with the same least-squares cost as N points, for every
    TCP pose: (S, N, ·) -> (S, 4, ·) local points, targets and weights (each W/4, W a step's
    total weight, so `normalized_sqrt_weights` treats them alike).

    For any 3x4 transform E, sum_i w_i |E [p_i; 1] - q_i|^2 = tr(E S E^T) - 2 tr(E B^T) + c with
    S = sum w [p; 1][p; 1]^T and B = sum w q [p; 1]^T: the cost, its gradient and its
    Gauss-Newton matrix depend on the points only through S and B. Factor S = V V^T with the
    last row of V constant (a Householder turn of any square root), read the columns of V as
    four weighted points [p'_j; 1] sqrt(W / 4), and solve Q V^T = B for their targets (exact:
    the rows of B lie in the span of V, also when S is singular). The solver then handles 12
    point residuals per step instead of 3 N; the constant c is all that differs.
    """
    w = np.asarray(weights, np.float64)  # (S, N)
    total = w.sum(1)  # (S,)
    ph = np.concatenate([local, np.ones(local.shape[:2] + (1,))], axis=2)  # (S, N, 4)
    moments = np.swapaxes(ph * w[..., None], 1, 2) @ ph  # S (S, 4, 4)
    cross = np.swapaxes(np.asarray(target, np.float64) * w[..., None], 1, 2) @ ph  # B (S, 3, 4)
    values, vectors = np.linalg.eigh(moments)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]  # S = root root^T
    scale = np.sqrt(total) / 2  # (S,)
    u = root[:, 3] - scale[:, None]  # Householder vector: root @ H has a constant last row
    uu = (u * u).sum(1)
    turn = np.where(uu > 1e-30, 2.0 / np.where(uu > 1e-30, uu, 1.0), 0.0)
    root = root - (root @ u[..., None]) * (u * turn[:, None])[:, None, :]
    used = total > 0
    safe = np.where(used, scale, 1.0)[:, None, None]
    out_local = np.swapaxes(root[:, :3], 1, 2) / safe
    out_target = np.swapaxes(cross @ np.linalg.pinv(np.swapaxes(root, 1, 2), rcond=1e-9), 1, 2) / safe
    out_weights = np.repeat(total[:, None] / 4, 4, axis=1)
    out_local[~used], out_target[~used] = 0.0, 0.0
    return out_local, out_target, out_weights


def step_residual(
    chain: TcpChain,
    body: BodyPoints,
    q: jax.Array,
    local: jax.Array,
    target: jax.Array,
    sqrt_w: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    limit_w: jax.Array,
    anchor: jax.Array,
    anchor_w: jax.Array,
    table: jax.Array,
    table_w: jax.Array,
) -> jax.Array:
    """Residuals of one step: attached points (N*3), limit violations (2 dof), anchor (dof),
    table penetration (one per body point: how far it comes within ``table`` (B,), the lowest
    height each of the B body points may reach)."""
    points = attached_point_residual(tcp_fk(chain, q), local, target, sqrt_w)
    limits = jnp.concatenate([jnp.maximum(0.0, q - upper), jnp.maximum(0.0, lower - q)]) * limit_w
    below = jnp.maximum(0.0, table - body_points(chain, body, q)[:, 2]) * table_w
    return jnp.concatenate([points, limits, (q - anchor) * anchor_w, below])


def named_cost(residual: Callable[..., jax.Array]) -> Callable[..., jaxls.Cost]:
    """`jaxls.Cost.factory` whose costs carry ``residual`` itself (under its own name).

    jaxls stacks a problem's cost groups in the order of their tree structures' text, which
    shows the residual function. The factory's wrapper is one anonymous lambda for every cost
    type, told apart only by its memory address, so the order, and with it the solve's
    rounding, would change from process to process; a named function sorts by its name.
    """

    @wraps(residual)
    def compute(values: jaxls.VarValues, args: tuple, kwargs: dict) -> jax.Array:
        return residual(values, *args, **kwargs)

    def make(*args: Any, **kwargs: Any) -> jaxls.Cost:
        return jaxls.Cost(compute_residual=compute, args=(args, kwargs), name=residual.__name__)

    return make


@named_cost
def _smoothness_residual(
    vals: jaxls.VarValues,
    prev: jaxls.Var[jax.Array],
    curr: jaxls.Var[jax.Array],
    nxt: jaxls.Var[jax.Array],
    velocity_w: jax.Array,
    acceleration_w: jax.Array,
) -> jax.Array:
    """First differences on both sides of a step and its second difference (3 dof)."""
    a, b, c = vals[prev], vals[curr], vals[nxt]
    return jnp.concatenate(
        [(b - a) * velocity_w, (c - b) * velocity_w, (a - 2 * b + c) * acceleration_w]
    )


class TrajectoryOptimizer:
    """Holds the robot and the jitted solve; compiled once per (S, N) shape.

    Build one per robot and reuse it: the first call for a shape compiles (seconds), later
    calls with the same shape only run the solver.
    """

    def __init__(self, model: RobotModel, config: TrajOptConfig | None = None) -> None:
        self.model = model
        self.config = config or TrajOptConfig()
        self.chain = tcp_chain(model)
        self.body = robot_body_points(self.chain, model)
        self.spheres = robot_spheres(self.chain, model.spec)
        """Spheres covering the robot, for clearance from the scene's points (`sphere_centers`)."""
        self.traces = 0
        """How many times the solve was traced (one per new shape)."""

    @cached_property
    def _solve(self):
        chain, body, cfg = self.chain, self.body, self.config
        var_cls = self.model.kinematics.joint_var_cls
        lower = jnp.asarray(self.model.lower, jnp.float32)
        upper = jnp.asarray(self.model.upper, jnp.float32)

        @named_cost
        def step_cost(vals, var, *args):
            return step_residual(chain, body, vals[var], *args)

        has_table = cfg.table_z is not None
        table_z = cfg.table_z if has_table else -1e3  # without a table: far below everything
        table_w = cfg.table_weight if has_table else 0.0
        # the lowest height each body point may reach
        floor = jnp.asarray(table_z + cfg.table_margin + body.radius, jnp.float32)

        def solve(local, target, weights, fit, q_start, q_init, smooth, hold):
            self.traces += 1  # runs at trace time only
            n = q_init.shape[0]
            ids = jnp.arange(n)
            sqrt_w = normalized_sqrt_weights(weights, cfg.point_weight)
            fit_local, fit_target, fit_weights = fit  # `moment_points`: the same cost, 4 points
            anchor = q_init.at[0].set(q_start)
            anchor_w = (cfg.init_weight * hold[:, None]).at[0].set(cfg.start_weight)
            step_terms = step_cost(
                var_cls(ids),
                fit_local,
                fit_target,
                normalized_sqrt_weights(fit_weights, cfg.point_weight),
                lower[None],
                upper[None],
                jnp.full((1, 1), cfg.limit_weight),
                anchor,
                anchor_w,
                floor[None],
                jnp.full((1, 1), table_w),
            )
            smooth_terms = _smoothness_residual(
                var_cls(ids[:-2]),
                var_cls(ids[1:-1]),
                var_cls(ids[2:]),
                cfg.velocity_weight * smooth[:, None],
                cfg.acceleration_weight * smooth[:, None],
            )
            problem = jaxls.LeastSquaresProblem(
                [step_terms, smooth_terms], [var_cls(ids)]
            ).analyze()
            init = jaxls.VarValues.make([var_cls(ids).with_value(q_init)])
            sol, summary = problem.solve(
                init,
                verbose=False,
                termination=jaxls.TerminationConfig(
                    max_iterations=cfg.max_iterations, cost_tolerance=cfg.cost_tolerance
                ),
                return_summary=True,
            )
            q = sol[var_cls(ids)]
            tcp = jax.vmap(lambda qi: tcp_fk(chain, qi))(q)
            moved = jnp.einsum("nij,npj->npi", tcp[:, :3, :3], local) + tcp[:, None, :3, 3]
            d2 = jnp.sum((moved - target) ** 2, -1)
            rms = jnp.sqrt(jnp.sum(weights * d2, -1) / jnp.maximum(jnp.sum(weights, -1), 1e-12))
            res = jax.vmap(
                lambda i: _step_parts(chain, q[i], local[i], target[i], sqrt_w[i], lower, upper)
            )(ids)
            dq = jnp.concatenate([q[1:-1] - q[:-2], q[2:] - q[1:-1]]) * jnp.tile(smooth, 2)[:, None]
            ddq = (q[2:] - 2 * q[1:-1] + q[:-2]) * smooth[:, None]
            heights = jax.vmap(lambda qi: body_points(chain, body, qi)[:, 2])(q)  # (S, N)
            clearance = jnp.min(heights - body.radius - table_z, -1)
            costs = {
                "points": jnp.sum(res[0]),
                "limits": jnp.sum(res[1]) * cfg.limit_weight**2,
                "start": jnp.sum((q[0] - q_start) ** 2) * cfg.start_weight**2,
                "velocity": jnp.sum(dq**2) * cfg.velocity_weight**2,
                "acceleration": jnp.sum(ddq**2) * cfg.acceleration_weight**2,
                "table": jnp.sum(jnp.maximum(0.0, floor - heights) ** 2) * table_w**2,
                "iterations": summary.iterations,
            }
            return q, rms, clearance, costs

        return jax.jit(solve)

    @cached_property
    def _clearance(self):
        chain, body = self.chain, self.body
        table_z = self.config.table_z if self.config.table_z is not None else -1e3

        def clearance(q):
            heights = jax.vmap(lambda qi: body_points(chain, body, qi)[:, 2])(q)
            return jnp.min(heights - body.radius - table_z, -1)

        return jax.jit(clearance)

    @cached_property
    def _sphere_centers(self):
        chain, spheres = self.chain, self.spheres
        return jax.jit(jax.vmap(lambda qi: body_points(chain, spheres, qi)))

    def sphere_centers(self, q: np.ndarray) -> np.ndarray:
        """(S, N, 3) centres of `spheres` (base frame) for (S, dof) joints."""
        return np.asarray(self._sphere_centers(jnp.asarray(q, jnp.float32)), np.float64)

    def clearance(self, q: np.ndarray) -> np.ndarray:
        """(S,) smallest height of the robot's body above the table for (S, dof) joints,
        metres (negative: into it; +inf without a table)."""
        if self.config.table_z is None:
            return np.full(len(q), np.inf)
        return np.asarray(self._clearance(jnp.asarray(q, jnp.float32)), np.float64)

    def solve(self, problem: TrajProblem) -> TrajSolution:
        """Optimise the trajectory of ``problem`` (see `TrajProblem` for shapes)."""
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        t0 = time.perf_counter()
        fit = tuple(f32(a) for a in moment_points(problem.local, problem.target, problem.weights))
        q, rms, clearance, costs = self._solve(
            f32(problem.local),
            f32(problem.target),
            f32(problem.weights),
            fit,
            f32(problem.q_start),
            f32(problem.q_init),
            f32(problem.smooth),
            f32(problem.hold if problem.hold is not None else np.ones(len(problem.q_init))),
        )
        q = np.asarray(q, np.float64)
        elapsed = time.perf_counter() - t0
        clearance = np.asarray(clearance, np.float64)
        if self.config.table_z is None:
            clearance = np.full(len(q), np.inf)
        return TrajSolution(
            q,
            np.asarray(rms, np.float64),
            clearance,
            {k: float(v) for k, v in costs.items()},
            elapsed,
        )


def _step_parts(chain, q, local, target, sqrt_w, lower, upper):
    """Squared point residual and squared limit violation of one step (for reporting)."""
    r = attached_point_residual(tcp_fk(chain, q), local, target, sqrt_w)
    lim = jnp.concatenate([jnp.maximum(0.0, q - upper), jnp.maximum(0.0, lower - q)])
    return jnp.sum(r**2), jnp.sum(lim**2)
