"""An interactive 3D viewer of a flow or a plan in the browser, with viser.

What it shows:

- every object's points, coloured by object (`plan_render.object_colors`), moving with the
  flow; static objects are added once, moving ones are updated when the time changes;
- flow trajectories: the paths of a few points per moving object as polylines, darker at the
  start and lighter at the end;
- for a plan: the grasp frame, the end-effector path (approach blue, manipulate orange,
  retreat green), the end-effector frame and the robot (its URDF, with meshes from
  pybullet_data) at the selected time, placed at the plan's ``robot_base``;
- a GUI panel: a "Frame" slider, the time in seconds, a "Play" checkbox that advances the
  slider at the playback rate (looping), and visibility toggles.

The time axis is the one `chord_robot.app.views.plan_render` renders videos on: a flow's own frames, or
for a plan ``video_times(duration, fps)`` with the flow (if given) aligned on the manipulate
segment. The server binds 127.0.0.1 by default: nothing is exposed to the network unless the
caller asks for another host.

Layer 2: viser and yourdfpy are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chord_robot.app.views.playback import (
    flow_phase,
    load_flow_or_plan,
    motion_at,
    object_colors,
    plan_states,
    subsample,
    video_times,
)
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow
from chord_robot.plans import SEGMENTS, Plan

SEGMENT_COLORS = {
    "approach": (40, 110, 220),
    "manipulate": (255, 140, 20),
    "retreat": (40, 170, 70),
}


@dataclass(frozen=True)
class ViewerConfig:
    """What the viewer draws and how fast it plays."""

    point_size: float = 0.006
    """Size of a drawn point, metres."""
    max_points_per_object: int = 30000
    """Objects with more points are shown through a fixed random subset of this size."""
    trajectories_per_object: int = 48
    """Number of point trajectories drawn per moving object."""
    fps: float | None = None
    """Playback rate in frames per second; None: the flow's, or 1 / dt for a plan."""
    seed: int = 0
    """Seed of the point subsets."""
    environment_map: bool = False
    """Light with viser's HDR environment map: nicer metal on a GPU, but prefiltering it takes
    about 10 s in a software-WebGL browser before anything shows. Off: a hemisphere light."""


@dataclass(frozen=True)
class Timeline:
    """The viewer's time axis.

    Attributes:
        times: (F,) seconds shown at each frame.
        phases: (F,) fractional flow frame at each frame (zeros without a flow).
        joints: (F, dof) plan joints, or None for a flow.
        gripper: (F,) plan gripper commands in [0, 1], or None.
        fps: playback rate, frames per second.
    """

    times: np.ndarray
    phases: np.ndarray
    joints: np.ndarray | None
    gripper: np.ndarray | None
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.times)


def timeline(flow: ObjectFlow | None, plan: Plan | None, fps: float | None = None) -> Timeline:
    """The frames a flow (alone) or a plan (with its flow, if any) is shown at."""
    if plan is None:
        assert flow is not None
        rate = fps or flow.fps
        t = np.arange(flow.num_frames, dtype=np.float64)
        return Timeline(t / flow.fps, t, None, None, float(rate))
    rate = float(fps or np.clip(1.0 / plan.dt, 1.0, 60.0))
    times = video_times(float(plan.times[-1]), rate)
    joints, gripper = plan_states(plan, times)
    phases = flow_phase(plan, flow.num_frames, times) if flow is not None else np.zeros(len(times))
    return Timeline(times, phases, joints, gripper, rate)


def robot_urdf(identifier: str):
    """Load a URDF with its visual meshes (yourdfpy), resolving ``package://`` against the
    URDF's directory, as pybullet_data's robots expect; nothing is fetched from the network."""
    import yourdfpy

    from chord_robot.robots import resolve_urdf

    path = resolve_urdf(identifier)
    if not path.is_file():
        raise InputError(f"robot URDF {identifier!r} not found (looked at {path})")

    def handler(fname: str) -> str:
        rel = fname.split("://", 1)[1] if "://" in fname else fname
        return str(rel if os.path.isabs(rel) else path.parent / rel)

    urdf = yourdfpy.URDF.load(
        path, build_scene_graph=True, load_meshes=True, filename_handler=handler
    )
    for mesh in urdf.scene.geometry.values():
        _matte(mesh)
    return urdf


