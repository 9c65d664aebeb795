"""Inputs of the ``video`` flow source: a task writes a labelled, coloured scan whose colours are
the ones the sim renders, a video of its oracle motion with the camera JSON, and a background
image without the objects."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from chord_robot.app.scenes import load_scene
from chord_robot.camera import load_cameras
from sim.tasks import make
from sim.tasks.flow_inputs import write_flow_inputs
from sim.world import World


@pytest.mark.parametrize(("name", "obj", "patches"), [("close-laptop", "laptop", 20), ("fold-fabric", "cloth", 10)])
def test_flow_inputs(world: World, asset_root: str, tmp_path, name, obj, patches):
    task = make(name, world, asset_root)
    task.reset(3)
    start = task.evaluate()[1]
    files = write_flow_inputs(task, tmp_path, num_frames=9, width=160, height=120)
    assert task.evaluate()[1] == pytest.approx(start, abs=1e-6)  # back at its reset state

    scene = load_scene(files.scan)
    assert list(scene.objects) == ["table", obj]
    assert scene.objects["table"].static and not scene.objects[obj].static
    scanned_object = scene.objects[obj]
    assert len(np.unique(np.round(scanned_object.colors, 2), axis=0)) >= patches  # laptop: 2 links x 10

    video = iio.imread(files.video)
    assert video.shape == (9, 120, 160, 3)
    background = iio.imread(files.background)
    (camera,) = load_cameras(files.camera)
    assert (camera.width, camera.height) == (160, 120)
    changed = np.abs(video[0].astype(int) - background.astype(int)).sum(-1) > 30  # the object's pixels
    assert 0.03 < changed.mean() < 0.6
    assert (np.abs(video[-1].astype(int) - video[0].astype(int)).sum(-1) > 30).mean() > 0.02  # it moves

    # The scan's colours are what the sim renders: projected into frame 0, the colour of each
    # visible scan vertex has the chromaticity of its pixel (shading scales all channels alike).
    uv, depth = camera.project(scanned_object.points)
    px = np.floor(uv).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < 160) & (px[:, 1] >= 0) & (px[:, 1] < 120) & (depth > 0)
    px, colours = px[inside], scanned_object.colors[inside]
    on_object = changed[px[:, 1], px[:, 0]]
    rendered = video[0][px[on_object, 1], px[on_object, 0]].astype(float) / 255
    scanned = colours[on_object]
    def chroma(c: np.ndarray) -> np.ndarray:
        return c / np.maximum(c.sum(-1, keepdims=True), 1e-6)

    close = np.abs(chroma(rendered) - chroma(scanned)).max(-1) < 0.06
    assert on_object.sum() > 100 and close.mean() > 0.6, close.mean()
