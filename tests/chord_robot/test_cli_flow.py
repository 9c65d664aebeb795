"""`chord-robot flow` and `chord-robot render` through the command line: a small run, and bad
input -> exit 2 with one line and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chord_robot import synth
from chord_robot.flow import ObjectFlow
from tests.flowgen.hinge_video import default_camera, render_clip

# Runs chord_robot.cli.main, registering the flow and render commands if cli.py does not yet.
_LAUNCH = (
    "import sys; from chord_robot import cli; "
    "from chord_robot.commands import flow, render; "
    "names = {c.name for c in cli.app.registered_commands}; "
    "'flow' in names or cli.app.command('flow')(flow.flow); "
    "'render' in names or cli.app.command('render')(render.render); "
    "cli.main(sys.argv[1:])"
)


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-c", _LAUNCH, *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    box = synth.hinged_box(resolution=0.02, patches=6)
    scan = synth.write_hinged_box_scan(out, box)
    c = render_clip(box, out, default_camera(96, 72), frames=9)
    return scan, c


def _one_line_error(res, *fragments):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_flow_writes_every_object_and_render_makes_a_video(clip, tmp_path):
    scan, c = clip
    out = tmp_path / "flow.zarr"
    res = run("flow", "--scan", scan, "--task", "open the lid", "--video", c.video, "--camera", c.camera,
              "--background", c.background, "--frames", 5, "--iters", 4, "-o", out)
    assert res.returncode == 0, res.stderr
    flow = ObjectFlow.load(out)
    assert flow.num_frames == 5 and flow.prior == "video" and flow.task == "open the lid"
    assert set(flow.objects) == {"table", "box"}
    table, box = flow.objects["table"], flow.objects["box"]
    assert table.static and not box.static
    assert np.array_equal(table.trajectories, np.broadcast_to(table.points, table.trajectories.shape))
    assert box.colors is not None and box.colors.shape == (len(box.points), 3)
    assert flow.config["num_frames"] == 5 and flow.config["iterations"] == 4
    assert not (tmp_path / "flow.zarr.ckpt").exists()
    assert "wrote" in res.stdout

    video = tmp_path / "flow.mp4"
    res = run("render", out, "-o", video, "--camera", c.camera)
    assert res.returncode == 0, res.stderr
    import imageio.v3 as iio

    frames = iio.imread(video, index=None)
    assert frames.shape == (5, 72, 96, 3)
    assert frames[0].std() > 10  # the box and table are visible, not a blank image


def _bad_camera(path: Path, camera: Path) -> Path:
    data = json.loads(camera.read_text())
    data["world_from_camera"] = (np.asarray(data["world_from_camera"]) @ np.diag([2.0, 2.0, 2.0, 1.0])).tolist()
    path.write_text(json.dumps(data))
    return path


def _static_scan(path: Path) -> Path:
    box = synth.hinged_box(resolution=0.05, patches=2)
    scan = synth.write_hinged_box_scan(path, box)
    (path / "scan.labels.json").write_text(json.dumps({"0": "table", "1": "counter"}))
    return scan


def _squashed_video(path: Path, video: Path) -> Path:
    import imageio.v3 as iio

    frames = iio.imread(video, index=None)[:, :56]
    np.save(path, frames)
    return path


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("size", ["sizes do not fit", "96x56"]),
        ("frames", ["has 9 frames but the run needs 12", "--frames"]),
        ("camera", ["not a rigid transform"]),
        ("static", ["no movable object", "counter, table"]),
        ("pairs", ["2 --video but 1 --camera"]),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(clip, tmp_path, case, fragments):
    scan, c = clip
    video, camera, extra = c.video, c.camera, ["--frames", 5]
    if case == "size":
        video = _squashed_video(tmp_path / "squashed.npy", c.video)
    elif case == "frames":
        extra = ["--frames", 12]
    elif case == "camera":
        camera = _bad_camera(tmp_path / "bad.json", c.camera)
    elif case == "static":
        scan = _static_scan(tmp_path / "static")
    elif case == "pairs":
        extra += ["--video", c.video]
    out = tmp_path / "flow.zarr"
    res = run("flow", "--scan", scan, "--task", "open", "--video", video, "--camera", camera, *extra, "-o", out)
    _one_line_error(res, *fragments)
    assert not out.exists() and not (tmp_path / "flow.zarr.ckpt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("flow")) == []


def test_render_refuses_what_is_not_a_flow(tmp_path):
    res = run("render", tmp_path / "missing.zarr", "-o", tmp_path / "out.mp4")
    assert res.returncode == 2 and res.stderr.startswith("error: ")
    assert not (tmp_path / "out.mp4").exists()
