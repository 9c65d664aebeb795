"""Flow overrides declared once: the table drives `flow_config` and the CLI's options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chord_robot.app.flowconfig import FIELD_OPTIONS, FLOW_OVERRIDES, flow_config
from chord_robot.errors import ConfigError
from flowgen.priors import shipped


def test_every_override_is_an_option_of_the_flow_command():
    out = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "flow", "--help"], capture_output=True,
                         text=True, check=True, env={"COLUMNS": "200", "PATH": ""})
    for o in FLOW_OVERRIDES:
        assert f"--{o.name}" in out.stdout, o.name
    assert "--no-mesh-fit" in out.stdout


def test_overrides_set_their_fields_and_keep_the_presets_shares():
    base = flow_config("cpu", "wan")
    config = flow_config("cpu", "wan", frames=9, iters=base.iterations // 2, seed=7, size="64x32",
                         tau_schedule="uniform", store="per-frame", rigid_parts=True, mesh_fit=False)
    assert (config.num_frames, config.seed, config.render_size) == (9, 7, (64, 32))
    assert config.iterations == base.iterations // 2
    assert config.split_iteration == round(base.split_iteration / 2)  # the preset's share of the run
    assert config.wan.tau_schedule == "uniform" and config.deformation_store == "per-frame"
    assert config.part_motion and not config.mesh_fit.enabled
    video = flow_config("cpu", "video", iters=100)
    assert video.appearance_iterations == max(1, round(flow_config().appearance_iterations * 100 / 400))
    assert flow_config("cpu", "wan", rigid_parts=False, mesh_fit=True) == base  # switches at their defaults


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"iters": 0}, "iterations", "--iters must be at least 1, got 0"),
    ({"frames": 1}, "num_frames", "--frames must be at least 2 (frame 0 is the scan's pose), got 1"),
    ({"store": "a{b}"}, "deformation_store", "unknown --store 'a{b}'; one of fenwick, per-frame"),
    ({"size": "3x"}, "render_size", "--size must be WIDTHxHEIGHT in pixels, e.g. 64x48, got '3x'"),
])
def test_errors_name_the_field_and_the_cli_rewords_them(overrides, field, message):
    with pytest.raises(ConfigError) as info:
        flow_config("cpu", "wan", **overrides)
    assert info.value.field == field
    assert info.value.named(FIELD_OPTIONS[field]) == message


def test_wan_only_settings_are_refused_for_the_video_prior():
    with pytest.raises(ConfigError) as info:
        flow_config("cpu", "video", tau_schedule="uniform")
    assert info.value.named(FIELD_OPTIONS[info.value.field]).startswith("--tau-schedule applies to the wan prior")


def test_the_shipped_preset_keeps_its_settings_under_the_clis_default_switches():
    # the CLI passes every switch at its default (--rigid-parts: False, --mesh-fit: True); that
    # is not a choice, so the preset's rigid parts stay (they were dropped before)
    cli_defaults = {"rigid_parts": False, "mesh_fit": True}
    config = flow_config("shipped", "wan", **cli_defaults)
    assert config.part_motion and config.weights.rigid > 0 and config.mesh_fit.enabled
    frames, height, width = shipped.clip_size()  # the prior's own size
    assert config.num_frames == frames and config.iterations == 300 and config.render_size == (width, height)
    assert not config.per_axis_control_scales and flow_config("cpu", "wan").per_axis_control_scales
    assert not flow_config("shipped", "wan", mesh_fit=False).mesh_fit.enabled  # a switch turned is kept


def test_the_shipped_preset_distils_at_the_shipped_priors_own_size(monkeypatch):
    """(frames, height, width) of its clips -> num_frames and render_size (width, height);
    without its weights the cpu preset's (loading the model then says they are missing)."""
    monkeypatch.setattr(shipped, "available", lambda root=shipped.MODEL_DIR: True)
    monkeypatch.setattr(shipped, "clip_size", lambda root=shipped.MODEL_DIR: (17, 48, 64))
    config = flow_config("shipped", "wan")
    assert config.num_frames == 17 and config.render_size == (64, 48)
    assert flow_config("shipped", "wan", size=(32, 32)).render_size == (32, 32)  # a given size wins
    monkeypatch.setattr(shipped, "available", lambda root=shipped.MODEL_DIR: False)
    cpu = flow_config("cpu", "wan")
    config = flow_config("shipped", "wan")
    assert (config.num_frames, config.render_size) == (cpu.num_frames, cpu.render_size)


