"""scripts/prior_distill.py: the held-out scenes it writes carry what its measurement needs, and
the measurement of a task's oracle flow of such a scene gives the true turn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chord_robot.scene import Scene
from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("prior_distill")


def test_scenes_and_measurement_of_an_oracle_flow(script, tmp_path, monkeypatch) -> None:
    from chord_robot.app.scenes import load_scene
    from sim import world as sim_world
    from sim.tasks.close_laptop import CloseLaptop, CloseLaptopConfig

    monkeypatch.setattr(script, "SCENES", {"laptop-open": script.SCENES["laptop-open"]})
    info = script.write_scenes(tmp_path)
    assert json.loads((tmp_path / "scenes.json").read_text()) == json.loads(json.dumps(info))
    scene: Scene = load_scene(tmp_path / "laptop-open.ply")
    assert "laptop" in scene.objects and scene.movable()
    assert 50.0 <= info["laptop-open"]["start_deg"] <= 55.0

    world = sim_world.create()
    try:  # the same task and seed: its oracle closes the lid
        task = CloseLaptop(world, CloseLaptopConfig(open_deg=(50.0, 55.0)))
        task.reset(9002)
        flow = task.oracle_flow(num_frames=9, points_per_object=1200)
        truth = math.degrees(task.oracle_angle(1.0) - task.lid_angle())
    finally:
        world.close()
    flow.save(tmp_path / "oracle.zarr")
    m = script.measure(tmp_path, "laptop-open", tmp_path / "oracle.zarr")
    assert m["final_deg"] == pytest.approx(truth, abs=1.0) and truth < -30
    assert m["base_drift_max_mm"] < 0.5
    assert np.all(np.diff(m["angle_deg"]) <= 0.5)

    import imageio.v3 as iio

    script.write_close_up(tmp_path / "oracle.zarr", tmp_path / "oracle.mp4", tmp_path, "laptop-open", (160, 120))
    video = iio.imread(tmp_path / "oracle.mp4")
    assert video.shape == (9, 120, 320, 3)
    assert np.abs(video[0].astype(int) - video[-1].astype(int)).mean() > 1.0  # the lid moved on screen
