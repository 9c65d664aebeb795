"""The world: camera agreement between Camera.project and TinyRenderer, the table, settling,
the Panda, MP4 writing."""

from __future__ import annotations

import numpy as np
import pybullet as pb

from chord_robot.camera import Camera
from sim.render import render, write_mp4
from sim.world import (
    PANDA_HOME,
    Body,
    World,
    load_panda,
    panda_joints,
    panda_opening,
    reset,
    settle,
    tcp_pose,
)


def _sphere(world: World, centre, radius: float) -> int:
    vis = pb.createVisualShape(
        pb.GEOM_SPHERE, radius=radius, rgbaColor=[1, 0, 0, 1], physicsClientId=world.client
    )
    return pb.createMultiBody(0.0, -1, vis, basePosition=list(centre), physicsClientId=world.client)


def test_rendered_points_land_where_camera_project_says(world: World) -> None:
    reset(world)
    centres = np.array([[0.5, 0.1, 0.1], [0.3, -0.2, 0.25], [0.7, 0.25, 0.05], [0.45, -0.05, 0.3]])
    radius = 0.02
    ids = [_sphere(world, c, radius) for c in centres]
    base = Camera.look_at(np.array([1.3, -0.6, 0.7]), np.array([0.5, 0.0, 0.1]), 320, 240, 55.0)
    # off-centre principal point and unequal focals catch transposed or mirrored matrices
    cam = Camera(320, 240, base.fx * 1.1, base.fy * 0.9, 150.3, 112.8, base.world_from_camera)
    frame = render(world, cam)
    uv, depth = cam.project(centres)
    for i, body in enumerate(ids):
        rows, cols = np.nonzero(frame.segmentation == body)
        assert len(rows) > 20
        centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel centres at +0.5
        assert np.abs(centroid - uv[i]).max() < 0.25, (centroid, uv[i])
        # the nearest rendered depth is the sphere's front, about radius nearer than its centre
        assert abs(frame.depth[rows, cols].min() - (depth[i] - radius)) < 0.01
    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    assert frame.segmentation[0, 0] == -1  # sky above the table in the top-left corner


def test_table_top_is_z0_and_settle_is_bounded(world: World) -> None:
    table = reset(world)
    half = 0.03
    col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[half] * 3, physicsClientId=world.client)
    cube = pb.createMultiBody(
        0.2, col, basePosition=[0.5, 0.0, half + 0.05], physicsClientId=world.client
    )
    bodies = [table, Body("cube", cube, "rigid")]
    assert settle(world, bodies, max_steps=10) == 10  # still falling: stops at the bound
    steps = settle(world, bodies, max_steps=2000)
    assert steps < 2000
    z = pb.getBasePositionAndOrientation(cube, physicsClientId=world.client)[0][2]
    assert abs(z - half) < 2e-3


def test_panda_loads_at_home_and_holds(world: World) -> None:
    reset(world)
    panda = load_panda(world)
    world.step(240)
    assert np.abs(panda_joints(world, panda) - np.array(PANDA_HOME)).max() < 0.01
    assert abs(panda_opening(world, panda) - 0.08) < 2e-3
    pose = tcp_pose(world, panda)
    # home: TCP in front of the base, pointing down (z axis of the TCP along -z)
    assert 0.25 < pose[4] < 0.4 and abs(pose[5]) < 0.01 and 0.3 < pose[6] < 0.6
    x, y = pose[1], pose[2]
    tcp_z_axis_z = 1 - 2 * (x * x + y * y)
    assert tcp_z_axis_z < -0.99


def test_write_mp4_roundtrip(tmp_path) -> None:
    import imageio.v2 as imageio

    frames = np.zeros((6, 31, 41, 3), np.uint8)  # odd sizes get padded
    frames[:, :, :20] = 200
    path = tmp_path / "out.mp4"
    write_mp4(path, frames, fps=5)
    back = np.stack(list(imageio.get_reader(str(path), format="FFMPEG").iter_data()))
    assert back.shape == (6, 32, 42, 3)
    assert (
        abs(float(back[:, 5:25, 5:15].mean()) - 200) < 10
        and float(back[:, 5:25, 28:38].mean()) < 10
    )


def test_sim_imports_no_sibling_layer_or_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sim.world, sim.render, sim.execute, sim.assets, sim.scene, sim.tasks\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('planning', 'flowgen', 'hardware', 'torch', 'typer'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
