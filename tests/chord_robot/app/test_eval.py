"""The simulated evaluation end to end (oracle flows): one trial of every task of the paper
suite succeeds, results.json has the documented shape, and a trial run again with the same
seed gives the same result."""

from __future__ import annotations

import json
import math
import re
from dataclasses import astuple, replace

import numpy as np
import pytest

from chord_robot.app.evaluate import EvalConfig, run_suite, run_trial
from chord_robot.app.results import STAGES, write_results

# 20-60 s: four trials, and JAX compiling the planner when its disk cache is cold
pytestmark = pytest.mark.slow

TASKS = ("close-laptop", "lower-lamp", "pick-banana", "fold-fabric")


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    config = EvalConfig(tasks=TASKS, flow_source="oracle", trials=1, seed=0, record=False)
    results = run_suite(config, out)
    write_results(out, config.suite, config.flow_source, results, wall_time=1.0)
    return config, results, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("task", TASKS)
def test_every_task_succeeds_with_its_oracle_flow(evaluation, task):
    _, results, _ = evaluation
    (trial,) = results[task]
    assert trial.success, (task, trial)
    assert trial.failure_stage is None and math.isfinite(trial.metric)
    assert set(trial.times) == {"reset", "flow", "plan", "execute"}


def test_results_json_has_the_documented_shape(evaluation):
    config, _, data = evaluation
    assert data["suite"] == "paper" and data["flow_source"] == "oracle"
    assert list(data["tasks"]) == list(TASKS)
    for entry in data["tasks"].values():
        assert set(entry) == {"successes", "ci95", "metric", "trials"}
        assert set(entry["metric"]) == {"name", "unit", "success"} and entry["metric"]["unit"]
        assert entry["successes"] == 1
        lo, hi = entry["ci95"]
        assert 0.0 <= lo < hi == 1.0
        (trial,) = entry["trials"]
        assert set(trial) == {"seed", "success", "failure_stage", "failure", "verdict", "flow_note", "metric", "threshold",
                              "times"}
        assert trial["failure"] is None and trial["verdict"] and isinstance(trial["threshold"], float)
        assert trial["seed"] == config.seed and trial["success"] is True
        assert trial["failure_stage"] is None or trial["failure_stage"] in STAGES
        assert all(isinstance(v, float) for v in trial["times"].values())


def test_the_same_seed_gives_the_same_trial(evaluation, tmp_path):
    # a soft body and a push: planning, contacts and the cloth all replay exactly (in another
    # worker process, set up as every executor sets up its workers)
    config, results, _ = evaluation
    tasks = ("fold-fabric", "close-laptop")
    again = run_suite(replace(config, tasks=tasks), tmp_path)
    for task in tasks:
        assert astuple(replace(again[task][0], times={}, metric_info=None)) == astuple(
            replace(results[task][0], times={}, metric_info=None))


@pytest.mark.slow
def test_video_flow_source_fits_the_tasks_rendered_video(tmp_path):
    # ~15-30 s: a tiny fit (5 frames, 8 iterations) of the close-laptop task's video
    from chord_robot.app.taskflows import flow_from_task_video
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:
        task = make("close-laptop", world)
        task.reset(1)
        start = task.lid_angle()
        run = flow_from_task_video(task, 9, frames=5, iterations=8, inputs_dir=tmp_path / "in")
        privileged = flow_from_task_video(task, 9, frames=5, iterations=2, inputs_dir=tmp_path / "priv",
                                          privileged=True)
        flow = run.flow
        assert task.lid_angle() == pytest.approx(start, abs=1e-6)  # the task is back at its reset state
    finally:
        world.close()
    assert set(flow.objects) == {"table", "laptop"} and flow.objects["table"].static
    assert flow.num_frames == 5 and flow.prior == "video" and flow.task == task.text
    assert flow.fps == pytest.approx(10.0 * 4 / 8)  # 5 flow frames over the 9-frame, 0.8 s clip
    assert run.iterations >= 8 and math.isfinite(run.final_loss)
    # as a user's video: the camera from the scan alone, no background image; the privileged
    # variant has the simulator's object-free background and a camera framed from the motion
    assert {p.name for p in (tmp_path / "in").iterdir()} == {"scan.ply", "scan.labels.json", "video.mp4",
                                                              "camera.json"}
    assert (tmp_path / "priv" / "background.png").is_file() and privileged.flow.num_frames == 5
    from chord_robot.camera import load_cameras

    (user,) = load_cameras(tmp_path / "in" / "camera.json")
    (framed,) = load_cameras(tmp_path / "priv" / "camera.json")
    assert np.linalg.norm(user.position - framed.position) > 0.05


