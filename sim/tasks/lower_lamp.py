"""lower-lamp: a desk lamp (base, arm on a revolute joint, head on a second one) leaning toward
the robot; lower its head.

The oracle tilts the arm forward and the head down. Success: the head's centre ends at least
60% of the way from its start height to the oracle motion's final height, with the base
upright and where it stood (a toppled or dragged lamp also lowers its head). Both joints hold
their angle by friction, like a real desk lamp's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb

from chord_robot.camera import Camera
from chord_robot.flow import ObjectFlow
from sim import assets
from sim.tasks import base, motion
from sim.world import (
    Body,
    base_matrix,
    link_matrix,
    matrix_to_xyzw,
    reset,
    settle,
)

if TYPE_CHECKING:
    from sim.articulation import Articulation

ARM, HEAD = 0, 1  # PyBullet joint (and child link) indices


@dataclass(frozen=True)
class LowerLampConfig:
    """Randomisation ranges and success threshold."""

    x_range: tuple[float, float] = (0.55, 0.63)
    """Lamp base centre x, metres."""
    y_range: tuple[float, float] = (-0.12, 0.12)
    yaw_jitter: float = 0.4
    """Yaw about facing the robot, rad (uniform in +-)."""
    arm_start: tuple[float, float] = (0.05, 0.25)
    """Initial arm tilt, rad."""
    head_start: tuple[float, float] = (0.2, 0.5)
    """Initial head tilt, rad."""
    arm_delta: tuple[float, float] = (0.45, 0.6)
    """How much the oracle tilts the arm further, rad."""
    head_delta: tuple[float, float] = (0.2, 0.4)
    """How much the oracle tilts the head further, rad."""
    arm_length: tuple[float, float] = (0.22, 0.28)
    shade_radius: tuple[float, float] = (0.04, 0.05)
    arm_friction: float = 0.8
    """N m."""
    head_friction: float = 0.15
    """N m."""
    success_fraction: float = 0.6
    """Fraction of the oracle's height drop the head must achieve..."""
    base_tolerance: float = 0.02
    """...with the base no farther than this from where it stood (horizontally), metres..."""
    upright_deg: float = 10.0
    """...and its up axis tilted by no more than this, degrees."""