def _matte(mesh) -> None:
    """Make a mesh's material a matte dielectric: OBJ materials and plain colours become glTF
    PBR with the default metallic = 1, which is black without an environment map."""
    import trimesh

    if getattr(mesh.visual, "kind", None) == "texture" and mesh.visual.material is not None:
        pbr = mesh.visual.material.to_pbr()
    else:
        colour = (
            np.asarray(mesh.visual.main_color, dtype=np.uint8)
            if mesh.visual.kind
            else np.array([200, 200, 200, 255], np.uint8)
        )
        pbr = trimesh.visual.material.PBRMaterial(baseColorFactor=colour)
        mesh.visual = trimesh.visual.TextureVisuals(material=pbr)
    pbr.metallicFactor, pbr.roughnessFactor = 0.0, 0.7
    mesh.visual.material = pbr


def _ee_pose_at(ee: np.ndarray, times: np.ndarray, t: float) -> np.ndarray:
    """(7,) wxyz_xyz pose at time t: position interpolated linearly, rotation of the nearest step."""
    pos = np.array([np.interp(t, times, ee[:, 4 + i]) for i in range(3)])
    k = int(np.argmin(np.abs(times - t)))
    return np.concatenate([ee[k, :4], pos])


def _trajectory_segments(
    traj: np.ndarray, colour: np.ndarray, count: int, rng: np.random.Generator
):
    """Line segments (M (T-1), 2, 3) and colours (M (T-1), 2, 3) uint8 of ``count`` point paths."""
    t, n, _ = traj.shape
    idx = rng.choice(n, min(count, n), replace=False)
    paths = traj[:, idx].transpose(1, 0, 2)  # (M, T, 3)
    seg = np.stack([paths[:, :-1], paths[:, 1:]], 2).reshape(-1, 2, 3)
    fade = np.linspace(0.45, 1.0, t)  # darker at the start
    shade = np.stack([fade[:-1], fade[1:]], 1)  # (T-1, 2)
    cols = np.broadcast_to(colour * shade[None, :, :, None], (len(idx), t - 1, 2, 3)).reshape(
        -1, 2, 3
    )
    return seg, (np.clip(cols, 0, 1) * 255).astype(np.uint8)


