"""scripts/chord_sweep.py: a trial from a flow cached in ``--flows``, planned with ``--plan`` settings."""

from __future__ import annotations

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("chord_sweep")


@pytest.mark.slow
def test_a_cached_flow_is_planned_with_the_settings_given(script, tmp_path, monkeypatch):
    import planning.search
    from planning import PlanConfig
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:  # the flows folder holds lower-lamp seed 100's scripted motion: the sweep reads it, distils nothing
        task = make("lower-lamp", world)
        task.reset(100)
        task.oracle_flow().save(tmp_path / "lower-lamp-100.zarr")
    finally:
        world.close()
    hinged, calls = planning.search.hinged, []

    def counted(motion, mask, carried, config=None):
        calls.append(config.enabled)
        return hinged(motion, mask, carried, config)

    monkeypatch.setattr(planning.search, "hinged", counted)
    row = script.one("lower-lamp", 100, [], True, ["hinge.enabled=true"], str(tmp_path))
    assert row["success"] and row["plan"] == ["hinge.enabled=true"], row
    assert "lowering the head's centre 100% of the scripted drop" in row["flow"], row["flow"]
    assert calls and all(calls)  # every grip was fitted with the hinge on
    assert script.planner_for([]) is None  # no settings: the evaluation's own planner
    with pytest.raises(SystemExit, match="no setting 'hinge.on'"):
        script.adjuster(["hinge.on=true"])(PlanConfig())


def test_the_video_source_reads_its_own_cached_flows(script, tmp_path):
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:  # the video source's cache holds the scripted motion, the chord source's a still lamp
        task = make("lower-lamp", world)
        task.reset(100)
        task.oracle_flow(num_frames=9).save(tmp_path / "video-lower-lamp-100.zarr")
        still = task.oracle_flow(num_frames=9)
        for motion in still.objects.values():
            motion.trajectories[:] = motion.trajectories[:1]
        still.save(tmp_path / "lower-lamp-100.zarr")
    finally:
        world.close()
    video = script.one("lower-lamp", 100, [], False, None, str(tmp_path), "video")
    chord = script.one("lower-lamp", 100, [], False, None, str(tmp_path))
    assert video["source"] == "video" and "source" not in chord
    assert "lowering the head's centre 100% of the scripted drop" in video["flow"], video
    assert "lowering the head's centre 0% of the scripted drop" in chord["flow"], chord
    with pytest.raises(SystemExit, match="not with --source video"):
        script.main(["lower-lamp", "100", "--source", "video", "--set", "iterations=10"])


def test_an_unknown_grip_is_refused_before_any_trial(script, tmp_path):
    with pytest.raises(SystemExit, match="unknown grip 'glue'"):
        script.main(["lower-lamp", "100", "--execute", "--exec", "grip=glue", "--flows", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # refused before the flows folder was touched


def test_settings_take_words_pairs_and_schedules_and_refuse_a_wrong_pair(script):
    from chord_robot.app.flowconfig import flow_config
    from flowgen.config import Decay

    config = flow_config("shipped", "wan")
    adjusted = script.adjuster(["wan.sds_space=image", "wan.image_blur=0.25:0.05", "weights.temporal=50:5",
                                "wan.grad_scale=10"])(config)
    assert adjusted.wan.sds_space == "image" and adjusted.wan.image_blur == (0.25, 0.05)
    assert adjusted.weights.temporal == Decay(50.0, 5.0) and adjusted.wan.grad_scale == 10.0
    assert config.wan.sds_space == "latent"  # the preset's own is untouched
    with pytest.raises(SystemExit, match="takes 2 numbers"):
        script.adjuster(["wan.image_blur=0.25"])(config)


def test_kept_flows_of_other_weights_or_settings_are_refused_before_any_run(script, tmp_path):
    """The flows folder's key holds the settings and the model: flows kept before the task's
    words chose the model (a list) or from other weights are not read as this run's; ``--model``
    is the chord source's only."""
    import json

    made = tmp_path / "settings.json"
    for held, argv in (([], []), ({"set": [], "model": None}, ["--model", "flowgen/priors/shipped/model"]),
                       ({"set": [], "model": None}, ["--set", "weights.sink=1e5"])):
        made.write_text(json.dumps(held))
        with pytest.raises(SystemExit, match="holds flows made with"):
            script.main(["pick-banana", "100", "--flows", str(tmp_path), *argv])
        assert json.loads(made.read_text()) == held and [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    with pytest.raises(SystemExit, match="a list: kept before"):
        made.write_text("[]")
        script.main(["pick-banana", "100", "--flows", str(tmp_path)])
    with pytest.raises(SystemExit, match="--model is the chord source's weights: not with --source video"):
        script.main(["pick-banana", "100", "--source", "video", "--model", "flowgen/priors/shipped/model"])