class LowerLamp(base.TaskBase[LowerLampConfig]):
    """The lower-lamp task (see module docstring)."""

    name = "lower-lamp"
    text = "lower the lamp"
    config_type = LowerLampConfig

    # ------------------------------------------------------------------ state

    def reset(self, seed: int) -> None:
        """Rebuild the world: table and a lamp at a random pose, size and joint angles; settle."""
        cfg, rng = self.config, self.start_reset(seed)
        self.spec = assets.LampSpec(
            arm_length=round(rng.uniform(*cfg.arm_length), 3),
            shade_radius=round(rng.uniform(*cfg.shade_radius), 3),
            texture_seed=seed,
        )
        q0 = np.array([rng.uniform(*cfg.arm_start), rng.uniform(*cfg.head_start)])
        self.delta = np.array([rng.uniform(*cfg.arm_delta), rng.uniform(*cfg.head_delta)])
        yaw = math.pi + rng.uniform(-cfg.yaw_jitter, cfg.yaw_jitter)
        xy = (rng.uniform(*cfg.x_range), rng.uniform(*cfg.y_range))
        pose = base.yaw_pose(xy, self.spec.base_height / 2, yaw)
        self.table = reset(self.world)
        c = self.world.client
        pos, orn = matrix_to_xyzw(pose)
        self.body = pb.loadURDF(
            str(assets.write_lamp(self.spec, self.asset_root)), pos, orn, physicsClientId=c
        )
        pb.changeDynamics(self.body, -1, lateralFriction=0.9, physicsClientId=c)
        for j, q in zip((ARM, HEAD), q0, strict=True):
            pb.resetJointState(self.body, j, float(q), 0.0, physicsClientId=c)
        base.set_joint_friction(
            self.world, self.body, {ARM: cfg.arm_friction, HEAD: cfg.head_friction}
        )
        settle(self.world, list(self.bodies().values()), max_steps=240)
        self.base_pose = base_matrix(self.world, self.body)
        self.start_joints = self.joints()
        self.start_height = self.head_height()
        final = assets.lamp_link_poses(self.spec, *self.oracle_joints(1.0))["head"]
        self.final_height = float(
            motion.transform(self.base_pose @ final, assets.lamp_head_centre(self.spec)[None])[0, 2]
        )

    def bodies(self) -> dict[str, Body]:
        self._require_reset()
        return {"table": self.table, "lamp": Body("lamp", self.body, "articulated")}

    def joints(self) -> np.ndarray:
        """(2,) current arm and head angles, rad."""
        return np.array(
            [
                pb.getJointState(self.body, j, physicsClientId=self.world.client)[0]
                for j in (ARM, HEAD)
            ]
        )

    def head_height(self) -> float:
        """Current height of the shade's centre above the table, metres."""
        m = link_matrix(self.world, self.body, HEAD)
        return float(motion.transform(m, assets.lamp_head_centre(self.spec)[None])[0, 2])

    def object_links(self) -> dict[str, list[motion.Link]]:
        parts = (("base", -1, assets.LAMP_RGBA), ("arm", ARM, assets.LAMP_RGBA),
                 ("head", HEAD, assets.LAMP_HEAD_RGBA))
        return {"lamp": motion.asset_links(self.spec, self.body, assets.lamp_meshes(self.spec), parts)}

    # ------------------------------------------------------------------ oracle

    def oracle_joints(self, s: float | np.ndarray) -> np.ndarray:
        """(..., 2) arm and head angles of the scripted motion at normalised time ``s``."""
        e = base.ease(s)[..., None]
        return self.start_joints + e * self.delta

    def oracle_flow(self, num_frames: int = 41, points_per_object: int = 2048) -> ObjectFlow:
        """The scripted lowering sampled on the lamp's surface (three links), plus the table."""
        self._require_reset()
        rng = np.random.default_rng([self.seed, 1])
        q = self.oracle_joints(base.frame_times(num_frames))
        fk = [assets.lamp_link_poses(self.spec, a, h) for a, h in q]
        poses = {
            name: np.stack([self.base_pose @ f[name] for f in fk])
            for name in ("base", "arm", "head")
        }
        lamp = motion.articulated_motion(self.object_links()["lamp"], poses, points_per_object, rng)
        return self.oracle_objects(
            {"lamp": lamp}, [lamp.trajectories], num_frames, points_per_object, rng
        )

    def play_oracle(
        self, num_frames: int = 41, on_step: Callable[[float], None] | None = None
    ) -> None:
        """Drive both joints kinematically along the oracle (no robot), then let go and settle."""
        self._require_reset()
        c = self.world.client

        def drive(s: float, ds_dt: float) -> None:
            q = self.oracle_joints(s)
            qd = base.central_rate(self.oracle_joints, s, ds_dt)
            for j in (ARM, HEAD):
                pb.resetJointState(self.body, j, float(q[j]), float(qd[j]), physicsClientId=c)

        base.drive_loop(self.world, num_frames, drive, on_step)
        for j, q in zip((ARM, HEAD), self.oracle_joints(1.0), strict=True):
            pb.resetJointState(self.body, j, float(q), 0.0, physicsClientId=c)
        settle(self.world, list(self.bodies().values()), max_steps=240)

    def reference_camera(self, width: int, height: int) -> Camera:
        return base.side_camera(
            self.base_pose[:3, 3] + [-0.1, 0.0, 0.15], width, height, offset=(-0.05, -0.6, 0.2)
        )

    # ------------------------------------------------------------------ success

    def articulated(self) -> Articulation:
        """The lamp's links at the reset pose and its measured joint (`sim.articulation`; the
        object is named "lamp" in the task's scan and flows)."""
        from sim import articulation

        return articulation.articulation("lamp", self.spec, self.base_pose, tuple(self.start_joints))

    def describe_flow(self, flow: ObjectFlow) -> str:
        """What the flow asks of the lamp: the head's turn (the arm's and head's joints turn
        about parallel axes, so the scripted motion turns the head by their sum) and the arm's
        share of it, how far the head's centre comes down as a fraction of the scripted
        motion's drop (what `evaluate` asks 60% of), the base's drift, how far the arm carries
        its joint from where the base has it (a grip following such an arm drags the lamp), and
        how far the links pass into each other (a head turned into its own arm)."""
        from sim import articulation

        if "lamp" not in flow.objects:
            return ""
        art = self.articulated()
        try:
            m = articulation.measure(flow.objects["lamp"].trajectories, art)
        except ValueError:
            return ""
        head = self.base_pose @ assets.lamp_link_poses(self.spec, *self.start_joints)["head"]
        centre = motion.transform(head, assets.lamp_head_centre(self.spec)[None])[0]
        lowered = centre[2] - motion.transform(np.asarray(m["moving_final"]), centre[None])[0, 2]
        drop = lowered / (self.start_height - self.final_height)
        arm, head_joint = np.degrees(self.delta)
        return (f"the flow turns the head {m['final_deg']:+.0f} deg, the arm {m['attached_final_deg']:+.0f} "
                f"(the scripted motion {arm + head_joint:+.0f}, the arm {arm:+.0f}), lowering the head's centre "
                f"{drop:.0%} of the scripted drop; its base drifting up to {m['base_drift_max_mm']:.0f} mm, "
                f"its arm carrying its joint up to {max(m['joint_gap_mm']):.0f} mm off the base; "
                f"its links {m['overlap_mm']:.0f} mm into each other at the end ({m['overlap_points']} points "
                f"5 mm or more)")

    def metric_info(self) -> base.Metric:
        cfg = self.config
        return base.Metric("head's height drop", "fraction of the scripted motion's drop", cfg.success_fraction,
                           below=False, also=f"base within {cfg.base_tolerance * 1000:.0f} mm of its start "
                           f"and tilted at most {cfg.upright_deg:g} deg")

    def evaluate(self) -> tuple[bool, float]:
        """(head lowered enough with the base upright and in place, fraction of the oracle's
        height drop achieved by the head). The verdict also says how far each joint turned
        against the oracle's motion (a grip on the arm turns the head's joint only as far as
        its friction lets it follow)."""
        self._require_reset()
        cfg = self.config
        drop = self.start_height - self.final_height
        fraction = float((self.start_height - self.head_height()) / drop)
        moved, tilt = base.base_shift(self.base_pose, base_matrix(self.world, self.body))
        lowered = fraction >= cfg.success_fraction
        stands = moved <= cfg.base_tolerance and tilt <= cfg.upright_deg
        arm, head = np.degrees(self.joints() - self.start_joints)
        scripted_arm, scripted_head = np.degrees(self.delta)
        self.verdict = (f"head lowered {fraction:.0%} of the oracle's drop (needs {cfg.success_fraction:.0%}); "
                        f"base moved {moved * 1000:.0f} mm (limit {cfg.base_tolerance * 1000:.0f}), "
                        f"tilted {tilt:.1f} deg (limit {cfg.upright_deg:g}); the arm's joint turned {arm:+.0f} deg, "
                        f"the head's {head:+.0f} (the oracle's {scripted_arm:+.0f}, {scripted_head:+.0f})")
        return lowered and stands, fraction
