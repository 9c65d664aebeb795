"""pick-banana: a curved banana lying on the table and a plate beside it; put the banana on
the plate.

The oracle lifts the banana along an arc, turns it a little and lowers it onto the plate.
Success: the banana rests on the plate (touching it, not touching the table, nearly still).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pybullet as pb
import trimesh

from chord_robot.camera import Camera
from chord_robot.flow import ObjectFlow
from sim import assets
from sim.tasks import base, motion
from sim.world import (
    Body,
    base_matrix,
    body_speed,
    matrix_to_xyzw,
    reset,
    settle,
)


@dataclass(frozen=True)
class PickBananaConfig:
    """Randomisation ranges and success criteria."""

    banana_x: tuple[float, float] = (0.42, 0.55)
    banana_y: tuple[float, float] = (-0.22, -0.08)
    plate_x: tuple[float, float] = (0.45, 0.6)
    plate_y: tuple[float, float] = (0.1, 0.22)
    min_gap: float = 0.03
    """Clearance between the banana's reach and the plate's rim at the start, metres."""
    arc_radius: tuple[float, float] = (0.11, 0.14)
    arc_angle: tuple[float, float] = (1.0, 1.2)
    banana_radius: tuple[float, float] = (0.016, 0.02)
    plate_radius: tuple[float, float] = (0.11, 0.125)
    yaw_turn: float = 0.5
    """The oracle turns the banana by up to this yaw, rad (uniform in +-)."""
    lift: float = 0.1
    """Height of the oracle's arc above the straight path, metres."""
    drop: float = 0.004
    """The oracle lets go this far above the resting height, metres."""
    rest_speed: float = 0.05
    """The banana counts as resting below this speed, m/s."""


