"""TCP forward kinematics as a compact serial chain, and a jitted damped Gauss-Newton IK.

`TcpChain` is read from the PyRoki robot (its joint twists and parent transforms) and keeps
only the joints between the base and the TCP, with consecutive fixed transforms folded into
one matrix. It computes exactly `pyroki.Robot.forward_kinematics(q)[tcp]` (tests hold the two
together), but as seven small unrolled matrix products instead of a loop over every link of
the tree, which shortens the XLA compile of every solver that differentiates through it
(docs/planning-notes.md).

The pose of the TCP is always constrained through points attached to it: flow alignment uses
the grasped points expressed in the TCP frame, pose targets use a few marker points. One
residual per point (`attached_point_residual`) serves the IK and the trajectory optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import jaxlie
import numpy as np

from chord_robot.errors import InputError
from planning.robot import RobotModel, RobotSpec


@dataclass(frozen=True, eq=False)
class TcpChain:
    """The kinematic chain base -> TCP.

    Attributes:
        fixed: (J + 1, 4, 4) constant transform before each moving joint, and after the last.
        axes: (J, 3) joint axis in the joint frame.
        prismatic: (J,) True for prismatic joints, False for revolute.
        index: (J,) index of each moving joint in the configuration vector.
        links: (J,) name of each moving joint's child link, whose frame is the frame right
            after the joint (`chain_frames`).
    """

    fixed: np.ndarray
    axes: np.ndarray
    prismatic: np.ndarray
    index: np.ndarray
    links: tuple[str, ...] = ()


def tcp_chain(model: RobotModel) -> TcpChain:
    """Read the base -> TCP chain out of ``model.kinematics`` (a `pyroki.Robot`)."""
    kin = model.kinematics
    joints = kin.joints
    path = []
    k = kin.links.parent_joint_indices[model.tcp_index]
    while k != -1:
        path.append(k)
        k = joints.parent_indices[k]
    child = {int(j): name for name, j in zip(kin.links.names, kin.links.parent_joint_indices)}
    fixed, axes, prismatic, index, links = [], [], [], [], []
    acc = np.eye(4)
    for k in reversed(path):
        acc = acc @ np.asarray(
            jaxlie.SE3(joints.parent_transforms[k]).as_matrix(), dtype=np.float64
        )
        act = joints.actuated_indices[k]
        assert joints.mimic_act_indices[k] == -1, "mimic joints on the TCP chain are not supported"
        if act == -1:
            continue
        twist = np.asarray(joints.twists[k], dtype=np.float64)
        is_prismatic = bool(np.linalg.norm(twist[3:]) < 1e-9)
        assert is_prismatic or np.linalg.norm(twist[:3]) < 1e-9, "screw joints are not supported"
        fixed.append(acc)
        axes.append(twist[:3] if is_prismatic else twist[3:])
        prismatic.append(is_prismatic)
        index.append(act)
        links.append(child[int(k)])
        acc = np.eye(4)
    fixed.append(acc)
    return TcpChain(
        np.stack(fixed), np.stack(axes), np.array(prismatic), np.array(index), tuple(links)
    )


def _rotation(axis: np.ndarray, angle: jax.Array) -> jax.Array:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return jnp.eye(3) + jnp.sin(angle) * k + (1 - jnp.cos(angle)) * (k @ k)


def chain_frames(chain: TcpChain, q: jax.Array) -> jax.Array:
    """(J + 1, 4, 4) base-frame poses of each moving joint's child link, then of the TCP, for
    (dof,) joints. Unrolled over the chain."""
    m = jnp.asarray(chain.fixed[0], dtype=q.dtype)
    frames = []
    for j in range(len(chain.axes)):
        angle = q[chain.index[j]]
        if chain.prismatic[j]:
            m = m.at[:3, 3].add(m[:3, :3] @ (chain.axes[j] * angle))
        else:
            m = m.at[:3, :3].set(m[:3, :3] @ _rotation(chain.axes[j], angle))
        frames.append(m)
        m = m @ chain.fixed[j + 1]
    frames.append(m)
    return jnp.stack(frames)


def tcp_fk(chain: TcpChain, q: jax.Array) -> jax.Array:
    """TCP pose in the base frame: (dof,) joints -> (4, 4)."""
    return chain_frames(chain, q)[-1]


@dataclass(frozen=True)
class BodyPoints:
    """Points fixed to the robot's links, each with the clearance its body needs around it.

    Attributes:
        frame: (N,) index into `chain_frames` of the frame each point is fixed in.
        local: (N, 3) the points in those frames, metres.
        radius: (N,) how far the robot's surface reaches around each point, metres.
    """

    frame: np.ndarray
    local: np.ndarray
    radius: np.ndarray


def robot_body_points(chain: TcpChain, model: RobotModel) -> BodyPoints:
    """Points of the arm's collision hulls (``model.hulls``) and the corners of the open hand's
    boxes (`planning.grasps.gripper_boxes`), radius 0, as `BodyPoints` of ``chain``: what is
    kept above the table."""
    from planning.grasps import gripper_boxes

    frame, local = [], []
    for link, pts in model.hulls.items():
        if link not in chain.links:
            raise InputError(f"robot {model.spec.name!r}: {link!r} is not a link of the arm chain")
        frame += [chain.links.index(link)] * len(pts)
        local += list(pts)
    g = model.spec.gripper
    boxes = gripper_boxes(g, g.max_width, 0.0)  # (3, 2, 3) min/max corners
    for b in boxes:
        for c in np.array([[x, y, z] for x in b[:, 0] for y in b[:, 1] for z in b[:, 2]]):
            frame.append(len(chain.links))  # the TCP frame
            local.append(c)
    return BodyPoints(np.array(frame), np.array(local, dtype=np.float64), np.zeros(len(frame)))


def robot_spheres(chain: TcpChain, spec: RobotSpec) -> BodyPoints:
    """Spheres covering the arm (``spec.spheres``) and the open hand (its palm and finger
    boxes of `planning.grasps.gripper_boxes`, each covered by spheres along its longest side),
    as `BodyPoints` of ``chain``: what is kept clear of the scene's points."""
    from planning.grasps import gripper_boxes

    frame, local, radius = [], [], []
    for link, centre, r in spec.spheres:
        if link not in chain.links:
            raise InputError(
                f"robot {spec.name!r}: sphere on {link!r}, not a link of the arm chain"
            )
        frame.append(chain.links.index(link))
        local.append(centre)
        radius.append(r)
    for lo, hi in gripper_boxes(spec.gripper, spec.gripper.max_width, 0.0):
        size = hi - lo
        long = int(np.argmax(size))
        r = float(np.linalg.norm(np.delete(size, long))) / 2  # covers the box's cross-section
        count = max(int(np.ceil(size[long] / r)), 1)
        for t in (np.arange(count) + 0.5) / count:
            c = (lo + hi) / 2
            c[long] = lo[long] + t * size[long]
            frame.append(len(chain.links))
            local.append(c)
            radius.append(float(np.hypot(r, size[long] / count / 2)))
    return BodyPoints(np.array(frame), np.array(local, dtype=np.float64), np.array(radius))


