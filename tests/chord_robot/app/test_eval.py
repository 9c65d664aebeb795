"""The simulated evaluation end to end (oracle flows): one trial of every task of the paper
suite succeeds, results.json has the documented shape, and a trial run again with the same
seed gives the same result."""

from __future__ import annotations

import json
import math
from dataclasses import astuple, replace

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
        assert set(entry) == {"successes", "ci95", "trials"}
        assert entry["successes"] == 1
        lo, hi = entry["ci95"]
        assert 0.0 <= lo < hi == 1.0
        (trial,) = entry["trials"]
        assert set(trial) == {"seed", "success", "failure_stage", "metric", "times"}
        assert trial["seed"] == config.seed and trial["success"] is True
        assert trial["failure_stage"] is None or trial["failure_stage"] in STAGES
        assert all(isinstance(v, float) for v in trial["times"].values())


@pytest.mark.parametrize("task", ("fold-fabric", "close-laptop"))
def test_the_same_seed_gives_the_same_trial(evaluation, task):
    # a soft body and a push: planning, contacts and the cloth all replay exactly
    config, results, _ = evaluation
    again = run_trial(task, config.seed, config.flow_source, config.num_frames)
    assert astuple(replace(again, times={})) == astuple(replace(results[task][0], times={}))


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
        flow = run.flow
        assert task.lid_angle() == pytest.approx(start, abs=1e-6)  # the task is back at its reset state
    finally:
        world.close()
    assert set(flow.objects) == {"table", "laptop"} and flow.objects["table"].static
    assert flow.num_frames == 5 and flow.prior == "video" and flow.task == task.text
    assert flow.fps == pytest.approx(10.0 * 4 / 8)  # 5 flow frames over the 9-frame, 0.8 s clip
    assert run.iterations >= 8 and math.isfinite(run.final_loss)
    assert {p.name for p in (tmp_path / "in").iterdir()} >= {"scan.ply", "scan.labels.json", "video.mp4",
                                                              "camera.json", "background.png"}
