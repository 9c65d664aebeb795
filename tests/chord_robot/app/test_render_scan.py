"""`chord-robot render --scan SCAN --camera auto`: the first frame a video generator starts
from, chosen from the scan alone, and the camera JSON a generated video is lifted with."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np

from chord_robot import synth
from chord_robot.app.scenes import load_scene
from chord_robot.camera import load_cameras
from chord_robot.flow import ObjectFlow


def run(*args):
    return subprocess.run([sys.executable, "-m", "chord_robot.app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_render_scan_frames_every_movable_object_and_its_video_lifts(tmp_path):
    scan = synth.write_scan(tmp_path / "scan", "mesh-ply-labelled", synth.tabletop(0))
    first = tmp_path / "first.png"
    res = run("render", "--scan", scan, "--camera", "auto", "-o", first, "--width", 96, "--height", 72)
    assert res.returncode == 0, res.stderr + res.stdout
    image = iio.imread(first)
    (camera,) = load_cameras(tmp_path / "first.json")
    assert image.shape == (72, 96, 3) and (camera.width, camera.height) == (96, 72)
    scene = load_scene(scan)
    assert len(scene.movable()) == 3
    spans = []
    for name, obj in scene.movable().items():
        uv, depth = camera.project(obj.surface_points(500, np.random.default_rng(0)))
        assert (depth > 0).all(), name
        assert (uv >= 0).all() and (uv[:, 0] <= 96).all() and (uv[:, 1] <= 72).all(), name  # all in view
        spans.append(uv)
    uv = np.concatenate(spans)
    assert np.ptp(uv[:, 0]) > 0.35 * 96  # 0.39 here: framed as the wan prior frames its views
    # each object shows in its scan colour: the image is not the backdrop or one flat colour
    assert image.reshape(-1, 3).std(0).mean() > 20
    # any video made from it lifts with its camera and no background image (the static scene is
    # rendered from the scan instead): here a still video, 5 frames
    video = tmp_path / "v.mp4"
    iio.imwrite(video, np.repeat(image[None], 5, 0), fps=10, macro_block_size=8)
    res = run("flow", "--scan", scan, "--task", "hold still", "--prior", "video", "--video", video,
              "--camera", tmp_path / "first.json", "--frames", 5, "--iters", 6, "-o", tmp_path / "f.zarr")
    assert res.returncode == 0, res.stderr + res.stdout
    flow = ObjectFlow.load(tmp_path / "f.zarr")
    assert flow.num_frames == 5 and flow.prior == "video"
    assert json.loads((tmp_path / "first.json").read_text())["width"] == 96


def test_render_scan_refuses_a_video_name_and_a_store_together(tmp_path):
    scan = synth.write_scan(tmp_path / "scan", "mesh-ply-labelled", synth.tabletop(0))
    res = run("render", "--scan", scan, "-o", tmp_path / "first.mp4")
    assert res.returncode == 2 and "must be an image" in res.stderr
    res = run("render", tmp_path / "f.zarr", "--scan", scan, "-o", tmp_path / "first.png")
    assert res.returncode == 2 and "not both" in res.stderr
    assert not (tmp_path / "first.png").exists() and not (tmp_path / "first.json").exists()
