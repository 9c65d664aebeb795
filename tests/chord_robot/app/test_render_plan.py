"""Plan videos: frame count and size, the flow's points following the plan, the point overlay."""

import imageio.v3 as iio
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from chord_robot.app.commands.render_plan import render_plan_cmd
from chord_robot.app.views.plan_render import overlay_points, plan_frames, render_plan
from chord_robot.app.views.playback import flow_phase, is_plan_store, plan_states, video_times
from chord_robot.camera import Camera
from chord_robot.errors import InputError
from chord_robot.flow import ObjectFlow, ObjectMotion
from chord_robot.plans import Plan

OFFSET = (0.0, 0.15, 0.05)
BOX_CENTER = (0.5, -0.05, 0.05)


def translation_flow(num_frames: int = 21, offset=OFFSET) -> ObjectFlow:
    """A 4 x 12 x 10 cm box ("object") on a table top ("table", static) translated rigidly by
    ``offset`` metres with an eased progress (built here rather than with planning.analytic,
    whose package import loads JAX)."""
    rng = np.random.default_rng(0)
    u = rng.uniform(-0.5, 0.5, (3000, 3))
    face = rng.integers(0, 3, 3000)
    u[np.arange(3000), face] = np.sign(u[np.arange(3000), face]) * 0.5  # on the surface
    box = u * np.array([0.04, 0.12, 0.10]) + np.asarray(BOX_CENTER)
    xx, yy = np.meshgrid(np.arange(0.1, 0.9, 0.01), np.arange(-0.45, 0.45, 0.01), indexing="ij")
    table = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], 1)
    s = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, num_frames))
    poses = np.repeat(np.eye(4)[None], num_frames, 0)
    poses[:, :3, 3] = s[:, None] * np.asarray(offset)
    still = np.repeat(np.eye(4)[None], num_frames, 0)
    objects = {
        "object": ObjectMotion.rigid(box, poses),
        "table": ObjectMotion.rigid(table, still, static=True),
    }
    return ObjectFlow(objects, "move the box", fps=10.0)


def make_plan(base=(1.0, 0, 0, 0, 0.0, 0.0, 0.0), steps=41, duration=2.0) -> Plan:
    """A Panda moving smoothly away from home over ``duration`` s; manipulate = steps 10..30 (21
    steps, aligned with a 21-frame flow); ee_poses by PyBullet's forward kinematics."""
    from sim import world as simworld

    t = np.linspace(0, duration, steps)
    s = 0.5 - 0.5 * np.cos(np.pi * t / duration)
    q0 = np.asarray(simworld.PANDA_HOME)
    joints = q0 + s[:, None] * np.array([-0.5, 0.5, 0.0, 0.5, 0.0, -0.2, 0.0])
    gripper = np.ones(steps)
    gripper[10:31] = 0.0
    world = simworld.create(direct=True, table=False)
    try:
        panda = simworld.load_panda(world, base_pose=np.asarray(base), joints=joints[0])
        ee = []
        for q in joints:
            simworld.set_panda_state(world, panda, q, 0.08)
            ee.append(simworld.tcp_pose(world, panda))
    finally:
        world.close()
    ee = np.array(ee)
    return Plan(
        "panda",
        simworld.PANDA_URDF_ID,
        "object",
        "grasp",
        ee[10],
        0.04,
        ee,
        joints,
        t,
        gripper,
        {"approach": [0, 10], "manipulate": [10, 30], "retreat": [30, 40]},
        duration / (steps - 1),
        joint_names=list(simworld.PANDA_ARM_JOINTS),
        robot_base=np.asarray(base),
    )


def test_video_times_cover_the_plan():
    np.testing.assert_allclose(video_times(2.0, 10), np.arange(21) / 10)
    t = video_times(2.05, 10)  # not a whole number of frames: the last one shows the end
    assert len(t) == 22 and t[-1] == 2.05 and t[-2] == 2.0
    assert len(video_times(2.0, 6.5)) == 14  # ceil(13) + 1


def test_flow_phase_aligns_the_manipulate_segment():
    p = make_plan()
    times = p.times[[0, 10, 20, 30, 40]]
    np.testing.assert_allclose(flow_phase(p, 21, times), [0, 0, 10, 20, 20], atol=1e-9)
    q, g = plan_states(p, p.times)
    np.testing.assert_allclose(q, p.joints, atol=1e-9)  # the curve passes through the steps
    np.testing.assert_allclose(g, p.gripper)


def test_render_plan_writes_the_requested_frames_and_size(tmp_path):
    p = make_plan()
    flow = translation_flow(num_frames=21, offset=OFFSET)
    n = render_plan(p, flow, tmp_path / "p.mp4", None, width=160, height=120, fps=7)
    frames = iio.imread(tmp_path / "p.mp4", index=None)
    assert n == len(frames) == 15  # ceil(2.0 s * 7 fps) + 1
    assert frames.shape[1:] == (120, 160, 3)
    assert (
        frames.std() > 10 and np.abs(frames[-1].astype(int) - frames[0]).mean() > 1
    )  # the scene moves


def test_render_without_a_flow_draws_the_robot_on_a_floor():
    frames, cam = plan_frames(make_plan(), None, None, 64, 48, fps=2)
    assert frames.shape == (5, 48, 64, 3) and (cam.width, cam.height) == (64, 48)
    assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 1  # the arm moved


