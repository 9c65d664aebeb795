"""`chord-robot flow` and `chord-robot render` through the command line: a small run, and bad
input -> exit 2 with one line and nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chord_robot import synth
from chord_robot.flow import ObjectFlow
from flowgen.config import RIGID_PARTS_ATTACH, RIGID_PARTS_WEIGHT
from tests.flowgen.hinge_video import default_camera, render_clip

_LAUNCH = "import sys; from chord_robot.app import cli; cli.main(sys.argv[1:])"
"""The CLI entry point in a fresh interpreter (what the `chord-robot` script runs)."""


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
    # the box only: with a background image behind the video the table is never rendered, so not fitted
    assert res.stdout.count("Gaussians fitted to 16 mesh renders") == 1 and "box: Gaussians fitted" in res.stdout

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


# -- the wan prior (Wan 2.2 SDS) with a tiny random model saved by save_pretrained -------------
# In-process through chord_robot.app.cli.main (the entry point), so torch and diffusers are
# imported once; the model is the shared tiny builder's, its vocabulary holding the task.

TASK = "open the lid"


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run `chord-robot ARGS` in this process: (exit code, stdout, stderr)."""
    import os

    from chord_robot.app.cli import main

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def wan_inputs(tmp_path_factory):
    pytest.importorskip("diffusers")
    from tests.flowgen.priors.wan_models import build_tiny_wan

    out = tmp_path_factory.mktemp("wan-flow")
    box = synth.hinged_box(resolution=0.03, patches=4)
    scan = synth.write_hinged_box_scan(out, box)
    return scan, build_tiny_wan(out / "model", "i2v-a14b", TASK)


def _wan_args(scan, model, out, *extra):
    return ("flow", "--scan", scan, "--task", TASK, "--prior", "wan", "--model", model, "--frames", 9,
            "--size", "32x16", "-o", out, *extra)


def test_wan_flow_runs_end_to_end_and_moves_the_fenwick_stores(wan_inputs, tmp_path, capsys):
    scan, model = wan_inputs
    out = tmp_path / "flow.zarr"
    code, stdout, err = cli(capsys, *_wan_args(scan, model, out, "--iters", 2, "--allow-cpu"))
    assert code == 0, err
    flow = ObjectFlow.load(out)
    assert flow.prior == "wan" and flow.task == TASK and flow.num_frames == 9 and flow.fps == 16.0
    assert flow.config["render_size"] == [32, 16] and flow.config["wan"]["variant"] == "i2v-a14b"
    table, box = flow.objects["table"], flow.objects["box"]
    assert table.static and np.array_equal(table.trajectories, np.broadcast_to(table.points, table.trajectories.shape))
    assert np.array_equal(box.trajectories[0], box.points)
    # at rest every regulariser's gradient is zero: what moved the stores is Wan's SDS gradient
    assert box.displacement[1:].max() > 1e-3
    text = " ".join(stdout.split())
    norms = re.search(r"deformation gradient norm: max ([\d.e+-]+), last ([\d.e+-]+) \((\d) of (\d)", text)
    assert norms and float(norms[1]) > 0 and float(norms[2]) > 0 and norms[3] == norms[4] == "2", text
    # tau 0.909 then 0.714 (shift 5): the experts switch exactly once, and the log says so
    assert "warning: no CUDA GPU" in text and "estimated at least" in text
    assert text.count("expert transformer loaded") == 1 and text.count("expert transformer_2 loaded") == 1
    assert "released transformer (only the active expert is resident) at iteration 1" in text
    assert not (tmp_path / "flow.zarr.ckpt").exists()


def test_wan_flow_continues_from_the_last_frame_of_a_previous_flow(wan_inputs, tmp_path, capsys):
    from chord_robot.app.scenes import load_scene
    from chord_robot.flow import ObjectMotion

    scan, model = wan_inputs
    scene = load_scene(scan)
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[1, 0, 3], poses[2, 0, 3] = 0.02, 0.05  # the box slides 5 cm along x
    previous = ObjectFlow({name: ObjectMotion.rigid(obj.points, poses if not obj.static else np.tile(np.eye(4), (3, 1, 1)),
                                                    static=obj.static) for name, obj in scene.objects.items()},
                          "push the box", 10.0, "oracle", {})
    previous.save(tmp_path / "previous.zarr")
    out = tmp_path / "next.zarr"
    code, stdout, err = cli(capsys, *_wan_args(scan, model, out, "--iters", 1, "--allow-cpu",
                                               "--continue-from", tmp_path / "previous.zarr"))
    assert code == 0, err
    assert "continuing from frame 2 of" in " ".join(stdout.split())
    flow = ObjectFlow.load(out)
    box, table = flow.objects["box"], flow.objects["table"]
    lo, hi = scene.objects["box"].bounds
    moved_lo, moved_hi = box.points.min(0), box.points.max(0)  # frame 0 = the previous flow's end
    assert np.allclose(moved_lo, lo + [0.05, 0, 0], atol=4e-3) and np.allclose(moved_hi, hi + [0.05, 0, 0], atol=4e-3)
    t_lo, t_hi = scene.objects["table"].bounds
    assert np.allclose(table.points.min(0), t_lo, atol=4e-3) and np.allclose(table.points.max(0), t_hi, atol=4e-3)

    other = ObjectFlow({"lamp": previous.objects["box"]}, "x", 10.0, "oracle", {})
    other.save(tmp_path / "other.zarr")
    code, _, err = cli(capsys, *_wan_args(scan, model, tmp_path / "bad.zarr", "--iters", 1, "--allow-cpu",
                                          "--continue-from", tmp_path / "other.zarr"))
    assert code == 2 and err.startswith("error: ") and "made from another scene" in err
    assert not (tmp_path / "bad.zarr").exists()


