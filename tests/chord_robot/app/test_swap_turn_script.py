"""scripts/swap_turn.py: a carried object's path and turn taken from different motions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("swap_turn")


def test_resampling_is_linear_between_the_nearest_frames():
    """`flowgen.priors.video_io.resample_time`, which the script resamples the scripted motion by."""
    import torch

    from flowgen.priors.video_io import resample_time

    frames = np.arange(41, dtype=np.float64)[:, None, None] ** 2 * np.ones((1, 2, 3))  # t^2
    at_seven = resample_time(torch.as_tensor(frames), 7).numpy()
    times = np.linspace(0, 40, 7)  # 0, 6.67, 13.3, ...
    lo = np.floor(times)
    want = lo**2 + (times - lo) * ((lo + 1) ** 2 - lo**2)
    assert at_seven[:, 0, 0] == pytest.approx(want, abs=1e-9)
    assert at_seven[1, 0, 0] != pytest.approx(times[1] ** 2, abs=0.1)  # linear, not the curve


def test_the_path_and_the_turn_come_from_the_motion_asked(script, tmp_path):
    """A flow that carries the banana as scripted but turns it a further 0 -> 120 degrees about
    the vertical and 5 cm higher: keeping its path takes the scripted turn back, keeping its turn
    takes the scripted path back with the 120 degrees, keeping neither is the scripted motion;
    the plate, which the scripted motion leaves in place, stays the flow's; and the results read
    from the folder as chord_sweep reads them."""
    from scipy.spatial.transform import Rotation

    from chord_robot.flow import ObjectFlow
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:
        task = make("pick-banana", world)
        task.reset(100)
        at_nine = task.oracle_flow(num_frames=41).objects["banana"].trajectories.astype(np.float64)[::5]  # frames 0, 5, .. 40
        extra = Rotation.from_euler("z", np.linspace(0.0, 120.0, 9)[:, None], degrees=True).as_matrix()
        centre = at_nine.mean(1, keepdims=True)
        lift = np.array([0.0, 0.0, 0.05]) * (np.arange(9) > 0)[:, None, None]
        turned = np.einsum("tij,tnj->tni", extra, at_nine - centre) + centre + lift
        flow = task.oracle_flow(num_frames=9)
        flow.objects["banana"] = type(flow.objects["banana"])(turned[0], turned)
        flow.save(tmp_path / "pick-banana-100.zarr")
    finally:
        world.close()
    got = {}
    for keep in ("path", "turn", "neither"):
        script.main(["pick-banana", "100", "--flows", str(tmp_path), "--keep", keep, "-o", str(tmp_path / keep)])
        got[keep] = ObjectFlow.load(tmp_path / keep / "pick-banana-100.zarr")
    offsets = at_nine - at_nine.mean(1, keepdims=True)  # the scripted turn about the centroid
    assert np.abs(got["path"].objects["banana"].trajectories - (offsets + turned.mean(1, keepdims=True))).max() < 1e-4
    mine = turned - turned.mean(1, keepdims=True)
    assert np.abs(got["turn"].objects["banana"].trajectories - (mine + at_nine.mean(1, keepdims=True))).max() < 1e-4
    assert np.abs(got["neither"].objects["banana"].trajectories - at_nine).max() < 1e-4
    assert np.abs(turned - at_nine).max() > 0.1  # what was swapped differed
    plate = got["path"].objects["plate"]
    assert plate.static == flow.objects["plate"].static and plate.has_controls == flow.objects["plate"].has_controls
    assert np.array_equal(plate.trajectories, flow.objects["plate"].trajectories)
    assert json.loads((tmp_path / "path" / "settings.json").read_text()) == {"set": [], "model": None}
    with pytest.raises(SystemExit, match="no flow pick-banana-101.zarr"):
        script.main(["pick-banana", "101", "--flows", str(tmp_path), "--keep", "path", "-o", str(tmp_path / "x")])
