"""close-laptop: a laptop beside the robot, its lid open 100-120 degrees; close it.

The laptop stands sideways to the robot (its hinge axis points at the robot's base), as it
would beside someone working at it. Facing the robot, its lid leans away: pushing it shut
from behind would need the hand turned back toward the robot, beyond a Panda's wrist limits,
and a grasp of its top edge would put the palm into the table before the lid is down. From
the side, the fingertips push the back of the lid over and down.

Success: the lid ends under 15 degrees. The hinge holds its angle by friction (a real
laptop's lid stays where it is put), so pushing it part way is not enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow
from sim import assets
from sim.tasks import base
from sim.world import Body, Panda, World, base_matrix, matrix_to_xyzw, reset, settle


@dataclass(frozen=True)
class CloseLaptopConfig:
    """Randomisation ranges and success threshold."""

    x_range: tuple[float, float] = (0.46, 0.54)
    """Laptop base centre x, metres."""
    y_range: tuple[float, float] = (-0.10, 0.10)
    facing: float = math.pi / 2
    """Yaw of the laptop's front (its +x), rad: pi / 2 faces the robot's left, pi the robot."""
    yaw_jitter: float = 0.3
    """Yaw about ``facing``, rad (uniform in +-)."""
    open_deg: tuple[float, float] = (100.0, 120.0)
    """Initial lid angle, degrees."""
    width_range: tuple[float, float] = (0.28, 0.33)
    depth_range: tuple[float, float] = (0.19, 0.23)
    snap_deg: float = 20.0
    """Below this angle the lid's weight beats the hinge friction and it falls shut, as real
    lids do; above it the lid stays where it is put. Sets the hinge friction torque."""
    success_deg: float = 15.0
    """The lid must end below this angle."""
    final_deg: float = 0.0
    """The oracle closes the lid to this angle."""


class CloseLaptop:
    """The close-laptop task (see module docstring)."""

    name = "close-laptop"
    text = "close the laptop"

    def __init__(
        self, world: World, config: CloseLaptopConfig | None = None, asset_root: str | None = None
    ) -> None:
        self.world = world
        self.config = config or CloseLaptopConfig()
        self.asset_root = asset_root
        self.seed: int | None = None

    # ------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Rebuild the world: table and a laptop at a random pose, size and lid angle; settle."""
        cfg, rng = self.config, np.random.default_rng([seed, 0])
        self.seed = seed
        self.spec = assets.LaptopSpec(
            width=round(rng.uniform(*cfg.width_range), 3),
            depth=round(rng.uniform(*cfg.depth_range), 3),
            texture_seed=seed,
        )
        self.start_angle = math.radians(rng.uniform(*cfg.open_deg))
        pose = np.eye(4)
        yaw = cfg.facing + rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter)
        pose[:3, :3] = trimesh.transformations.rotation_matrix(yaw, [0, 0, 1])[:3, :3]
        pose[:3, 3] = [
            rng.uniform(*cfg.x_range),
            rng.uniform(*cfg.y_range),
            self.spec.base_thickness / 2,
        ]
        self.table = reset(self.world)
        pos, orn = matrix_to_xyzw(pose)
        c = self.world.client
        self.body = pb.loadURDF(
            str(assets.write_laptop(self.spec, self.asset_root)), pos, orn, physicsClientId=c
        )
        pb.changeDynamics(self.body, -1, lateralFriction=0.8, physicsClientId=c)
        pb.resetJointState(self.body, 0, self.start_angle, 0.0, physicsClientId=c)
        base.set_joint_friction(self.world, self.body, {0: self.hinge_friction()})
        settle(self.world, list(self.bodies().values()), max_steps=240)
        self.base_pose = base_matrix(self.world, self.body)
        self.start_angle = self.lid_angle()

    def hinge_friction(self) -> float:
        """Hinge friction torque, N m: the lid's gravity torque at ``snap_deg`` from closed."""
        a = math.radians(self.config.snap_deg)
        # horizontal lever of the lid's centre of mass, (d/2, t/2) in the hinge frame
        lever = self.spec.depth / 2 * math.cos(a) - self.spec.lid_thickness / 2 * math.sin(a)
        return self.spec.lid_mass * self.world.config.gravity * lever

    def _require_reset(self) -> None:
        if self.seed is None:
            raise InputError("call reset(seed) first")

    def bodies(self) -> dict[str, Body]:
        self._require_reset()
        return {"table": self.table, "laptop": Body("laptop", self.body, "articulated")}

    def lid_angle(self) -> float:
        """Current hinge angle, rad (0 = closed)."""
        return float(pb.getJointState(self.body, 0, physicsClientId=self.world.client)[0])

    def robot_base(self) -> np.ndarray:
        return base.ROBOT_BASE.copy()

    def load_robot(self) -> Panda:
        return base.load_task_robot(self.world)

    def _links(self) -> list[base.Link]:
        parts = (("base", -1, assets.LAPTOP_BASE_RGBA), ("lid", 0, assets.LAPTOP_LID_RGBA))
        return base.asset_links(self.spec, self.body, assets.laptop_meshes(self.spec), parts)

    def scan_surfaces(self) -> dict[str, tuple[trimesh.Trimesh, np.ndarray]]:
        """Object name -> (current visual surface in the world frame, (V, 3) RGB vertex
        colours): what a scan of the scene sees (the table is added by `base.write_scan`)."""
        self._require_reset()
        return {"laptop": base.links_world_surface(self.world, self._links())}

    def scene_meshes(self) -> dict[str, trimesh.Trimesh]:
        """Object name -> current surface in the world frame (the table is static)."""
        self._require_reset()
        from sim.world import table_mesh

        return {
            "table": table_mesh(self.world.config.table),
            "laptop": base.links_world_mesh(self.world, self._links()),
        }

    def scene_points(self, num_points: int = 2048) -> dict[str, np.ndarray]:
        """Object name -> (N, 3) current surface points; 'table' is its top near the objects."""
        rng = np.random.default_rng([self.seed or 0, 2])
        pts = {
            "laptop": base.sample_surface(
                base.links_world_mesh(self.world, self._links()), num_points, rng
            )
        }
        pts["table"] = base.table_motion(
            base.table_region(list(pts.values())), 1, num_points, rng
        ).points.astype(np.float64)
        return pts

    # ------------------------------------------------------------------ oracle

    def oracle_angle(self, s: float | np.ndarray) -> np.ndarray:
        """Lid angle (rad) of the scripted motion at normalised time ``s``."""
        final = math.radians(self.config.final_deg)
        return self.start_angle + (final - self.start_angle) * base.ease(s)

    def oracle_flow(self, num_frames: int = 41, points_per_object: int = 2048) -> ObjectFlow:
        """The scripted closing sampled on the laptop's surface (two links), plus the table."""
        self._require_reset()
        rng = np.random.default_rng([self.seed, 1])
        angles = self.oracle_angle(base.frame_times(num_frames))
        fk = [assets.laptop_link_poses(self.spec, a) for a in angles]
        poses = {name: np.stack([self.base_pose @ f[name] for f in fk]) for name in ("base", "lid")}
        laptop = base.articulated_motion(self._links(), poses, points_per_object, rng)
        table = base.table_motion(
            base.table_region([laptop.trajectories]), num_frames, points_per_object, rng
        )
        return ObjectFlow(
            {"laptop": laptop, "table": table},
            self.text,
            base.ORACLE_FPS,
            "oracle",
            {"task": self.name, "seed": self.seed},
        )

    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None:
        """Drive the hinge kinematically along the oracle angle (no robot), then let go and settle."""
        self._require_reset()
        c = self.world.client

        def drive(s: float, ds_dt: float) -> None:
            eps = 1e-3
            vel = (
                float(self.oracle_angle(min(s + eps, 1.0)) - self.oracle_angle(max(s - eps, 0.0)))
                / (2 * eps)
                * ds_dt
            )
            pb.resetJointState(self.body, 0, float(self.oracle_angle(s)), vel, physicsClientId=c)

        base.drive_loop(self.world, num_frames, drive, on_step)
        pb.resetJointState(self.body, 0, float(self.oracle_angle(1.0)), 0.0, physicsClientId=c)
        settle(self.world, list(self.bodies().values()), max_steps=240)

    def reference_camera(self, width: int, height: int) -> Camera:
        """A camera in front of the laptop and to its right (turning with ``facing``)."""
        turn = trimesh.transformations.rotation_matrix(self.config.facing - math.pi, [0, 0, 1])
        offset = turn[:3, :3] @ np.array([-0.2, -0.55, 0.35])
        return base.side_camera(
            self.base_pose[:3, 3] + [0.0, 0.0, 0.08], width, height, offset=tuple(offset)
        )

    def render_reference_video(
        self, num_frames: int = 41, width: int = 320, height: int = 240
    ) -> tuple[np.ndarray, Camera]:
        """(T, H, W, 3) uint8 frames of the oracle from `reference_camera`, and that camera.

        Plays the oracle, then resets the task to the same seed (any robot is removed)."""
        self._require_reset()
        out = base.record_oracle(self, num_frames, width, height)
        self.reset(self.seed)  # type: ignore[arg-type]
        return out

    # ------------------------------------------------------------------ success

    def evaluate(self) -> tuple[bool, float]:
        """(lid below the threshold, lid angle in degrees)."""
        self._require_reset()
        deg = math.degrees(self.lid_angle())
        return deg < self.config.success_deg, deg
