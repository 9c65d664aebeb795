"""Measure an articulated object's motion in a flow: how far a joint turned, and whether the
rest of the object held still and stayed in one piece.

A generated flow is only point trajectories; the sim knows the object (its spec, base pose and
joint values at frame 0). Each rest point is given to the link whose surface is nearest, each
link's motion is the rigid fit (Kabsch) of its points from frame 0 to frame t, and the joint's
turn is the twist, about the joint axis, of the moving link's rotation relative to the base's
(swing-twist decomposition: a tilt about another axis does not count). The laptop's measured
joint is the lid hinge (positive opens); the lamp's is the head's total downward tilt (arm and
head joints together, positive lowers, as `sim.clips` measures it).

Besides the angle: the base's drift (mean point displacement, m), each link's rigidity (RMS
residual of its rigid fit, m) and the joint gap (how far the moving link's fitted pose carries
the joint origin away from where the base's fitted pose carries it, m): a lid that lifts off its
hinge or stretches can fake a turn, and these say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from sim import assets
from sim.tasks.motion import sample_surface

__all__ = ["ArticulatedKind", "Articulation", "articulation", "measure", "twist_deg"]

ArticulatedKind = Literal["laptop", "lamp"]
"""The articulated asset families whose joint is measured (`sim.assets.LaptopSpec`, `LampSpec`)."""


@dataclass(frozen=True)
class Articulation:
    """An object's links at frame 0 and its measured joint.

    Attributes:
        kind: "laptop" or "lamp".
        links: link names; ``links[0]`` is the base, ``links[moving]`` the link measured.
        samples: per link, (M, 3) world points on its surface at frame 0.
        moving: index of the measured link.
        axis: (3,) world joint axis at frame 0, oriented so a positive turn is the measured
            angle's positive direction (laptop: opening; lamp: lowering).
        attached: index of the link hinged to the base (laptop: the lid; lamp: the arm).
        origin: (3,) world point on that link's joint axis at frame 0.
    """

    kind: ArticulatedKind
    links: tuple[str, ...]
    samples: tuple[np.ndarray, ...]
    moving: int
    axis: np.ndarray
    attached: int
    origin: np.ndarray


def articulation(kind: ArticulatedKind, spec: assets.LaptopSpec | assets.LampSpec, base_pose: np.ndarray,
                 joints: tuple[float, ...], samples_per_link: int = 4000, seed: int = 0) -> Articulation:
    """The object at frame 0: ``joints`` are the laptop's (hinge,) or the lamp's (arm, head),
    radians, as the sim's tasks report them."""
    rng = np.random.default_rng(seed)
    pose = np.asarray(base_pose, dtype=np.float64)
    if kind == "laptop":  # opening is positive about the hinge axis
        meshes, poses = assets.laptop_meshes(spec), assets.laptop_link_poses(spec, *joints)
        joint, axis, moving, attached = assets.laptop_hinge(spec), assets.LAPTOP_HINGE_AXIS, "lid", "lid"
    elif kind == "lamp":  # both joints turn about parallel axes; lowering is positive
        meshes, poses = assets.lamp_meshes(spec), assets.lamp_link_poses(spec, *joints)
        joint, axis, moving, attached = assets.lamp_arm_joint(spec), assets.LAMP_AXIS, "head", "arm"
    else:
        raise ValueError(f"unknown articulated kind {kind!r}: 'laptop' or 'lamp'")
    links = tuple(meshes)
    samples = []
    for name in links:
        mesh = meshes[name]
        points = sample_surface(mesh, samples_per_link, rng)
        world = pose @ poses[name]
        samples.append(points @ world[:3, :3].T + world[:3, 3])
    frame = pose @ joint
    return Articulation(kind, links, tuple(samples), links.index(moving),
                        frame[:3, :3] @ np.asarray(axis, np.float64), links.index(attached), frame[:3, 3].copy())