def body_points(chain: TcpChain, points: BodyPoints, q: jax.Array) -> jax.Array:
    """(N, 3) base-frame positions of ``points`` for (dof,) joints."""
    frames = chain_frames(chain, q)[points.frame]  # (N, 4, 4)
    return jnp.einsum("sij,sj->si", frames[:, :3, :3], points.local) + frames[:, :3, 3]


def attached_point_residual(
    tcp: jax.Array, local: jax.Array, target: jax.Array, sqrt_w: jax.Array
) -> jax.Array:
    """One 3-vector residual per point attached to the TCP.

    Args:
        tcp: (4, 4) TCP pose.
        local: (N, 3) points in the TCP frame.
        target: (N, 3) where they should be, same frame as ``tcp``.
        sqrt_w: (N,) square-root weights (0 for padding).
    Returns:
        (N * 3,) residuals sqrt_w_i (tcp local_i - target_i).
    """
    moved = local @ tcp[:3, :3].T + tcp[:3, 3]
    return (sqrt_w[:, None] * (moved - target)).reshape(-1)


def normalized_sqrt_weights(w: jax.Array, scale: float) -> jax.Array:
    """(..., N) weights -> square roots scaled so each frame's squared residual is
    ``scale^2`` times its weighted mean squared distance (frames with no weight stay 0)."""
    total = jnp.sum(w, axis=-1, keepdims=True)
    return scale * jnp.sqrt(w / jnp.where(total > 0, total, 1.0))


@dataclass(frozen=True)
class IKConfig:
    """Damped Gauss-Newton IK along a path of point targets (the optimiser's initialisation)."""

    first_iterations: int = 60
    """Iterations for the first target, from each seed."""
    iterations: int = 15
    """Iterations for every following target, warm-started from the previous one."""
    damping: float = 1e-4
    """Levenberg damping added to J^T J."""
    max_step: float = 0.4
    """Largest joint step per iteration (norm, radians)."""
    continuity: float = 0.02
    """Weight pulling each solution towards the previous frame's (chooses one IK branch)."""
    rest: float = 0.005
    """Weight pulling the first solution towards the reference configuration."""


