"""Grasp proposals: antipodal sampling on an object's points, gripper collision tests.

A grasp is a TCP pose (z: approach, y: finger closing axis) and an opening width. The
`GraspPlanner` protocol is what the pipeline calls, so a learned planner (Contact-GraspNet,
AnyGrasp, ...) can replace `AntipodalGraspPlanner` by returning the same `Grasp` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy.spatial import cKDTree

from chord_robot import geometry
from planning.robot import GripperSpec


@dataclass(frozen=True)
class Grasp:
    """A proposed grasp (or push contact).

    Attributes:
        pose: (4, 4) TCP pose at the grasp, world frame.
        width: finger opening at contact, metres (0 for a push).
        score: higher is better; comparable within one planner's output.
        contacts: (2, 3) contact points (a push or a pinch repeats its single contact).
        mode: "grasp" or "push".
        pinch: a pinch of a thin sheet (`planning.pinch`): the fingers hold one point of it and
            the sheet bends around them, so only that point's flow is followed, not a rigid
            region's.
    """

    pose: np.ndarray
    width: float
    score: float
    contacts: np.ndarray
    mode: Literal["grasp", "push"] = "grasp"
    pinch: bool = False


@dataclass(frozen=True)
class GraspRequest:
    """What a grasp planner is asked.

    Attributes:
        points: (N, 3) the object's points, world frame.
        normals: (N, 3) outward unit normals.
        weights: (N,) preference in [0, 1] for grasping near each point (the moving part).
        obstacles: (M, 3) every other scene point the hand must not touch (the table...).
        gripper: gripper geometry.
        preferred_approach: (3,) unit direction grasps should approach along, or None.
    """

    points: np.ndarray
    normals: np.ndarray
    weights: np.ndarray
    obstacles: np.ndarray
    gripper: GripperSpec
    preferred_approach: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.points)
        assert self.points.shape == (n, 3) and self.normals.shape == (n, 3), (
            self.points.shape,
            self.normals.shape,
        )
        assert self.weights.shape == (n,), self.weights.shape
        assert self.obstacles.ndim == 2 and self.obstacles.shape[1] == 3, self.obstacles.shape


class GraspPlanner(Protocol):
    """Anything that proposes grasps, best first."""

    def propose(self, request: GraspRequest, rng: np.random.Generator) -> list[Grasp]: ...


@dataclass(frozen=True)
class GraspConfig:
    """Antipodal sampling and scoring."""

    samples: int = 200
    """First contacts sampled on the object."""
    approaches: int = 12
    """Approach directions tried around each contact pair's axis."""
    friction: float = 0.4
    """Friction coefficient; the friction cone's half angle is atan(friction)."""
    min_width: float = 0.004
    """Thinnest part the fingers close on, metres."""
    open_margin: float = 0.01
    """Extra opening on each side of the contacts while approaching, metres."""
    ray_radius: float = 0.004
    """How far from the first contact's normal line the second contact may lie, metres (at
    least; see ``spacing_factor``)."""
    spacing_factor: float = 0.75
    """On sparser points the ray's radius grows to this multiple of the median point spacing,
    so that a flow sampled every centimetre still finds opposite contacts (the friction cone
    still decides which pairs are antipodal)."""
    approach_distance: float = 0.08
    """Length of the straight approach along z before the grasp; its swept volume must be free."""
    clearance: float = 0.003
    """Points closer than this to the hand count as collisions, metres."""
    weight_antipodal: float = 1.0
    """Score weight of how well the contact normals oppose each other."""
    weight_moving: float = 2.0
    """Score weight of the request's point weights at the contacts (the moving part)."""
    weight_approach: float = 1.0
    """Score weight of agreement with the preferred approach direction."""
    max_grasps: int = 96
    """Grasps returned, best first."""


def estimate_normals(points: np.ndarray, k: int = 16, thin: float = 0.05) -> np.ndarray:
    """(N, 3) unit normals by local PCA, oriented outward.

    Orientation: away from the local neighbourhood's centroid where that centroid lies off the
    tangent plane by more than ``thin`` times the neighbourhood's radius -- the two faces of a
    thin plate (a laptop lid) or the inside of a curved surface; elsewhere (flat regions)
    away from the centroid of all points.
    """
    assert points.ndim == 2 and points.shape[1] == 3, points.shape
    k = min(k, len(points))
    _, idx = cKDTree(points).query(points, k=k)
    nb = points[idx] - points[idx].mean(1, keepdims=True)
    _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    normals = vecs[:, :, 0]
    local = np.einsum("ni,ni->n", normals, points - points[idx].mean(1))
    radius = np.sqrt((np.linalg.norm(points[idx] - points[:, None], axis=-1) ** 2).mean(1))
    outward = np.einsum("ni,ni->n", normals, points - points.mean(0))
    side = np.where(np.abs(local) > thin * radius, local, outward)
    normals[side < 0] *= -1
    return normals