class PickBanana(base.TaskBase[PickBananaConfig]):
    """The pick-banana task (see module docstring)."""

    name = "pick-banana"
    text = "put the banana on the plate"
    config_type = PickBananaConfig

    # ------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Rebuild the world: table, a banana and a plate at random poses and sizes; settle."""
        cfg, rng = self.config, self.start_reset(seed)
        self.banana_spec = assets.BananaSpec(
            arc_radius=round(rng.uniform(*cfg.arc_radius), 3),
            arc_angle=round(rng.uniform(*cfg.arc_angle), 3),
            radius=round(rng.uniform(*cfg.banana_radius), 4),
            texture_seed=seed,
        )
        self.plate_spec = assets.PlateSpec(
            radius=round(rng.uniform(*cfg.plate_radius), 3), texture_seed=seed
        )
        banana_mesh = assets.banana_mesh(self.banana_spec)
        reach = float(np.linalg.norm(banana_mesh.vertices[:, :2], axis=1).max())
        for _ in range(50):  # bounded rejection sampling of a layout without overlap
            b_xy = np.array([rng.uniform(*cfg.banana_x), rng.uniform(*cfg.banana_y)])
            p_xy = np.array([rng.uniform(*cfg.plate_x), rng.uniform(*cfg.plate_y)])
            if np.linalg.norm(b_xy - p_xy) >= reach + self.plate_spec.radius + cfg.min_gap:
                break
        else:
            raise RuntimeError(
                f"pick-banana: no layout without overlap for seed {seed}; widen the ranges"
            )
        yaw = rng.uniform(-math.pi, math.pi)
        self.turn = rng.uniform(-cfg.yaw_turn, cfg.yaw_turn)
        self.table = reset(self.world)
        c = self.world.client
        bottom = -float(banana_mesh.vertices[:, 2].min())
        pos, orn = matrix_to_xyzw(base.yaw_pose(b_xy, bottom + 1e-3, yaw))
        self.banana = pb.loadURDF(
            str(assets.write_banana(self.banana_spec, self.asset_root)), pos, orn, physicsClientId=c
        )
        pos, orn = matrix_to_xyzw(base.yaw_pose(p_xy, self.plate_spec.thickness / 2, 0.0))
        self.plate = pb.loadURDF(
            str(assets.write_plate(self.plate_spec, self.asset_root)), pos, orn, physicsClientId=c
        )
        for b, f in ((self.banana, 0.9), (self.plate, 0.8)):
            pb.changeDynamics(
                b,
                -1,
                lateralFriction=f,
                spinningFriction=0.002,
                rollingFriction=0.0005,
                physicsClientId=c,
            )
        settle(self.world, list(self.bodies().values()), max_steps=480)
        self.banana_start = base_matrix(self.world, self.banana)
        self.plate_start = base_matrix(self.world, self.plate)

    def bodies(self) -> dict[str, Body]:
        self._require_reset()
        return {
            "table": self.table,
            "banana": Body("banana", self.banana, "rigid"),
            "plate": Body("plate", self.plate, "rigid"),
        }

    def object_links(self) -> dict[str, list[motion.Link]]:
        return {
            "banana": motion.asset_links(self.banana_spec, self.banana, {"banana": assets.banana_mesh(self.banana_spec)},
                                         (("banana", -1, assets.BANANA_RGBA),)),
            "plate": motion.asset_links(self.plate_spec, self.plate, {"plate": assets.plate_mesh(self.plate_spec)},
                                        (("plate", -1, assets.PLATE_RGBA),)),
        }

    # ------------------------------------------------------------------ oracle

    def oracle_pose(self, s: float) -> np.ndarray:
        """(4, 4) banana pose of the scripted motion at normalised time ``s``."""
        e = float(base.ease(s))
        start, plate = self.banana_start, self.plate_start
        rest_z = start[2, 3] + plate[2, 3] + assets.plate_top(self.plate_spec) + self.config.drop
        end_xyz = np.array([plate[0, 3], plate[1, 3], rest_z])
        xyz = start[:3, 3] + e * (end_xyz - start[:3, 3])
        xyz[2] += self.config.lift * math.sin(math.pi * e)
        out = np.eye(4)
        out[:3, :3] = (
            trimesh.transformations.rotation_matrix(self.turn * e, [0, 0, 1])[:3, :3]
            @ start[:3, :3]
        )
        out[:3, 3] = xyz
        return out

    def oracle_flow(self, num_frames: int = 41, points_per_object: int = 2048) -> ObjectFlow:
        """The scripted pick-and-place sampled on the banana; the plate stays; plus the table."""
        self._require_reset()
        rng = np.random.default_rng([self.seed, 1])
        links = self.object_links()
        banana_poses = np.stack([self.oracle_pose(s) for s in base.frame_times(num_frames)])
        plate_poses = np.repeat(self.plate_start[None], num_frames, 0)
        banana = motion.articulated_motion(
            links["banana"], {"banana": banana_poses}, points_per_object, rng
        )
        plate = motion.articulated_motion(
            links["plate"], {"plate": plate_poses}, points_per_object, rng
        )
        return self.oracle_objects(
            {"banana": banana, "plate": plate},
            [banana.trajectories, plate.points],
            num_frames,
            points_per_object,
            rng,
        )

    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None:
        """Carry the banana kinematically along the oracle (no robot), then let go and settle."""
        self._require_reset()
        c = self.world.client

        def drive(s: float, ds_dt: float) -> None:
            eps = 1e-3
            m = self.oracle_pose(s)
            lin = base.central_rate(lambda u: self.oracle_pose(u)[:3, 3], s, ds_dt, eps)
            ang = np.array(
                [
                    0.0,
                    0.0,
                    self.turn
                    * float(base.ease(min(s + eps, 1.0)) - base.ease(max(s - eps, 0.0)))
                    / (2 * eps)
                    * ds_dt,
                ]
            )
            pos, orn = matrix_to_xyzw(m)
            pb.resetBasePositionAndOrientation(self.banana, pos, orn, physicsClientId=c)
            pb.resetBaseVelocity(self.banana, lin.tolist(), ang.tolist(), physicsClientId=c)

        base.drive_loop(self.world, num_frames, drive, on_step)
        pb.resetBaseVelocity(self.banana, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        settle(self.world, list(self.bodies().values()), max_steps=480)

    def reference_camera(self, width: int, height: int) -> Camera:
        target = 0.5 * (self.banana_start[:3, 3] + self.plate_start[:3, 3]) + [0.0, 0.0, 0.04]
        return base.side_camera(target, width, height, offset=(-0.5, -0.15, 0.42))

    # ------------------------------------------------------------------ success

    def describe_flow(self, flow: ObjectFlow) -> str:
        """What the flow asks of the banana: how far it carries its centre (against the scripted
        motion), where that ends against the plate's centre and rim, how high it lifts it, how
        far its lowest point sinks below where it lay (into the table) on the way, and where its
        lowest point ends against the plate's top (the scripted motion lets go a few mm above
        it). A flow that slides the banana through the table fails in execution however it is
        planned."""
        self._require_reset()
        if "banana" not in flow.objects:
            return ""
        traj = np.asarray(flow.objects["banana"].trajectories, dtype=np.float64)  # (T, N, 3) world
        centre, lowest = traj.mean(1), traj[..., 2].min(1)
        scripted = float(np.linalg.norm(self.oracle_pose(1.0)[:3, 3] - self.banana_start[:3, 3]))
        plate = self.plate_start[:3, 3]
        end = float(np.linalg.norm(centre[-1, :2] - plate[:2]))
        over = end < self.plate_spec.radius  # else the table's top, the plane z = 0 (`sim.world`)
        top = plate[2] + assets.plate_top(self.plate_spec) if over else 0.0
        mm = 1000.0
        return (f"the flow carries the banana's centre {np.linalg.norm(centre[-1] - centre[0]) * mm:.0f} mm "
                f"(the scripted motion {scripted * mm:.0f}) to {end * mm:.0f} mm "
                f"from the plate's centre (radius {self.plate_spec.radius * mm:.0f}), lifting it up to "
                f"{max(0.0, float((centre[:, 2] - centre[0, 2]).max())) * mm:.0f} mm and sinking its lowest point "
                f"up to {max(0.0, float(lowest[0] - lowest.min())) * mm:.0f} mm below where it lay; at the end its "
                f"lowest point is {(lowest[-1] - top) * mm:+.0f} mm from the {'plate' if over else 'table'}'s top")

    def metric_info(self) -> base.Metric:
        self._require_reset()
        return base.Metric("banana's distance from the plate centre", "m", self.plate_spec.radius, below=True,
                           also="resting on the plate, off the table")

    def evaluate(self) -> tuple[bool, float]:
        """(resting on the plate, horizontal distance of the banana from the plate centre in m)."""
        self._require_reset()
        c = self.world.client
        on_plate = len(pb.getContactPoints(self.banana, self.plate, physicsClientId=c)) > 0
        on_table = len(pb.getContactPoints(self.banana, self.table.id, physicsClientId=c)) > 0
        still = (
            body_speed(self.world, Body("banana", self.banana, "rigid")) < self.config.rest_speed
        )
        b, p = base_matrix(self.world, self.banana), base_matrix(self.world, self.plate)
        dist = float(np.linalg.norm(b[:2, 3] - p[:2, 3]))
        self.verdict = (f"banana {'on' if on_plate else 'not on'} the plate, {'touching' if on_table else 'off'} "
                        f"the table, {'at rest' if still else 'moving'}, {dist * 1000:.0f} mm from its centre "
                        f"(radius {self.plate_spec.radius * 1000:.0f})")
        return bool(on_plate and not on_table and still and dist < self.plate_spec.radius), dist