def test_a_lamp_held_just_below_its_head_is_lowered_by_its_arm():
    """lower-lamp seed 100: the fingers close on the arm's tip, whose midpoint is nearer the
    head's points than the arm's. The plan carries what the fingers touch (the arm, whose link
    the grip holds), so the lamp turns about its joints instead of being dragged (it was: 123
    mm, the head lowered 168% of the scripted drop)."""
    trial = run_trial("lower-lamp", 100, "oracle", 41)
    moved = re.search(r"base moved (\d+) mm", trial.verdict or "")
    assert trial.success and moved and int(moved.group(1)) <= 8, trial.verdict  # 4 mm
    assert 0.85 <= trial.metric <= 1.0, trial.verdict  # 93% of the scripted drop


def test_a_lamp_lifted_from_video_is_held_where_its_flow_moves_as_one():
    """lower-lamp seed 101 from its video (~50 s). With the scan's lamp merged into one part
    from the post to the neck, the lifted flow bent the arm smoothly into the head, and held at
    its tip the hand turned 42 degrees with an arm that turns 28 and dragged the lamp 94 mm; the
    planner grips where the flow moves rigidly (`PlanConfig.bend_weight`). Split at its joints
    (`flowgen.sdf`), the fitted arm is one rigid part turning as scripted (+28 degrees), which
    the grip executes (+26), but it carries its joint 10 mm off the base, and the grip drags the
    base 19.5-20 mm: the task's limit, so success is not asserted (7 mm merged)."""
    trial = run_trial("lower-lamp", 101, "video", 41)
    assert "the arm +28 (the scripted motion +50, the arm +28)" in trial.flow_note, trial.flow_note
    moved = re.search(r"base moved (\d+) mm", trial.verdict or "")
    turned = re.search(r"the arm's joint turned ([+-]\d+) deg", trial.verdict or "")
    assert moved and int(moved.group(1)) <= 22, trial.verdict  # 20 mm
    assert turned and 24 <= int(turned.group(1)) <= 30, trial.verdict  # +26
    assert 0.8 <= trial.metric <= 0.9, trial.verdict  # 85% of the scripted drop


def test_a_laptop_flow_closing_onto_its_base_is_not_held_by_its_lid():
    """close-laptop seed 102 from its words (the shipped prior, ~60 s): the flow closes the lid
    to 10 degrees with its hinge a centimetre off. Gripped at the lid's edge, the lower finger
    met the base before the lid closed and the grip shoved the laptop 41 mm; the planner now
    refuses grips whose hand would meet the object's still part (`PlanConfig.still_clearance`)
    and pushes the lid shut."""
    trial = run_trial("close-laptop", 102, "chord", 41)
    moved = re.search(r"base moved (\d+) mm", trial.verdict or "")
    assert trial.success and moved and int(moved.group(1)) <= 5, trial.verdict  # 0 mm
    assert trial.metric < 1.0, trial.verdict  # shut: 0 degrees


def test_an_execution_error_is_a_failed_trial_with_its_message(monkeypatch):
    import sim.execute

    def broken(*args, **kwargs):
        raise RuntimeError("joint 4 torque sensor lost")

    monkeypatch.setattr(sim.execute, "execute", broken)
    trial = run_trial("close-laptop", 0, "oracle", 21)
    assert not trial.success and trial.failure_stage == "execute"
    assert trial.failure == "execute: RuntimeError: joint 4 torque sensor lost"
    assert trial.metric > 95.0 and "lid at" in trial.verdict  # the lid as the arm left it: open
    assert set(trial.times) == {"reset", "flow", "plan", "execute"}


def test_the_chord_source_refuses_a_task_its_prior_does_not_know_as_a_failed_trial(monkeypatch):
    from flowgen.priors import shipped

    monkeypatch.setattr(shipped, "MODEL_DIRS", (shipped.MODEL_DIR,))  # shipped: lids and lamps only
    trial = run_trial("pick-banana", 0, "chord", 21)
    assert not trial.success and trial.failure_stage == "flow"
    assert "put the banana on the plate" in trial.failure and "shipped" in trial.failure
    assert math.isnan(trial.metric)


@pytest.fixture
def sealed_laptop(monkeypatch):
    """The close-laptop task reset at seed 100 whose scripted motion, reference video, camera
    and oracle playback raise when read: what only the simulator knows."""
    from sim import world as simworld
    from sim.tasks import make
    from sim.tasks.close_laptop import CloseLaptop

    def leak(*args, **kwargs):
        raise AssertionError("a flow source read privileged task data")

    world = simworld.create(direct=True)
    try:
        task = make("close-laptop", world)
        task.reset(100)
        for name in ("oracle_flow", "render_reference_video", "reference_camera", "play_oracle"):
            monkeypatch.setattr(CloseLaptop, name, leak)
        yield task
    finally:
        world.close()