def test_another_variant_keeps_the_presets_residual_space_and_blur():
    import dataclasses

    from chord_robot.app.flowconfig import _variant

    base = flow_config("cpu", "wan")
    config = dataclasses.replace(base, wan=dataclasses.replace(base.wan, sds_space="image", image_blur=(0.3, 0.1)))
    other = _variant(config, "ti2v-5b")
    assert other.wan.variant == "ti2v-5b" and other.wan.boundary_ratio is None
    assert (other.wan.sds_space, other.wan.image_blur) == ("image", (0.3, 0.1))


@pytest.mark.parametrize(("task", "model"), [
    ("put the banana on the plate", shipped.PICK_DIR), ("take the can off the dish", shipped.PICK_DIR),
    ("close the laptop", shipped.MODEL_DIR), ("tilt the lamp head down", shipped.MODEL_DIR),
    (None, shipped.MODEL_DIR),
    # both models read these; the object named first decides (reading the words once against
    # all six sentences took the first as the laptop's)
    ("lift the apple off the plate near the laptop", shipped.PICK_DIR),
    ("close the laptop and put the banana on the plate", shipped.MODEL_DIR),
    # one model reads these, though both families' nouns are named (the one pass refused the first)
    ("put the banana on the plate under the lamp", shipped.PICK_DIR),
    ("close the laptop next to the plate", shipped.MODEL_DIR), ("lower the lamp over the plate", shipped.MODEL_DIR),
])
def test_the_tasks_motion_chooses_the_shipped_model(task, model):
    from chord_robot.app.flowconfig import choose_prior

    choice = choose_prior(None, None, None, False, task=task)
    assert (choice.prior, choice.model, choice.preset) == ("wan", model, "shipped")
    assert str(model) in choice.why
    # given weights, a video or a prior are the user's: no routing
    assert choose_prior(None, "/w", None, False, cuda=False, task=task).model == "/w"
    assert choose_prior(None, None, None, True, task=task).prior == "video"
    assert choose_prior("wan", None, "cpu", False, task=task).model is None


def test_a_task_no_shipped_model_knows_is_refused_naming_every_motion():
    from chord_robot.app.flowconfig import choose_prior
    from chord_robot.errors import InputError

    with pytest.raises(InputError) as info:
        choose_prior(None, None, None, False, task="fold the towel in half")
    message = str(info.value)
    assert all(m in message for m in ("close a laptop lid", "lower a lamp's head", "on a plate", "Wan 2.2"))


def test_each_shipped_model_has_its_own_preset(monkeypatch, tmp_path):
    """The pick model distils in pixels with the carried object's turn held (SHIPPED_SETTINGS);
    the first model keeps the latent residual; each at its own clip size, 300 iterations."""
    first = flow_config("shipped", "wan")
    pick = flow_config("shipped", "wan", model=shipped.PICK_DIR)
    assert (pick.wan.sds_space, pick.wan.grad_scale, pick.weights.turn) == ("image", 10.0, 30000.0)
    assert (first.wan.sds_space, first.weights.turn) == ("latent", 0.0)
    assert pick.iterations == 300 and pick.part_motion and not pick.per_axis_control_scales
    (tmp_path / "weights").symlink_to(shipped.PICK_DIR)  # the path as given need not end in its name
    assert flow_config("shipped", "wan", model=tmp_path / "weights") == pick
    sizes = {shipped.MODEL_DIR: (9, 32, 32), shipped.PICK_DIR: (17, 48, 64)}  # the two differ here
    monkeypatch.setattr(shipped, "clip_size", lambda root=shipped.MODEL_DIR: sizes[root])
    assert flow_config("shipped", "wan", model=shipped.PICK_DIR).render_size == (64, 48)
    assert flow_config("shipped", "wan", model=shipped.PICK_DIR).num_frames == 17
    assert flow_config("shipped", "wan").render_size == (32, 32)
    assert flow_config("shipped", "wan", model=shipped.PICK_DIR, iters=40).iterations == 40  # overrides win
    assert flow_config("cpu", "wan", model=shipped.PICK_DIR) == flow_config("cpu", "wan")  # other presets ignore it


