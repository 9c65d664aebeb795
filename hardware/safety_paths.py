"""Where the arm's body goes: the workspace box and the table plane on its named points and the
collision geometry of its moving links (`hardware.collision`), and the path a controller that
re-plans what it is sent will run (`check_executed`). Part of the safety layer
(`hardware.safety` lists every check)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from chord_robot.trajectory import JointTrajectory, evaluation_times
from hardware.arm import ExecutedPath
from hardware.collision import collision_geometry
from hardware.kinematics import Kinematics
from hardware.robots import RobotSpec
from hardware.safety import Check, moment
from hardware.safety_config import SafetyConfig


def _checked_bodies(spec: RobotSpec, kin: Kinematics) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(label, link, (K, 3) points in the link frame, (K,) radii): the robot's named points and
    the collision geometry of its moving links (`hardware.collision`)."""
    bodies = [(p.name, p.link, np.asarray([p.offset], float), np.zeros(1)) for p in spec.points]
    for g in collision_geometry(kin):
        bodies.append((f"{g.link} (collision geometry)", g.link, g.points, g.radius))
    return bodies


def check_cartesian(
    trajectories: list[JointTrajectory], spec: RobotSpec, kin: Kinematics, config: SafetyConfig
) -> list[Check]:
    """Workspace box and table plane for the robot's checked points and its links' collision
    geometry (base frame)."""
    samples = []
    for traj in trajectories:
        t = evaluation_times(traj, config.check_dt)
        samples.append((traj, t, traj.curve()(t)))
    return _cartesian(samples, spec, kin, config)


def _cartesian(
    samples: list[tuple[JointTrajectory, np.ndarray, np.ndarray]], spec: RobotSpec, kin: Kinematics,
    config: SafetyConfig,
) -> list[Check]:
    """`check_cartesian` on (trajectory, (S,) local times, (S, dof) joints) samples."""
    lo, hi = np.asarray(config.workspace_lower, float), np.asarray(config.workspace_upper, float)
    bodies = _checked_bodies(spec, kin)
    links = sorted({link for _, link, _, _ in bodies})
    ws_margin, ws_detail = np.inf, "no motion"
    tb_margin, tb_detail = np.inf, "no motion"
    axes = "xyz"
    for traj, t, q in samples:
        poses = kin.link_poses(q, links)
        for label, link, points, radius in bodies:
            pose = poses[link]
            x = points @ np.swapaxes(pose[:, :3, :3], -1, -2) + pose[:, None, :3, 3]  # (S, K, 3)
            reach = radius[None, :, None]
            margins = np.concatenate([x - reach - lo, hi - x - reach], axis=2)  # (S, K, 6)
            s, _, a = np.unravel_index(np.argmin(margins), margins.shape)
            if margins[s].min() < ws_margin:
                ws_margin = float(margins[s].min())
                face = f"{'lower' if a < 3 else 'upper'} {axes[a % 3]} = {(lo if a < 3 else hi)[a % 3]:+.3f} m"
                ws_detail = (
                    f"the {label} comes {abs(ws_margin):.3f} m {'inside' if ws_margin >= 0 else 'outside'} "
                    f"the workspace face {face} at {moment(traj, t[s])}"
                )
            z = (x[..., 2] - radius).min(1) - config.table_z  # (S,)
            s = int(np.argmin(z))
            if z[s] < tb_margin:
                tb_margin = float(z[s])
                tb_detail = (
                    f"the {label} is {tb_margin:+.3f} m from the table plane z = {config.table_z:+.3f} m "
                    f"at {moment(traj, t[s])} (clearance {config.table_clearance:.3f} m)"
                )
    if tb_margin < config.table_clearance:
        tb_detail = tb_detail.replace(" is ", " goes to ", 1) + ": below the table"
    ws_ok = ws_margin >= 0
    tb_ok = tb_margin >= config.table_clearance
    return [
        Check(
            "workspace", ws_ok, ws_margin if np.isfinite(ws_margin) else 0.0, 0.0, "m", ws_detail
        ),
        Check(
            "table",
            tb_ok,
            tb_margin if np.isfinite(tb_margin) else 0.0,
            config.table_clearance,
            "m",
            tb_detail,
        ),
    ]


def check_executed(
    paths: list[tuple[JointTrajectory, ExecutedPath]], spec: RobotSpec, kin: Kinematics, config: SafetyConfig
) -> list[Check]:
    """The paths the controller will run (`ExecutedPath`) against their checked trajectories:
    distance from the checked curve, the published velocity, acceleration and jerk limits (times
    ``limit_fraction``), the workspace and the table - so a controller that re-plans what it is
    sent (franky) runs nothing the checks did not see."""
    from scipy.spatial import cKDTree

    limits = spec.limits.arrays()
    worst, where, stretch = 0.0, "no motion", 0.0
    ratio, ratio_detail = 0.0, "no motion"
    sampled = []
    for traj, path in paths:
        t = np.arange(0.0, traj.duration, 1e-4)
        distance, _ = cKDTree(traj.curve()(np.append(t, traj.duration))).query(path.positions)
        k = int(np.argmax(distance))
        if distance[k] > worst:
            worst, where = float(distance[k]), moment(traj, min(path.times[k], traj.duration))
        stretch = max(stretch, path.times[-1] - traj.duration)
        values = {
            "velocity": path.velocities,
            "acceleration": path.accelerations,
            "jerk": np.diff(path.accelerations, axis=0) / np.diff(path.times)[:, None],
        }
        for kind, v in values.items():
            r = np.abs(v) / (config.limit_fraction * limits[kind])
            s_, j = np.unravel_index(np.argmax(r), r.shape)
            if r[s_, j] > ratio:
                ratio = float(r[s_, j])
                ratio_detail = (
                    f"{spec.joint_names[j]} {kind} at {100 * r[s_, j] * config.limit_fraction:.0f}% of its "
                    f"published limit (allowed {100 * config.limit_fraction:.0f}%) at "
                    f"{moment(traj, min(path.times[s_], traj.duration))}"
                )
        sampled.append((traj, np.minimum(path.times, traj.duration), path.positions))
    ok_path = worst <= config.path_tolerance
    path_detail = (
        f"the controller's path stays within {1000 * worst:.3f} mrad of the checked curve "
        f"(farthest at {where}; it runs up to {1000 * stretch:.0f} ms longer)"
    )
    cartesian = [replace(c, name=f"executed {c.name}") for c in _cartesian(sampled, spec, kin, config)]
    return [
        Check("executed path", ok_path, worst, config.path_tolerance, "rad", path_detail),
        Check("executed dynamics", ratio <= 1.0 + 1e-9, 100 * ratio * config.limit_fraction,
              100 * config.limit_fraction, "%",
              f"peak: {ratio_detail}" + ("" if ratio <= 1.0 + 1e-9 else
              "; the controller re-plans at its own limits times its dynamics factor (franky: set "
              "[franka] dynamics_factor to the limit fraction)")),
        *cartesian,
    ]
