"""The shipped prior's cameras keep a pick's plate in view: its clips frame the object's whole
path to the plate, so a distillation that framed the carried object alone would show the prior
a scene it never saw. Measured through `prepare_flow` and the run's own `SdsPrior`, on a tiny
prior trained (a few steps) on the pick sentences and put in the shipped prior's place; the
same `prepare_flow` gives the carried object its settings, which a sweep's ``adjust`` overrides."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("diffusers")


def _box(name: str, centre, size, static: bool = False):
    import trimesh

    from chord_robot.scene import SceneObject

    mesh = trimesh.creation.box(extents=size)
    return SceneObject(name, "mesh", np.asarray(mesh.vertices) + centre, faces=np.asarray(mesh.faces), static=static)


def test_a_picks_cameras_frame_the_plate_as_well(tmp_path, monkeypatch) -> None:
    import torch

    from chord_robot.app import flowrun
    from chord_robot.app.flowconfig import flow_config
    from chord_robot.scene import Scene
    from flowgen.model import build_model
    from flowgen.priors import shipped
    from flowgen.priors.train import quick, save_prior, train_prior
    from sim.clips import MOTIONS

    torch.set_num_threads(1)
    prompts = tuple(p for p, m in MOTIONS.items() if m.kind == "pick")
    videos = np.random.default_rng(0).integers(0, 256, (4, 9, 32, 32, 3), dtype=np.uint8)
    trained = train_prior(videos, np.arange(4) % 2, prompts, replace(quick(), vae_steps=1, steps=1))
    root = save_prior(trained, tmp_path / "prior").resolve()
    monkeypatch.setattr(shipped, "MODEL_DIRS", (root,))  # this tiny pick prior is the shipped one

    objects = {"table": _box("table", (0.5, 0.0, -0.01), (0.8, 0.9, 0.02), static=True),
               "banana": _box("banana", (0.48, -0.2, 0.02), (0.15, 0.04, 0.04)),
               "plate": _box("plate", (0.54, 0.16, 0.01), (0.22, 0.22, 0.02)),
               "mug": _box("mug", (0.2, 0.3, 0.05), (0.08, 0.08, 0.1))}
    scene = Scene(objects, "desk.ply")
    config = replace(flow_config("cpu", "wan", size=(32, 32), frames=9, mesh_fit=False), num_gaussians=200,
                     num_static_gaussians=100)
    inputs = flowrun.prepare_flow(scene, config=config, task="put the banana on the plate", model=root, allow_cpu=True)
    assert inputs.moving == "banana" and inputs.framed == ("plate",)
    assert any("framing plate" in n for n in inputs.notes)
    rigid = replace(flow_config("cpu", "wan", size=(32, 32), frames=9, mesh_fit=False, rigid_parts=True),
                    num_gaussians=200, num_static_gaussians=100)  # the shipped preset's rigid parts
    carried = flowrun.prepare_flow(scene, config=rigid, task="put the banana on the plate", model=root, allow_cpu=True)
    assert rigid.weights.motion == 3.0
    assert carried.config.free_parts and carried.config.weights.motion == 0  # a carried object (`free_object`)
    held = flowrun.prepare_flow(scene, config=rigid, task="put the banana on the plate", model=root, allow_cpu=True,
                                adjust=lambda c: replace(c, weights=replace(c.weights, motion=3.0)))
    assert held.config.free_parts and held.config.weights.motion == 3.0  # a sweep's setting wins over it
    assert held.fingerprint != carried.fingerprint

    model = build_model(inputs.scene, inputs.config)
    targets = flowrun._prior(inputs, model, "put the banana on the plate", None).targets
    low, high = targets.min(0), targets.max(0)
    for name in ("banana", "plate"):  # both in the box the cameras frame, the mug not
        centre = objects[name].points.mean(0)
        assert np.all(centre > low) and np.all(centre < high), name
    assert not np.all(objects["mug"].points.mean(0) < high)
    assert high[1] - low[1] > 0.45  # from the banana's far end to the plate's

    assert json.loads(inputs.fingerprint)["framed"] == ["plate"]  # a checkpoint framed otherwise is not resumed
    off = flowrun.prepare_flow(scene, config=config, task="take the banana off the plate", model=root, allow_cpu=True)
    assert off.framed == ("plate",)