def gripper_boxes(gripper: GripperSpec, open_width: float, sweep: float) -> np.ndarray:
    """(3, 2, 3) min/max corners of the two fingers and the palm in the TCP frame.

    ``sweep`` extends every box back along -z: the volume passed through on the approach.
    """
    g = gripper
    half_w = open_width / 2
    z0, z1 = g.finger_tip - g.finger_length - sweep, g.finger_tip
    fx = g.finger_depth / 2
    left = [[-fx, half_w, z0], [fx, half_w + g.finger_thickness, z1]]
    right = [[-fx, -half_w - g.finger_thickness, z0], [fx, -half_w, z1]]
    hx, hy, hz = g.hand_half_extents
    palm = [[-hx, -hy, g.hand_center_z - hz - sweep], [hx, hy, g.hand_center_z + hz]]
    return np.array([left, right, palm])


def inside_gripper(poses: np.ndarray, points: np.ndarray, boxes: np.ndarray, clearance: float) -> np.ndarray:
    """(G, M) whether each of ``points`` (M, 3) is inside one of the gripper's ``boxes``
    (`gripper_boxes`), grown by ``clearance``, at each of ``poses`` (G, 4, 4)."""
    assert poses.shape[1:] == (4, 4) and points.ndim == 2 and points.shape[1] == 3, (poses.shape, points.shape)
    # R^T (p - t) for every pose, as one batched matmul: (G, M, 3)
    local = (points[None] - poses[:, None, :3, 3]) @ poses[:, :3, :3]
    inside = np.zeros(local.shape[:2], dtype=bool)
    for lo, hi in boxes:
        inside |= np.all((local >= lo - clearance) & (local <= hi + clearance), axis=-1)
    return inside