def test_a_prior_train_prior_made_distils_like_a_shipped_one(tmp_path):
    """A user's own `train-prior` weights (``--model DIR``) are CPU-sized: the shipped preset at
    their clips' size, not the cpu preset sized for Wan 2.2; a shipped model's own settings stay
    its own."""
    import shutil

    from chord_robot.app.flowconfig import choose_prior

    own = tmp_path / "my-prior"
    own.mkdir()
    for name in ("model_index.json", "train_log.json"):
        shutil.copy(shipped.PICK_DIR / name, own / name)
    assert shipped.trained(own) and not shipped.is_shipped(own)
    choice = choose_prior(None, str(own), None, False, cuda=True, task="put the banana on the plate")
    assert (choice.model, choice.preset) == (str(own), "shipped") and "train-prior" in choice.why
    assert choose_prior(None, str(own), None, False, cuda=False).preset == "shipped"  # a CPU as a GPU
    config = flow_config(choice.preset, "wan", model=own)
    assert (config.num_frames, config.render_size) == (9, (32, 32))
    assert config.wan.sds_space == "latent"  # the pick model's SHIPPED_SETTINGS are not a user's model's
    assert choose_prior(None, str(own), "cpu", False).preset == "cpu"  # a given preset wins
    (own / "train_log.json").unlink()  # other Wan weights: the paper's preset on a GPU, cpu without
    assert choose_prior(None, str(own), None, False, cuda=True).preset == "paper"
    assert choose_prior(None, str(own), None, False, cuda=False).preset == "cpu"


def test_replace_field_sets_a_nested_field_and_names_a_missing_one():
    from chord_robot.app.flowconfig import replace_field

    config = replace_field(flow_config("cpu", "wan"), "weights.sink", 5.0)
    assert config.weights.sink == 5.0 and config.weights.motion == flow_config("cpu", "wan").weights.motion
    with pytest.raises(KeyError, match="weights.sinks"):
        replace_field(config, "weights.sinks", 1.0)


class _Prepared(Exception):
    """Raised by a stand-in for `prepare_flow` once it has the run's config (no distillation)."""


def test_the_callers_distil_a_pick_with_the_pick_models_preset(monkeypatch, tmp_path):
    """`api.generate_flow` (flow, plan, batch) and the evaluation's chord source pass the chosen
    shipped model on to `flow_config`: a pick runs with the pick model and its settings; the
    video-baseline source samples its video from the pick model."""
    from chord_robot.app import api, flowrun, taskflows
    from chord_robot.scene import Scene, SceneObject
    from flowgen.priors import train_checks
    from sim import world as simworld
    from sim.tasks import make

    seen = []

    def prepare(scan, *, config, model=None, **kwargs):
        seen.append((model, config.wan.sds_space, config.weights.turn))
        raise _Prepared

    def sample(model, first, prompts, **kwargs):
        seen.append((model, prompts, kwargs["num_frames"]))
        raise _Prepared

    monkeypatch.setattr(flowrun, "prepare_flow", prepare)
    monkeypatch.setattr(taskflows, "prepare_flow", prepare)
    monkeypatch.setattr(train_checks, "sample_videos", sample)
    box = np.random.default_rng(0).uniform(0, 0.1, (20, 3))
    scene = Scene({n: SceneObject(n, "points", box, static=n == "table") for n in ("table", "banana", "plate")},
                  "scan.ply")
    for task in ("put the banana on the plate", "close the laptop"):
        with pytest.raises(_Prepared):
            api.generate_flow(scene, task)
    world = simworld.create(direct=True)
    try:
        trial = make("pick-banana", world)
        trial.reset(100)
        with pytest.raises(_Prepared):
            taskflows.flow_from_task_words(trial, inputs_dir=tmp_path)
        with pytest.raises(_Prepared):
            taskflows.flow_from_task_baseline(trial, inputs_dir=tmp_path / "baseline")
    finally:
        world.close()
    assert seen == [(shipped.PICK_DIR, "image", 30000.0), (shipped.MODEL_DIR, "latent", 0.0),
                    (shipped.PICK_DIR, "image", 30000.0),
                    (shipped.PICK_DIR, ["the object is put on the plate"], shipped.clip_size(shipped.PICK_DIR)[0])]
