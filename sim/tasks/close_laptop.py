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
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.flow import ObjectFlow
from sim import assets
from sim.tasks import base, motion
from sim.world import Body, base_matrix, matrix_to_xyzw, reset, settle

if TYPE_CHECKING:
    from sim.articulation import Articulation


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
    """The lid must end below this angle..."""
    base_tolerance: float = 0.02
    """...with the base no farther than this from where it started (horizontally), metres:
    a laptop shoved across the table is not a closed laptop."""
    final_deg: float = 0.0
    """The oracle closes the lid to this angle."""


class CloseLaptop(base.TaskBase[CloseLaptopConfig]):
    """The close-laptop task (see module docstring)."""

    name = "close-laptop"
    text = "close the laptop"
    config_type = CloseLaptopConfig

    # ------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Rebuild the world: table and a laptop at a random pose, size and lid angle; settle."""
        cfg, rng = self.config, self.start_reset(seed)
        self.spec = assets.LaptopSpec(
            width=round(rng.uniform(*cfg.width_range), 3),
            depth=round(rng.uniform(*cfg.depth_range), 3),
            texture_seed=seed,
        )
        self.start_angle = math.radians(rng.uniform(*cfg.open_deg))
        yaw = cfg.facing + rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter)
        xy = (rng.uniform(*cfg.x_range), rng.uniform(*cfg.y_range))
        pose = base.yaw_pose(xy, self.spec.base_thickness / 2, yaw)
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

    def bodies(self) -> dict[str, Body]:
        self._require_reset()
        return {"table": self.table, "laptop": Body("laptop", self.body, "articulated")}

    def lid_angle(self) -> float:
        """Current hinge angle, rad (0 = closed)."""
        return float(pb.getJointState(self.body, 0, physicsClientId=self.world.client)[0])

    def object_links(self) -> dict[str, list[motion.Link]]:
        parts = (("base", -1, assets.LAPTOP_BASE_RGBA), ("lid", 0, assets.LAPTOP_LID_RGBA))
        return {"laptop": motion.asset_links(self.spec, self.body, assets.laptop_meshes(self.spec), parts)}

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
        laptop = motion.articulated_motion(self.object_links()["laptop"], poses, points_per_object, rng)
        return self.oracle_objects(
            {"laptop": laptop}, [laptop.trajectories], num_frames, points_per_object, rng
        )

    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None:
        """Drive the hinge kinematically along the oracle angle (no robot), then let go and settle."""
        self._require_reset()
        c = self.world.client

        def drive(s: float, ds_dt: float) -> None:
            vel = float(base.central_rate(self.oracle_angle, s, ds_dt))
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

    # ------------------------------------------------------------------ success

    def articulated(self) -> Articulation:
        """The laptop's links at the reset pose and its measured joint (`sim.articulation`; the
        object is named "laptop" in the task's scan and flows)."""
        from sim import articulation

        return articulation.articulation("laptop", self.spec, self.base_pose, (self.start_angle,))

    def describe_flow(self, flow: ObjectFlow) -> str:
        """The lid's final angle in the flow, the base's drift, and how far the lid carries
        the hinge from where the base has it (a lid sliding off its hinge: a rigid grip
        following it drags the laptop)."""
        from sim import articulation

        if "laptop" not in flow.objects:
            return ""
        art = self.articulated()
        try:
            m = articulation.measure(flow.objects["laptop"].trajectories, art)
        except ValueError:
            return ""
        start = math.degrees(self.start_angle)
        return (f"the flow turns the lid from {start:.0f} to {start + m['final_deg']:.0f} deg (the test needs "
                f"below {self.config.success_deg:g}), its base drifting up to {m['base_drift_max_mm']:.0f} mm, "
                f"its lid carrying the hinge up to {max(m['joint_gap_mm']):.0f} mm off the base")

    def metric_info(self) -> base.Metric:
        cfg = self.config
        return base.Metric("final lid angle", "deg", cfg.success_deg, below=True,
                           also=f"base within {cfg.base_tolerance * 1000:.0f} mm of its start")

    def evaluate(self) -> tuple[bool, float]:
        """(lid below the threshold and the base where it was, lid angle in degrees)."""
        self._require_reset()
        cfg = self.config
        deg = math.degrees(self.lid_angle())
        moved, _ = base.base_shift(self.base_pose, base_matrix(self.world, self.body))
        closed, kept = deg < cfg.success_deg, moved <= cfg.base_tolerance
        self.verdict = (f"lid at {deg:.1f} deg ({'below' if closed else 'not below'} {cfg.success_deg:g}); "
                        f"base moved {moved * 1000:.0f} mm (limit {cfg.base_tolerance * 1000:.0f})")
        return closed and kept, deg