class Viewer:
    """A running viewer: a viser server, its scene and a playback thread.

    Attributes:
        server: the `viser.ViserServer`.
        url: where to open it.
        timeline: the frames it shows.
        clouds: object name -> its point cloud handle.
        urdf: the robot's `yourdfpy.URDF` (its ``cfg`` is the shown configuration), or None.
        robot: the `viser.extras.ViserUrdf` drawing it, or None.
    """

    def __init__(
        self,
        flow: ObjectFlow | None,
        plan: Plan | None,
        host: str = "127.0.0.1",
        port: int = 8080,
        config: ViewerConfig | None = None,
        title: str = "chord-robot",
    ) -> None:
        import viser

        if flow is None and plan is None:
            raise InputError("nothing to view: give a flow, a plan, or both")
        self.config = config or ViewerConfig()
        self.flow, self.plan = flow, plan
        self.timeline = timeline(flow, plan, self.config.fps)
        self.server = viser.ViserServer(host=host, port=port, label=title, verbose=False)
        self.url = f"http://{host}:{self.server.get_port()}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.clouds: dict[str, Any] = {}
        self.urdf = None
        self.robot = None
        self._moving: list[tuple[Any, np.ndarray]] = []  # (point cloud handle, (T, N, 3))
        self._trajectories: list[Any] = []  # line segment handles
        self._robot_cfg: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._num_actuated = 0
        self._ee = None
        try:
            with self.server.atomic():
                # the share button would tunnel the scene through viser's public relay
                self.server.gui.configure_theme(show_share_button=False)
                self._build_scene()
                self._build_gui()
                self.show(0)
        except BaseException:
            self.server.stop()
            raise
        self._player = threading.Thread(target=self._play_loop, name="viewer-playback", daemon=True)
        self._player.start()

    # ------------------------------------------------------------------ scene

    def _build_scene(self) -> None:
        scene, cfg = self.server.scene, self.config
        scene.set_up_direction("+z")
        if not cfg.environment_map:
            scene.configure_environment_map(None)
            scene.add_light_hemisphere(
                "/lights/sky",
                sky_color=(255, 255, 255),
                ground_color=(120, 120, 120),
                intensity=2.5,
            )
        rng = np.random.default_rng(cfg.seed)
        bounds = []
        if self.flow is not None:
            colours = object_colors(self.flow)
            for name in sorted(self.flow.objects):
                m = self.flow.objects[name]
                idx = subsample(m, cfg.max_points_per_object, rng)
                traj = m.trajectories[:, idx]
                moves = (not m.static) and float(np.abs(traj - traj[:1]).max()) > 1e-6
                handle = scene.add_point_cloud(
                    f"/flow/{name}/points",
                    traj[0],
                    colours[name],
                    point_size=cfg.point_size,
                    point_shape="circle",
                    precision="float32",
                )
                self.clouds[name] = handle
                bounds.append(traj[[0, -1]].reshape(-1, 3))
                if moves:
                    self._moving.append((handle, traj))
                    seg, cols = _trajectory_segments(
                        traj, colours[name], cfg.trajectories_per_object, rng
                    )
                    self._trajectories.append(
                        scene.add_line_segments(
                            f"/trajectories/{name}",
                            seg,
                            cols,
                            thickness=2.0,
                            thickness_units="screen",
                        )
                    )
        if self.plan is not None:
            self._build_plan(bounds)
        pts = np.concatenate(bounds)
        lo, hi = pts.min(0), pts.max(0)
        centre, extent = (lo + hi) / 2, float(np.max(hi - lo))
        size = max(1.5 * extent, 0.5)
        scene.add_grid(
            "/grid",
            width=size,
            height=size,
            position=(centre[0], centre[1], min(lo[2], 0.0)),
            cell_size=0.05,
            section_size=0.25,
        )
        from chord_robot.camera import frame_points

        fov = 45.0
        cam = frame_points(pts, 1200, 800, fov_y_deg=fov, margin=1.1)
        self.server.initial_camera.fov = np.deg2rad(fov)
        self.server.initial_camera.position = cam.position
        self.server.initial_camera.look_at = centre
        self.server.initial_camera.up = (0.0, 0.0, 1.0)

    def _build_plan(self, bounds: list[np.ndarray]) -> None:
        from viser.extras import ViserUrdf

        scene, plan = self.server.scene, self.plan
        assert plan is not None
        g = plan.grasp_pose
        scene.add_frame(
            "/plan/grasp", axes_length=0.08, axes_radius=0.004, wxyz=g[:4], position=g[4:]
        )
        scene.add_label(
            "/plan/grasp/label", f"grasp ({plan.mode}, {plan.grasp_width * 100:.1f} cm)"
        )
        ee = plan.ee_poses
        for name in SEGMENTS:
            a, b = plan.segments[name]
            if b > a:
                seg = np.stack([ee[a:b, 4:], ee[a + 1 : b + 1, 4:]], 1)
                scene.add_line_segments(
                    f"/plan/ee_path/{name}", seg, SEGMENT_COLORS[name], thickness=0.006
                )
        self._ee = scene.add_frame("/plan/ee", axes_length=0.05, axes_radius=0.003)
        bounds.append(ee[:, 4:])
        bounds.append(plan.robot_base[None, 4:] + np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.9]]))
        base = plan.robot_base
        scene.add_frame("/robot", show_axes=False, wxyz=base[:4], position=base[4:])
        self.urdf = robot_urdf(plan.robot_urdf)
        self.robot = ViserUrdf(self.server, self.urdf, root_node_name="/robot")
        names = list(self.robot.get_actuated_joint_names())
        limits = self.robot.get_actuated_joint_limits()
        arm_names = plan.joint_names or [n for n in names if "finger" not in n][: plan.dof]
        missing = [n for n in arm_names if n not in names]
        if missing or len(arm_names) != plan.dof:
            raise InputError(
                f"the plan's joints {arm_names} do not match {plan.robot_urdf}'s {names}"
            )
        arm_cols = np.array([names.index(n) for n in arm_names])
        finger_cols = np.array(
            [i for i, n in enumerate(names) if "finger" in n and n not in arm_names], int
        )
        finger_upper = np.array([limits[names[i]][1] or 0.0 for i in finger_cols])
        self._robot_cfg = (arm_cols, finger_cols, finger_upper)
        self._num_actuated = len(names)

    # ------------------------------------------------------------------ gui

    def _build_gui(self) -> None:
        gui, tl = self.server.gui, self.timeline
        what = []
        if self.flow is not None:
            what.append(
                f"flow **{self.flow.task}** ({self.flow.num_frames} frames, {self.flow.prior})"
            )
        if self.plan is not None:
            p = self.plan
            what.append(
                f"plan: {p.robot}, {p.mode} `{p.object}`, {p.num_steps} steps, {p.times[-1]:.1f} s"
            )
        gui.add_markdown("  \n".join(what))
        self.slider = gui.add_slider(
            "Frame", min=0, max=max(tl.num_frames - 1, 0), step=1, initial_value=0
        )
        self.time_box = gui.add_number("Time (s)", initial_value=0.0, disabled=True, step=0.01)
        self.play = gui.add_checkbox("Play", initial_value=False)
        self.show_traj = gui.add_checkbox("Trajectories", initial_value=True)
        self.slider.on_update(lambda _: self.show(int(self.slider.value)))

        @self.show_traj.on_update
        def _(_) -> None:
            for handle in self._trajectories:
                handle.visible = bool(self.show_traj.value)

        if self.robot is not None:
            show_robot = gui.add_checkbox("Robot", initial_value=True)

            @show_robot.on_update
            def _(_) -> None:
                self.robot.show_visual = bool(show_robot.value)

    # ------------------------------------------------------------------ time

    def show(self, frame: int) -> None:
        """Move everything to a frame of the timeline."""
        tl = self.timeline
        f = int(np.clip(frame, 0, tl.num_frames - 1))
        with self._lock:
            for handle, traj in self._moving:
                handle.points = motion_at(traj, tl.phases[f]).astype(np.float32)
            if self.plan is not None and self.robot is not None and self._robot_cfg is not None:
                arm_cols, finger_cols, finger_upper = self._robot_cfg
                q = np.zeros(self._num_actuated)
                q[arm_cols] = tl.joints[f]
                q[finger_cols] = tl.gripper[f] * finger_upper
                self.robot.update_cfg(q)
                pose = _ee_pose_at(self.plan.ee_poses, self.plan.times, float(tl.times[f]))
                self._ee.wxyz, self._ee.position = pose[:4], pose[4:]
            self.time_box.value = round(float(tl.times[f]), 3)

    def _play_loop(self) -> None:
        period = 1.0 / self.timeline.fps
        while not self._stop.wait(period):
            if self.play.value and self.timeline.num_frames > 1:
                self.slider.value = (int(self.slider.value) + 1) % self.timeline.num_frames

    def close(self) -> None:
        """Stop playback and the server."""
        self._stop.set()
        self._player.join(timeout=2.0)
        self.server.stop()


def open_viewer(
    path: str | os.PathLike[str],
    flow_path: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    config: ViewerConfig | None = None,
) -> Viewer:
    """Start a viewer on a FLOW.zarr or a PLAN.zarr (plus, for a plan, the flow it was made
    from); returns once the scene is served. viser moves to the next free port if ``port`` is
    taken: read `Viewer.url`."""
    item = load_flow_or_plan(path)
    if isinstance(item, ObjectFlow):
        if flow_path is not None:
            raise InputError("--flow goes with a PLAN.zarr; the path given is already a flow")
        return Viewer(item, None, host, port, config, title=f"chord-robot: {Path(path).name}")
    flow = ObjectFlow.load(flow_path) if flow_path is not None else None
    if flow is not None and item.object not in flow.objects:
        raise InputError(f"the plan manipulates {item.object!r}, which {flow_path} does not hold")
    return Viewer(flow, item, host, port, config, title=f"chord-robot: {Path(path).name}")