def _kabsch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |R a + t - b|, for (N, 3) point sets."""
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cb - r @ ca


def twist_deg(rotation: np.ndarray, axis: np.ndarray) -> float:
    """The twist of a rotation about a unit ``axis`` (swing-twist decomposition), degrees."""
    return float(np.degrees(geometry.twist(rotation, axis)))


def measure(trajectories: np.ndarray, art: Articulation) -> dict:
    """Figures of one object's flow against its articulation.

    Args:
        trajectories: (T, N, 3) the object's point trajectories (an ObjectFlow's).
        art: from `articulation`, at the flow's frame 0.
    Returns:
        JSON-able dict: ``angle_deg`` (T,) the measured joint's turn since frame 0 (positive:
        opens / lowers); ``final_deg``; ``attached_final_deg`` the same of the link hinged to
        the base (the lamp's arm: its share of the head's tilt; the laptop's lid: ``final_deg``);
        ``moving_final`` the moving link's rigid motion from frame 0 to the last frame, a (4, 4)
        world transform as nested lists; ``base_drift_mm`` (T,) mean displacement of the base's
        points, ``base_drift_max_mm`` its largest frame; ``rigidity_mm`` per link, the worst
        frame's RMS residual of its rigid fit; ``joint_gap_mm`` (T,) how far the link hinged
        to the base carries the joint origin from where the base carries it; ``points`` per
        link (how many of the flow's points each was given); ``overlap_mm`` how far the links
        pass into each other at the last frame: the deepest any link's points sink inside
        another link's convex hull (of its surface samples, in that link's fitted frame)
        beyond how deep they were at frame 0 (a lamp's head turned into its own arm; a joint
        turning as built scores a few millimetres: a lamp arm's rim dips into its post), and
        ``overlap_points`` how many points sink 5 mm or more.
    """
    traj = np.asarray(trajectories, dtype=np.float64)
    assert traj.ndim == 3 and traj.shape[-1] == 3, traj.shape
    rest = traj[0]
    trees = [cKDTree(s) for s in art.samples]
    dist = np.stack([t.query(rest)[0] for t in trees], 1)  # (N, links)
    owner = dist.argmin(1)
    base, moving = owner == 0, owner == art.moving
    if base.sum() < 3 or moving.sum() < 3:
        raise ValueError(f"too few points on the base ({base.sum()}) or the {art.links[art.moving]} "
                         f"({moving.sum()}) to measure")
    angles, attached, drift, gap = [], [], [], []
    worst = {name: 0.0 for name in art.links}
    for t in range(len(traj)):
        fits = []
        for k, name in enumerate(art.links):
            sel = owner == k
            if sel.sum() < 3:
                fits.append(None)
                continue
            r, tr = _kabsch(rest[sel], traj[t][sel])
            residual = traj[t][sel] - (rest[sel] @ r.T + tr)
            worst[name] = max(worst[name], float(np.sqrt((residual ** 2).sum(1).mean())))
            fits.append((r, tr))
        (rb, tb), (rm, tm) = fits[0], fits[art.moving]
        angles.append(twist_deg(rb.T @ rm, art.axis))  # the moving link relative to the base
        drift.append(float(np.linalg.norm(traj[t][base] - rest[base], axis=1).mean()))
        if fits[art.attached] is not None:
            ra, ta = fits[art.attached]
            attached.append(twist_deg(rb.T @ ra, art.axis))
            gap.append(float(np.linalg.norm((ra @ art.origin + ta) - (rb @ art.origin + tb))))
        else:
            attached.append(float("nan"))
            gap.append(float("nan"))
    deepest, sunk = _overlap(rest, traj[-1], owner, fits, art.samples)
    return {
        "angle_deg": [round(a, 1) for a in angles],
        "final_deg": round(angles[-1], 1),
        "attached_final_deg": round(attached[-1], 1),
        "moving_final": np.block([[rm, tm[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]]).round(6).tolist(),
        "base_drift_mm": [round(1000 * d, 2) for d in drift],
        "base_drift_max_mm": round(1000 * max(drift), 2),
        "rigidity_mm": {name: round(1000 * v, 2) for name, v in worst.items()},
        "joint_gap_mm": [round(1000 * g, 1) for g in gap],
        "points": {name: int((owner == k).sum()) for k, name in enumerate(art.links)},
        "overlap_mm": round(1000 * deepest, 1),
        "overlap_points": sunk,
    }


def _overlap(rest: np.ndarray, final: np.ndarray, owner: np.ndarray, fits: list, samples: tuple[np.ndarray, ...],
             sunk_depth: float = 0.005) -> tuple[float, int]:
    """(the deepest, m, and how many points sink ``sunk_depth`` or more) that any link's points
    at ``final`` sink into another link's convex hull, in that link's frame (its rigid ``fits``
    at the last frame), beyond their depth at ``rest``."""
    from scipy.spatial import ConvexHull, QhullError

    deepest, sunk = 0.0, np.zeros(len(owner), bool)
    for k, fit in enumerate(fits):
        others = owner != k
        if fit is None or not others.any():
            continue
        try:
            planes = ConvexHull(samples[k]).equations  # (F, 4): n . x + b <= 0 inside
        except QhullError:  # a flat link: no solid to sink into
            continue
        r, t = fit
        local = (final[others] - t) @ r  # into link k's frame at frame 0
        depth = -(local @ planes[:, :3].T + planes[:, 3]).max(1)
        at_rest = -(rest[others] @ planes[:, :3].T + planes[:, 3]).max(1)
        extra = depth - np.maximum(at_rest, 0.0)
        deepest = max(deepest, float(extra.max()))
        sunk[np.flatnonzero(others)[extra >= sunk_depth]] = True
    return deepest, int(sunk.sum())