def test_the_chord_source_distils_the_tasks_words_from_its_scan(tmp_path, sealed_laptop):
    """A reduced run (9 frames, 40 iterations): the flow comes from the shipped prior and the
    task's words only: the scripted motion, reference camera and background are never read.
    ``adjust`` changes the preset after the overrides (here 40 -> 30 iterations)."""
    import dataclasses

    from chord_robot.app import taskflows

    task = sealed_laptop
    run = taskflows.flow_from_task_words(task, frames=9, iterations=40, inputs_dir=tmp_path / "in",
                                         adjust=lambda c: dataclasses.replace(c, iterations=30))
    flow = run.flow
    assert run.iterations == 30
    assert flow.prior == "wan" and flow.task == task.text and flow.num_frames == 9
    assert set(flow.moving()) == {"laptop"} and flow.objects["table"].static
    assert {p.name for p in (tmp_path / "in").iterdir()} == {"scan.ply", "scan.labels.json"}


def test_eval_runs_several_sources_into_one_comparison(tmp_path):
    """oracle and chord on fold-fabric, one trial (seed 100): one folder per source, the paper's
    table with both columns, each source's funnel, the bar chart (no shipped model folds cloth:
    the chord trial fails at its flow)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "eval", "-o", str(tmp_path),
                          "--tasks", "fold-fabric", "--trials", "1", "--seed", "100", "--flow-source", "oracle,chord",
                          "--no-record"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    oracle = json.loads((tmp_path / "oracle" / "results.json").read_text())
    chord = json.loads((tmp_path / "chord" / "results.json").read_text())
    assert oracle["tasks"]["fold-fabric"]["successes"] == 1 and chord["tasks"]["fold-fabric"]["successes"] == 0
    assert chord["tasks"]["fold-fabric"]["trials"][0]["failure_stage"] == "flow"
    text = (tmp_path / "comparison.md").read_text()
    assert "| task | oracle | chord |" in text
    assert "| fold-fabric | 1/1 [0.21, 1.00] | 0/1 [0.00, 0.79] |" in text
    assert "## Failure funnel: oracle" in text and "## Failure funnel: chord" in text
    assert "| fold-fabric | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |" in text  # chord: every trial lost at flow
    assert (tmp_path / "comparison.png").stat().st_size > 5000


def test_eval_refuses_the_wan_source_with_the_chord_spelling(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "eval", "-o", str(tmp_path / "e"),
                          "--flow-source", "oracle,wan"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--flow-source chord --model" in res.stderr
    assert not (tmp_path / "e").exists()


def test_the_video_baseline_samples_a_video_from_the_scan_and_lifts_it(tmp_path, sealed_laptop):
    """The paper's baseline at reduced size (10 lifting iterations): first frame and camera from
    the scan, a 9-frame video from the shipped prior through diffusers' pipeline, the static
    scene rendered as the background; nothing scripted is read."""
    import imageio.v3 as iio

    from chord_robot.app import taskflows
    from chord_robot.camera import load_cameras

    run = taskflows.flow_from_task_baseline(sealed_laptop, iterations=10, steps=8, inputs_dir=tmp_path)
    video = iio.imread(tmp_path / "video.mp4", index=None)
    first, background = iio.imread(tmp_path / "first.png"), iio.imread(tmp_path / "background.png")
    (camera,) = load_cameras(tmp_path / "first.json")
    assert video.shape == (9, 32, 32, 3) and first.shape == background.shape == (32, 32, 3)
    assert (camera.width, camera.height) == (32, 32)
    assert np.abs(first.astype(int) - background).max() > 60  # the laptop is in the first frame only
    assert np.abs(video[-1].astype(int) - video[0]).mean() > 2  # the sampled video moves
    flow = run.flow
    assert flow.prior == "video" and flow.num_frames == 9 and set(flow.moving()) == {"laptop"}


def test_a_push_whose_approach_would_open_the_lid_is_tried_last():
    """close-laptop seed 305, the scripted motion (~15 s): the best-ranked push's free approach
    passed 8 mm into the lid's points (within `PlanConfig.approach_overlap`), ran into the lid
    in simulation, and the laptop ended 64 mm from where it stood. Approaches that overlap the
    scene at all are now tried after every clean one (of a base pose)."""
    trial = run_trial("close-laptop", 305, "oracle", 41)
    moved = re.search(r"base moved (\d+) mm", trial.verdict or "")
    assert trial.success and moved and int(moved.group(1)) <= 5, trial.verdict