@dataclass(frozen=True, eq=False)
class PathIK:
    """Jitted IK of a sequence of attached-point targets; compiled once per (seeds, S, N) shape.

    Attributes:
        chain: TCP kinematics.
        lower, upper: (dof,) joint limits (solutions are projected onto them).
        config: iteration counts and weights.
    """

    chain: TcpChain
    lower: np.ndarray
    upper: np.ndarray
    config: IKConfig = IKConfig()

    @cached_property
    def _solve(self):
        chain, cfg = self.chain, self.config
        lo, hi = jnp.asarray(self.lower, jnp.float32), jnp.asarray(self.upper, jnp.float32)

        def residual(q, q_prev, local, target, sw, reg):
            r = attached_point_residual(tcp_fk(chain, q), local, target, sw)
            return jnp.concatenate([r, reg * (q - q_prev)])

        def gn(q, q_prev, local, target, sw, reg, iters):
            def step(_, q):
                r = residual(q, q_prev, local, target, sw, reg)
                jac = jax.jacfwd(residual)(q, q_prev, local, target, sw, reg)
                h = jac.T @ jac + cfg.damping * jnp.eye(q.shape[0])
                dq = -jnp.linalg.solve(h, jac.T @ r)
                norm = jnp.linalg.norm(dq)
                dq = dq * jnp.minimum(1.0, cfg.max_step / jnp.maximum(norm, 1e-12))
                return jnp.clip(q + dq, lo, hi)

            return jax.lax.fori_loop(0, iters, step, q)

        def rms(q, local, target, w):
            tcp = tcp_fk(chain, q)
            d = jnp.linalg.norm(local @ tcp[:3, :3].T + tcp[:3, 3] - target, axis=-1)
            return jnp.sqrt(jnp.sum(w * d**2) / jnp.maximum(jnp.sum(w), 1e-12))

        def solve(seeds, q_ref, local, target, w, scale):
            # One scan runs every seed on frame 0, then each later frame warm-started from
            # the best frame-0 solution: a single copy of the Gauss-Newton loop is compiled.
            n_seeds, m = seeds.shape[0], w.shape[0]
            sw = normalized_sqrt_weights(w, 1.0) * scale
            frame = jnp.concatenate([jnp.zeros(n_seeds, jnp.int32), jnp.arange(1, m)])
            is_seed = jnp.arange(n_seeds + m - 1) < n_seeds
            seed = jnp.concatenate([seeds, jnp.zeros((m - 1, seeds.shape[1]), seeds.dtype)])

            def body(carry, entry):
                q_prev, best_q, best_score = carry
                f, first, s = entry
                start = jnp.where(first, s, jnp.where(f == 1, best_q, q_prev))
                anchor = jnp.where(first, q_ref, start)
                reg = jnp.where(first, cfg.rest, cfg.continuity)
                iters = jnp.where(first, cfg.first_iterations, cfg.iterations)
                q = gn(start, anchor, local[f], target[f], sw[f], reg, iters)
                err = rms(q, local[f], target[f], w[f])
                score = err + 1e-3 * jnp.linalg.norm(q - q_ref)
                better = first & (score < best_score)
                best_q = jnp.where(better, q, best_q)
                best_score = jnp.where(better, score, best_score)
                return (q, best_q, best_score), (q, err)

            init = (seeds[0], seeds[0], jnp.asarray(jnp.inf, seeds.dtype))
            (_, best_q, _), (qs, errs) = jax.lax.scan(body, init, (frame, is_seed, seed))
            err0 = rms(best_q, local[0], target[0], w[0])
            return (
                jnp.concatenate([best_q[None], qs[n_seeds:]]),
                jnp.concatenate([err0[None], errs[n_seeds:]]),
            )

        return jax.jit(solve)

    def solve(
        self,
        seeds: np.ndarray,
        q_ref: np.ndarray,
        local: np.ndarray,
        target: np.ndarray,
        w: np.ndarray,
        scale: float = 10.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """IK along a path: frame 0 from the best of several seeds, then warm-started.

        Args:
            seeds: (seeds, dof) starting configurations for the first frame.
            q_ref: (dof,) reference configuration the first solution leans towards.
            local: (S, N, 3) points in the TCP frame.
            target: (S, N, 3) their targets in the base frame.
            w: (S, N) non-negative weights.
            scale: residual scale of the point terms against the regularisers (1/metres).
        Returns:
            (S, dof) configurations and (S,) weighted RMS point distance per frame, metres.
        """
        m, p = w.shape
        assert seeds.ndim == 2 and seeds.shape[1] == len(self.lower), seeds.shape
        assert local.shape == target.shape == (m, p, 3), (local.shape, target.shape)
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        q, err = self._solve(f32(seeds), f32(q_ref), f32(local), f32(target), f32(w), f32(scale))
        return np.asarray(q, np.float64), np.asarray(err, np.float64)


def marker_points(size: float = 0.1) -> np.ndarray:
    """(4, 3) points in the TCP frame whose positions pin its pose: origin and three axes."""
    return np.array([[0.0, 0.0, 0.0], [size, 0.0, 0.0], [0.0, size, 0.0], [0.0, 0.0, size]])