def test_the_object_follows_the_flow_during_manipulate():
    """Top-down camera on the box, robot far away: the blue box's pixels sit where the camera
    projects the flow's points, at flow frame 0 before manipulate, 10 in its middle, 20 after."""
    p = make_plan(base=(1.0, 0, 0, 0, -1.5, 0.0, 0.0))
    flow = translation_flow(num_frames=21, offset=OFFSET)
    box = flow.objects["object"]
    cam = Camera.look_at([0.5, 0.02, 1.2], [0.5, 0.02, 0.0], 160, 120, fov_y_deg=30)
    frames, used = plan_frames(p, flow, cam, fps=10)
    assert used is cam and len(frames) == 21
    for frame, flow_frame in (
        (0, 0),
        (5, 0),
        (10, 10),
        (15, 20),
        (20, 20),
    ):  # t = 0, .5, 1, 1.5, 2 s
        img = frames[frame].astype(int)
        blue = (img[..., 2] - img[..., 0] > 80) & (img[..., 2] > 120)
        rows, cols = np.nonzero(blue)
        assert len(rows) > 30, frame
        uv, _ = cam.project(box.trajectories[flow_frame])
        # the top face dominates a top view; its projected centre is the cloud's to ~1 px
        np.testing.assert_allclose([cols.mean() + 0.5, rows.mean() + 0.5], uv.mean(0), atol=2.0)


def _overlay_reference(rgb, depth, cam, points, colors, world_radius, max_px, tol):
    """Plain loops: every point as a disc, nearest point per pixel, hidden behind ``depth``."""
    h, w = depth.shape
    best = np.full((h, w), np.inf)
    out = rgb.copy()
    uv, z = cam.project(points)
    for (u, v), zi, c in zip(uv, z, colors):
        if zi <= 1e-6:
            continue
        r = min(max(round(cam.fx * world_radius / zi), 0), max_px)
        for dy in range(-max_px, max_px + 1):
            for dx in range(-max_px, max_px + 1):
                d = np.hypot(dx, dy)
                col, row = int(np.floor(u)) + dx, int(np.floor(v)) + dy
                if d > r + 0.5 or not (0 <= col < w and 0 <= row < h):
                    continue
                if zi > depth[row, col] + tol or zi >= best[row, col]:
                    continue
                best[row, col] = zi
                shade = 1 - 0.35 * (d / max(r + 0.5, 1.0)) ** 2
                out[row, col] = np.clip(np.asarray(c) * shade * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def test_overlay_matches_the_reference_and_hides_points_behind_the_depth():
    rng = np.random.default_rng(0)
    cam = Camera.look_at([0.0, -1.0, 0.3], [0.0, 0.0, 0.0], 64, 48, fov_y_deg=40)
    points = rng.uniform([-0.3, -0.2, -0.2], [0.3, 0.3, 0.2], (200, 3))
    colors = rng.uniform(0, 1, (200, 3))
    rgb = np.full((48, 64, 3), 200, np.uint8)
    depth = np.full((48, 64), 10.0, np.float32)
    depth[:, :32] = 1.0  # a wall 1 m away over the left half; the points lie 0.8 to 1.3 m away
    args = (cam, points, colors, 0.01, 3, 0.002)
    got = overlay_points(rgb, depth, *args)
    np.testing.assert_array_equal(got, _overlay_reference(rgb, depth, *args))
    assert (got[:, 32:] != 200).any(axis=-1).sum() > 200  # points drawn on the open half
    depth[:, :32] = 0.5  # the wall in front of every point: nothing drawn over it
    got = overlay_points(rgb, depth, *args)
    assert (got[:, :32] == 200).all() and (got[:, 32:] != 200).any()


def test_is_plan_store(tmp_path):
    make_plan().save(tmp_path / "p.zarr")
    translation_flow(num_frames=5).save(tmp_path / "f.zarr")
    (tmp_path / "empty").mkdir()
    assert is_plan_store(tmp_path / "p.zarr")
    assert not is_plan_store(tmp_path / "f.zarr")
    assert not is_plan_store(tmp_path / "empty") and not is_plan_store(tmp_path / "missing.zarr")


def test_odd_size_and_foreign_flow_are_refused(tmp_path):
    p = make_plan()
    with pytest.raises(InputError, match="even"):
        render_plan(p, None, tmp_path / "p.mp4", None, width=161, height=120, fps=5)
    flow = translation_flow(num_frames=21)
    other = flow.__class__({"lamp": flow.objects["object"]}, "x")
    with pytest.raises(InputError, match="does not hold"):
        render_plan(p, other, tmp_path / "p.mp4", None, width=160, height=120, fps=5)
    assert not (tmp_path / "p.mp4").exists()


def test_render_plan_command(tmp_path):
    make_plan().save(tmp_path / "p.zarr")
    translation_flow(num_frames=21, offset=OFFSET).save(tmp_path / "f.zarr")
    app = typer.Typer()
    app.command()(render_plan_cmd)
    res = CliRunner().invoke(
        app,
        [
            str(tmp_path / "p.zarr"),
            "-o",
            str(tmp_path / "v.mp4"),
            "--flow",
            str(tmp_path / "f.zarr"),
            "--width",
            "96",
            "--height",
            "64",
            "--fps",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    frames = iio.imread(tmp_path / "v.mp4", index=None)
    assert frames.shape == (11, 64, 96, 3)
    assert "11 frames, 96x64" in res.output


def test_render_command_dispatches_a_plan_store(tmp_path):
    """`chord-robot render PLAN.zarr` renders the plan (the same command renders flows)."""
    import subprocess
    import sys

    import imageio.v3 as iio

    from tests.chord_robot.app.test_cli_sim import _plan

    _plan(tmp_path / "p.zarr")
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "render", str(tmp_path / "p.zarr"), "-o",
                          str(tmp_path / "p.mp4"), "--width", "160", "--height", "120", "--fps", "5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    frames = iio.imread(tmp_path / "p.mp4", index=None)
    assert frames.shape == (11, 120, 160, 3)  # a 2 s plan at 5 fps: ceil(2 * 5) + 1 frames