def box_gaps(poses: np.ndarray, points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(G,) smallest signed distance (metres; negative: inside, by the depth) of ``points``
    (M, 3) to the gripper's ``boxes`` (`gripper_boxes`) at each of ``poses`` (G, 4, 4)."""
    assert poses.shape[1:] == (4, 4) and points.ndim == 2 and points.shape[1] == 3, (poses.shape, points.shape)
    local = (points[None] - poses[:, None, :3, 3]) @ poses[:, :3, :3]  # (G, M, 3)
    gap = np.full(len(poses), np.inf)
    for lo, hi in boxes:
        q = np.abs(local - (lo + hi) / 2) - (hi - lo) / 2  # per axis: beyond the face (+) or not
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        gap = np.minimum(gap, (outside + np.minimum(q.max(-1), 0.0)).min(1))
    return gap


def collision_counts(
    poses: np.ndarray,
    points: np.ndarray,
    gripper: GripperSpec,
    open_width: float,
    sweep: float,
    clearance: float,
) -> np.ndarray:
    """(G,) number of ``points`` (M, 3) inside the gripper at each of ``poses`` (G, 4, 4)."""
    if len(points) == 0:
        return np.zeros(len(poses), dtype=np.int64)
    return inside_gripper(poses, points, gripper_boxes(gripper, open_width, sweep), clearance).sum(1)


def _perpendicular_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


@dataclass(frozen=True)
class AntipodalGraspPlanner:
    """Samples antipodal contact pairs within the gripper's width and friction cones, tries
    approach directions around each pair's axis, rejects hand collisions, scores the rest."""

    config: GraspConfig = GraspConfig()

    def propose(self, request: GraspRequest, rng: np.random.Generator) -> list[Grasp]:
        """Grasps for ``request``, best first (possibly empty)."""
        cfg, g = self.config, request.gripper
        pts, nrm = request.points, request.normals
        tree = cKDTree(pts)
        scene = np.concatenate([pts, request.obstacles])
        scene_tree = cKDTree(scene)
        # Radius of the hand's bounding sphere about the TCP, approach sweep included.
        extent = np.abs(gripper_boxes(g, g.max_width, cfg.approach_distance)).max(1)  # (3, 3)
        reach = float(np.linalg.norm(extent, axis=1).max()) + cfg.clearance
        cos_cone = np.cos(np.arctan(cfg.friction))
        max_gap = g.max_width - 2 * cfg.open_margin
        spacing = float(np.median(tree.query(pts, k=2)[0][:, 1])) if len(pts) > 1 else 0.0
        ray_radius = max(cfg.ray_radius, cfg.spacing_factor * spacing)

        p = request.weights + 0.25 * max(float(request.weights.max()), 1e-6)
        first = rng.choice(len(pts), size=min(cfg.samples, len(pts)), replace=False, p=p / p.sum())
        grasps: list[Grasp] = []
        seen: set[tuple[int, int]] = set()
        for i in first:
            inward = -nrm[i]
            near = np.asarray(tree.query_ball_point(pts[i], max_gap), dtype=np.int64)
            rel = pts[near] - pts[i]
            along = rel @ inward
            perp = np.linalg.norm(rel - along[:, None] * inward, axis=1)
            ok = (along >= cfg.min_width) & (perp <= ray_radius)
            if not ok.any():
                continue
            cand = near[ok]
            axis = pts[cand] - pts[i]
            axis /= np.linalg.norm(axis, axis=1, keepdims=True)
            cos1 = axis @ inward
            cos2 = np.einsum("ij,ij->i", axis, nrm[cand])
            good = (cos1 >= cos_cone) & (cos2 >= cos_cone)
            if not good.any():
                continue
            # The first surface the ray meets is where the finger lands.
            j = cand[good][np.argmin(along[ok][good])]
            key = (min(i, j), max(i, j))
            if key in seen:
                continue
            seen.add(key)
            a = pts[j] - pts[i]
            width = float(np.linalg.norm(a))
            a /= width
            quality = float((min(a @ inward, a @ nrm[j]) - cos_cone) / (1 - cos_cone))
            grasps += self._orientations(
                request,
                scene,
                scene_tree,
                reach,
                pts[i],
                pts[j],
                a,
                width,
                quality,
                (request.weights[i] + request.weights[j]) / 2,
            )
        grasps.sort(key=lambda x: -x.score)
        return grasps[: cfg.max_grasps]

    def _orientations(
        self,
        request: GraspRequest,
        scene: np.ndarray,
        scene_tree: cKDTree,
        reach: float,
        p1: np.ndarray,
        p2: np.ndarray,
        axis: np.ndarray,
        width: float,
        quality: float,
        moving: float,
    ) -> list[Grasp]:
        cfg, g = self.config, request.gripper
        center = (p1 + p2) / 2
        u, v = _perpendicular_basis(axis)
        phi = np.arange(cfg.approaches) * (2 * np.pi / cfg.approaches)
        approach = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v
        poses = geometry.frame_from_axes(
            approach, np.broadcast_to(axis, approach.shape), np.broadcast_to(center, approach.shape)
        )
        nearby = scene[scene_tree.query_ball_point(center, reach)]
        open_width = min(g.max_width, width + 2 * cfg.open_margin)
        hits = collision_counts(poses, nearby, g, open_width, cfg.approach_distance, cfg.clearance)
        pref = request.preferred_approach
        out = []
        for k in np.flatnonzero(hits == 0):
            agree = 0.5 * (1 + float(approach[k] @ pref)) if pref is not None else 0.5
            score = (
                cfg.weight_antipodal * quality
                + cfg.weight_moving * float(moving)
                + cfg.weight_approach * agree
            )
            out.append(Grasp(poses[k], width, score, np.stack([p1, p2])))
        return out


def is_collision_free(
    grasp: Grasp,
    scene: np.ndarray,
    gripper: GripperSpec,
    config: GraspConfig | None = None,
    sweep: float | None = None,
) -> bool:
    """Whether the hand at ``grasp`` (opened around its width; closed for a push) and its
    approach sweep (``sweep`` metres, default the config's approach distance) miss ``scene`` (M, 3)."""
    cfg = config or GraspConfig()
    open_width = (
        min(gripper.max_width, grasp.width + 2 * cfg.open_margin) if grasp.mode == "grasp" else 0.0
    )
    sweep = cfg.approach_distance if sweep is None else sweep
    count = collision_counts(grasp.pose[None], scene, gripper, open_width, sweep, cfg.clearance)
    return bool(count[0] == 0)
