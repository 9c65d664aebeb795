"""fold-fabric: a square cloth (a PyBullet mass-spring soft body) flat on the table; fold it
corner to corner.

The oracle folds the cloth along its anti-diagonal: the half holding the grabbed corner (node
0, the corner nearest the robot's right) turns 180 degrees about a line lifted a few
millimetres above the cloth, so the grabbed corner lands on the opposite one. Played without
a robot, the grabbed corner is pinned to a kinematic handle that follows the oracle and is
let go at the end. Success: the grabbed corner ends within 4 cm of the opposite corner.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.flow import ObjectFlow, ObjectMotion, matrix_to_quat
from sim import assets
from sim.tasks import base, motion
from sim.world import Body, reset, settle, soft_nodes

CLOTH_RGBA = (0.8, 0.25, 0.3, 1.0)


@dataclass(frozen=True)
class FoldFabricConfig:
    """Randomisation ranges, cloth physics and success threshold."""

    x_range: tuple[float, float] = (0.45, 0.55)
    """Cloth centre x, metres."""
    y_range: tuple[float, float] = (-0.1, 0.1)
    yaw_jitter: float = 0.35
    """Rad (uniform in +-)."""
    size_range: tuple[float, float] = (0.2, 0.26)
    """Side length, metres."""
    resolution: int = 9
    """Nodes per side."""
    mass: float = 0.05
    """kg."""
    elastic_stiffness: float = 40.0
    """Mass-spring stiffness (PyBullet springElasticStiffness); the largest that stays stable
    at the sim rate (docs/sim-notes.md)."""
    bending_stiffness: float = 0.3
    """PyBullet springBendingStiffness. Without cloth-cloth contact only the table's friction
    holds a folded half against its crease's bending springs, so it is kept low enough that a
    fold released a little short of the opposite corner stays folded (docs/sim-notes.md)."""
    self_collision: bool = False
    """Cloth-cloth contact. Off by default: PyBullet's soft self-collision is not deterministic
    within a process, and the fold's metric does not need it (the folded half then lies in the
    plane of the other); see docs/sim-notes.md."""
    friction: float = 1.0
    """Cloth friction coefficient (the table is set to the same)."""
    fold_lift: float = 0.006
    """Height of the fold line above the cloth, metres (the folded half lands at twice this)."""
    success_distance: float = 0.04
    """The grabbed corner must end this close to the opposite corner, metres."""


class FoldFabric(base.TaskBase[FoldFabricConfig]):
    """The fold-fabric task (see module docstring)."""

    name = "fold-fabric"
    text = "fold the cloth in half, corner to corner"
    config_type = FoldFabricConfig

    # ------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Rebuild a deformable world: table and a cloth at a random pose and size; settle."""
        cfg, rng = self.config, self.start_reset(seed)
        self.spec = assets.ClothSpec(
            size=round(rng.uniform(*cfg.size_range), 3), resolution=cfg.resolution, mass=cfg.mass,
            texture_seed=seed,
        )
        centre = [rng.uniform(*cfg.x_range), rng.uniform(*cfg.y_range), 0.003]
        yaw = rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter)
        self.table = reset(self.world, deformable=True)
        c = self.world.client
        pb.changeDynamics(self.table.id, -1, lateralFriction=cfg.friction, physicsClientId=c)
        orn = pb.getQuaternionFromEuler([0.0, 0.0, yaw])
        self.body = pb.loadSoftBody(
            str(assets.write_cloth(self.spec, self.asset_root)),
            basePosition=centre,
            baseOrientation=orn,
            scale=1.0,
            mass=cfg.mass,
            collisionMargin=0.004,
            useMassSpring=1,
            useBendingSprings=1,
            useNeoHookean=0,
            springElasticStiffness=cfg.elastic_stiffness,
            springDampingStiffness=0.1,
            springBendingStiffness=cfg.bending_stiffness,
            useSelfCollision=int(cfg.self_collision),
            frictionCoeff=cfg.friction,
            useFaceContact=1,
            physicsClientId=c,
        )
        if self.spec.texture_seed is None:
            pb.changeVisualShape(self.body, -1, rgbaColor=CLOTH_RGBA, flags=0, physicsClientId=c)
        else:
            image = assets.write_cloth_texture(self.spec, CLOTH_RGBA, self.asset_root)
            texture = pb.loadTexture(str(image), physicsClientId=c)
            pb.changeVisualShape(self.body, -1, textureUniqueId=texture, flags=0, physicsClientId=c)
        self.faces = assets.cloth_grid(self.spec).faces
        self.corner, self.opposite = assets.cloth_corners(self.spec)
        settle(self.world, list(self.bodies().values()), max_steps=120)
        self.start_nodes = self.nodes()

    def bodies(self) -> dict[str, Body]:
        self._require_reset()
        return {"table": self.table, "cloth": Body("cloth", self.body, "soft")}

    def nodes(self) -> np.ndarray:
        """(M, 3) current cloth node positions (grid order, see `assets.ClothSpec`)."""
        return soft_nodes(self.world, self.body)

    def cloth_mesh(self) -> trimesh.Trimesh:
        """The cloth's current surface (its simulation mesh) in the world frame."""
        return trimesh.Trimesh(self.nodes(), self.faces, process=False)

    def object_meshes(self) -> dict[str, trimesh.Trimesh]:
        return {"cloth": self.cloth_mesh()}

    def scan_surfaces(self) -> dict[str, tuple[trimesh.Trimesh, np.ndarray]]:
        """Object name -> (current surface in the world frame, (M, 3) RGB vertex colours): what
        a scan sees. The simulation grid is subdivided (midpoints, three times) so the vertex
        colours, read from the cloth's texture, carry its patches."""
        self._require_reset()
        mesh = self.cloth_mesh()
        if self.spec.texture_seed is None:
            return {"cloth": (mesh, np.tile(CLOTH_RGBA[:3], (len(mesh.vertices), 1)))}
        vertices, faces, uv = mesh.vertices, mesh.faces, assets.cloth_uv(self.spec)
        for _ in range(3):
            vertices, faces, attrs = trimesh.remesh.subdivide(vertices, faces, vertex_attributes={"uv": uv})
            uv = attrs["uv"]
        colours = assets.texture_colors(assets.cloth_texture(self.spec, CLOTH_RGBA), uv)
        return {"cloth": (trimesh.Trimesh(vertices, faces, process=False), colours)}

    # ------------------------------------------------------------------ oracle

    def fold_axis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point on the lifted fold line, its unit direction, unit normal toward the grabbed corner),
        from the cloth at reset. The direction is chosen so a positive rotation lifts the corner."""
        n, x = self.spec.resolution, self.start_nodes
        c1, c2 = x[n - 1], x[n * (n - 1)]
        mid = 0.5 * (c1 + c2)
        normal = x[self.corner] - mid
        normal[2] = 0.0
        along = c2 - c1
        along[2] = 0.0
        normal -= along * (normal @ along) / (along @ along)
        normal /= np.linalg.norm(normal)
        direction = np.cross(normal, [0.0, 0.0, 1.0])
        return mid + [0.0, 0.0, self.config.fold_lift], direction, normal

    def fold_transform(self, s: float) -> np.ndarray:
        """(4, 4) rigid motion of the folding half at normalised time ``s``."""
        point, direction, _ = self.fold_axis()
        return trimesh.transformations.rotation_matrix(
            math.pi * float(base.ease(s)), direction, point
        )

    def fold_points(self, points: np.ndarray, s: float) -> np.ndarray:
        """Positions at time ``s`` of (N, 3) cloth points given at reset: the half on the
        grabbed corner's side turns about the fold line, the rest stays."""
        point, _, normal = self.fold_axis()
        side = (points - point) @ normal > 0
        out = points.copy()
        out[side] = motion.transform(self.fold_transform(s), points[side])
        return out

    def oracle_flow(
        self, num_frames: int = 41, points_per_object: int = 2048, num_controls: int = 32
    ) -> ObjectFlow:
        """The scripted fold sampled on the cloth's surface, plus the table."""
        self._require_reset()
        rng = np.random.default_rng([self.seed, 1])
        times = base.frame_times(num_frames)
        mesh = trimesh.Trimesh(self.start_nodes, self.faces, process=False)
        pts = motion.sample_surface(mesh, points_per_object, rng)
        traj = np.stack([self.fold_points(pts, s) for s in times])
        point, _, normal = self.fold_axis()
        dist = (pts - point) @ normal
        away = np.flatnonzero(np.abs(dist) > 0.01)  # keep control points off the crease
        centers = pts[away[motion.farthest_points(pts[away], num_controls, rng)]]
        moving = (centers - point) @ normal > 0
        rel = np.stack([self.fold_transform(s) for s in times])  # (T, 4, 4)
        quats = np.zeros((num_frames, len(centers), 4))
        trans = np.zeros((num_frames, len(centers), 3))
        quats[..., 0] = 1.0
        quats[:, moving] = matrix_to_quat(rel[:, :3, :3])[:, None]
        trans[:, moving] = (
            np.einsum("tij,kj->tki", rel[:, :3, :3], centers[moving])
            + rel[:, None, :3, 3]
            - centers[moving][None]
        )
        cloth = ObjectMotion(
            pts,
            traj,
            centers,
            quats,
            trans,
            colors=np.tile(CLOTH_RGBA[:3], (len(pts), 1)),
            source="mesh",
        )
        cloth = ObjectMotion(
            pts,
            traj,
            centers,
            quats,
            trans,
            cloth.colors,
            0.5 * cloth.control_scales(),
            False,
            "mesh",
        )
        return self.oracle_objects({"cloth": cloth}, [traj], num_frames, points_per_object, rng)

    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None:
        """Pin the grabbed corner to a kinematic handle that follows the oracle, let go, settle."""
        self._require_reset()
        c = self.world.client
        start = self.start_nodes[self.corner][None]
        handle = pb.createMultiBody(0.0, -1, basePosition=start[0].tolist(), physicsClientId=c)
        anchor = pb.createSoftBodyAnchor(self.body, self.corner, handle, -1, physicsClientId=c)

        def drive(s: float, ds_dt: float) -> None:
            pos = self.fold_points(start, s)[0]
            pb.resetBasePositionAndOrientation(
                handle, pos.tolist(), [0, 0, 0, 1], physicsClientId=c
            )

        base.drive_loop(self.world, num_frames, drive, on_step)
        pb.removeConstraint(anchor, physicsClientId=c)
        pb.removeBody(handle, physicsClientId=c)
        settle(self.world, list(self.bodies().values()), max_steps=480, tol=0.01)

    def reference_camera(self, width: int, height: int) -> Camera:
        target = self.start_nodes.mean(0) + [0.0, 0.0, 0.05]
        return base.side_camera(target, width, height, offset=(-0.25, -0.35, 0.4))

    def describe_flow(self, flow: ObjectFlow) -> str:
        """What the flow asks of the cloth: where it carries each corner (the flow's point
        nearest the corner at frame 0) - the one it moves furthest, that corner's end distance
        to the corner opposite it (a corner-to-corner fold: near 0), its highest lift and its
        height at the end (a fold lays it down again: a few mm) - and the grabbed corner's end
        distance to its opposite (what `evaluate` tests)."""
        if "cloth" not in flow.objects:
            return ""
        traj = flow.objects["cloth"].trajectories  # (T, N, 3)
        n, x = self.spec.resolution, self.start_nodes
        corners = [0, n - 1, n * n - 1, n * (n - 1)]  # around the square: i and (i + 2) % 4 are opposite
        near = [int(np.argmin(np.linalg.norm(traj[0] - x[c], axis=1))) for c in corners]
        moved = [float(np.linalg.norm(traj[-1, k] - traj[0, k])) for k in near]
        i = int(np.argmax(moved))
        end = float(np.linalg.norm(traj[-1, near[i]] - traj[-1, near[(i + 2) % 4]]))
        grabbed = float(np.linalg.norm(traj[-1, near[0]] - traj[-1, near[2]]))
        lift = float(traj[:, near[i], 2].max() - traj[0, near[i], 2])
        height = float(traj[-1, near[i], 2] - traj[0, near[i], 2])
        tail = (f"the grabbed corner ends {grabbed * 1000:.0f} mm from its opposite (the test needs under "
                f"{self.config.success_distance * 1000:.0f})")
        if moved[i] < 0.001:
            return "the flow leaves the cloth's corners where they are; " + tail
        which = ("the grabbed corner", "a corner of the other diagonal", "the corner opposite the grabbed one",
                 "a corner of the other diagonal")[i]
        return (f"the flow moves {which} furthest, {moved[i] * 1000:.0f} mm (lifted up to {lift * 1000:.0f} mm), "
                f"ending {end * 1000:.0f} mm from the corner opposite it and {height * 1000:+.0f} mm above where it "
                "started; " + tail)

    # ------------------------------------------------------------------ success

    def metric_info(self) -> base.Metric:
        return base.Metric("grabbed corner's distance to the opposite corner", "m",
                           self.config.success_distance, below=True)

    def evaluate(self) -> tuple[bool, float]:
        """(corner within the threshold, distance from the grabbed to the opposite corner in m)."""
        self._require_reset()
        x = self.nodes()
        d = float(np.linalg.norm(x[self.corner] - x[self.opposite]))
        self.verdict = (f"grabbed corner {d * 1000:.0f} mm from the opposite one "
                        f"(needs under {self.config.success_distance * 1000:.0f})")
        return d < self.config.success_distance, d