def test_wan_flow_ablation_options_reach_the_prior_and_the_stores(wan_inputs, tmp_path, capsys):
    scan, model = wan_inputs
    out = tmp_path / "flow.zarr"
    code, stdout, err = cli(capsys, *_wan_args(scan, model, out, "--iters", 2, "--allow-cpu",
                                               "--tau-schedule", "uniform", "--store", "per-frame", "--rigid-parts"))
    assert code == 0, err
    flow = ObjectFlow.load(out)
    assert flow.config["wan"]["tau_schedule"] == "uniform" and flow.config["deformation_store"] == "per-frame"
    weights = flow.config["weights"]
    assert weights["rigid"] == RIGID_PARTS_WEIGHT and weights["attach"] == RIGID_PARTS_ATTACH
    assert flow.config["part_motion"] is True
    assert weights["acceleration"] > 0  # the cpu preset of the wan prior
    assert "tau uniform in [0.02, 0.98]" in " ".join(stdout.split())
    assert flow.objects["box"].displacement[1:].max() > 1e-3  # the per-frame rows moved
    for extra, message in ((("--tau-schedule", "random"), "unknown --tau-schedule 'random'; one of annealed, uniform"),
                           (("--store", "tree"), "unknown --store 'tree'; one of fenwick, per-frame")):
        code, _, err = cli(capsys, *_wan_args(scan, model, tmp_path / "bad.zarr", "--allow-cpu", *extra))
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "bad.zarr").exists()


@pytest.mark.skipif("__import__('torch').cuda.is_available()", reason="the refusal is for machines without CUDA")
def test_wan_flow_without_a_gpu_asks_for_allow_cpu(wan_inputs, tmp_path, capsys):
    scan, model = wan_inputs
    out = tmp_path / "flow.zarr"
    code, _, err = cli(capsys, *_wan_args(scan, model, out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "no CUDA GPU" in err and "estimated at least" in err and "--allow-cpu" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_wan_flow_device_choice_is_checked(wan_inputs, tmp_path, capsys):
    scan, model = wan_inputs
    out = tmp_path / "flow.zarr"
    code, _, err = cli(capsys, *_wan_args(scan, model, out, "--allow-cpu", "--device", "tpu"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown --device 'tpu'; one of auto, cpu, cuda" in err
    if not __import__("torch").cuda.is_available():
        code, _, err = cli(capsys, *_wan_args(scan, model, out, "--allow-cpu", "--device", "cuda"))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--device cuda but torch sees no CUDA GPU" in err
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["nowhere is not a directory", "transformer_2/", "Wan-AI/Wan2.2-I2V-A14B-Diffusers"]),
    ("size", ["multiples of 16", "--size 48x16"]),
    ("frames", ["1 + 4k frames", "--frames 9"]),
    ("video", ["--video, --camera and --background guide the video prior"]),
])
def test_wan_flow_bad_input_exits_2_with_one_line(wan_inputs, tmp_path, capsys, case, fragments):
    scan, model = wan_inputs
    out = tmp_path / "flow.zarr"
    args = list(_wan_args(scan, model, out, "--allow-cpu"))
    if case == "missing":
        args[args.index(model)] = tmp_path / "nowhere"
    elif case == "size":
        args[args.index("32x16")] = "44x16"
    elif case == "frames":
        args[args.index(9)] = 8
    else:
        args += ["--video", scan, "--camera", scan]
    code, _, err = cli(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for f in fragments:
        assert f in err, err
    assert not out.exists()


@pytest.mark.slow
def test_a_flow_killed_at_random_points_resumes_to_the_same_flow(clip, tmp_path):
    """`flow` SIGKILLed three times at random moments after a checkpoint (every 20 of 120
    iterations here: at most 19 iterations lost a kill), then run to the end with --resume:
    the output store is never half-written and the flow equals an uninterrupted run's, bit for
    bit (a seed gives the same flow on every run)."""
    import signal
    import time

    import torch

    scan, c = clip
    args = ["flow", "--scan", scan, "--task", "open the lid", "--video", c.video, "--camera", c.camera,
            "--background", c.background, "--frames", 5, "--iters", 120]  # room for three kills
    ref = run(*args, "-o", tmp_path / "ref.zarr")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed.zarr"
    ckpt = out.with_name(out.name + ".ckpt")
    rng = np.random.default_rng(7)
    seen = [0]
    for kill in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, *map(str, args), "-o", str(out),
                                 *(["--resume"] if kill else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:  # a checkpoint past the last one
            if ckpt.exists():
                try:
                    it = torch.load(ckpt, weights_only=False)["state"]["iteration"]
                except Exception:  # noqa: BLE001 (being replaced this moment)
                    it = 0
                if it > seen[-1]:
                    break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()  # the flow is written atomically at the very end
        seen.append(torch.load(ckpt, weights_only=False)["state"]["iteration"])
        assert seen[-1] > seen[-2], seen
    done = run(*args, "-o", out, "--resume")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "resumed from" in said and f"at iteration {seen[-1]} of" in said, done.stdout
    assert not ckpt.exists()
    a, b = ObjectFlow.load(tmp_path / "ref.zarr"), ObjectFlow.load(out)
    for name in a.objects:
        assert np.array_equal(a.objects[name].trajectories, b.objects[name].trajectories), name
