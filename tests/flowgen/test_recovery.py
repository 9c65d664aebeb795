"""Recovery of a known motion: a hinged box whose lid turns 60 degrees, filmed by PyBullet's
TinyRenderer from one camera; `chord-robot flow --prior video --preset cpu` must find the lid's
3D point trajectories (evaluated through the exported ObjectFlow at the scan's lid vertices)
within 1 cm on average and 2 cm at the last frame, keep the base within 3 mm, in 5 minutes
(the issue's bounds; the asserted ones are tighter, near what is measured), with the
object-free background image and without it."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from chord_robot import synth
from chord_robot.flow import ObjectFlow
from tests.chord_robot.app.test_cli_flow import run
from tests.flowgen.hinge_video import render_clip

pytestmark = pytest.mark.slow


def recovery_errors(flow: ObjectFlow, box: synth.HingedBox) -> dict[str, float]:
    """Errors (mm) of the flow against the analytic hinge motion at the scan's vertices."""
    motion = flow.objects["box"]
    times = np.arange(flow.num_frames) / (flow.num_frames - 1)  # the run resamples the whole clip
    lid = np.asarray(box.lid.mesh.vertices)
    base = np.asarray(box.base.mesh.vertices)
    lid_error = np.linalg.norm(motion.evaluate(lid) - box.hinge.move(lid, times), axis=-1)  # (T, N)
    base_error = np.linalg.norm(motion.evaluate(base) - base[None], axis=-1)
    return {
        "lid_mean_mm": 1000 * float(lid_error.mean()),
        "lid_final_mm": 1000 * float(lid_error[-1].mean()),
        "base_mean_mm": 1000 * float(base_error.mean()),
        "base_worst_frame_mm": 1000 * float(base_error.mean(1).max()),
        "base_p95_mm": 1000 * float(np.percentile(base_error, 95)),
        "lid_per_frame_mm": [round(1000 * float(e), 1) for e in lid_error.mean(1)],
    }


@pytest.mark.parametrize("background", [True, False], ids=["background image", "first frame and scan"])
def test_flow_recovers_a_hinged_lid_from_one_video(tmp_path, background):
    """With the object-free view as a background image, and without one (the background then
    comes from the video's first frame around the scan's box, `flowgen.priors.first_frame`;
    before that, rendering the static scene from the scan instead gave 24.8 / 48.6 mm)."""
    box = synth.hinged_box()
    scan = synth.write_hinged_box_scan(tmp_path, box)
    clip = render_clip(box, tmp_path)
    out = tmp_path / "flow.zarr"
    start = time.time()
    res = run("flow", "--scan", scan, "--task", "open the lid", "--prior", "video", "--video", clip.video,
              "--camera", clip.camera, *(["--background", clip.background] if background else []),
              "--preset", "cpu", "-o", out, timeout=600)
    seconds = time.time() - start
    assert res.returncode == 0, res.stderr
    flow = ObjectFlow.load(out)
    figures = recovery_errors(flow, box) | {"seconds": round(seconds, 1)}
    print("\nrecovery:", json.dumps(figures))
    assert flow.objects["table"].static and not flow.objects["box"].static
    assert figures["lid_mean_mm"] < 4.5  # 3.0 / 3.1 mm measured (with / without the image)
    assert figures["lid_final_mm"] < 4.5  # 2.7 / 2.5
    assert figures["base_mean_mm"] < 2.0 and figures["base_worst_frame_mm"] < 3.0  # 1.1, 1.8 / 1.6
    assert seconds < 300.0


def test_flow_recovers_a_checkerboard_lid_filmed_by_another_renderer(tmp_path):
    """A checkerboard box whose lid closes 105 -> 45 degrees, drawn by the small z-buffer
    rasteriser of tests/flowgen/checker_hinge.py (not flowgen's, not PyBullet's), lifted
    without a background image (issue #17's goal: lid under 10 mm mean and 20 mm final, base
    under 3 mm, under 5 minutes). 3.4 / 4.6 mm measured, base 0.6 (with the object-free
    image 4.2 / 6.4, `benchmarks/lift.py`)."""
    from tests.flowgen import checker_hinge

    clip = checker_hinge.write(tmp_path)
    out = tmp_path / "flow.zarr"
    start = time.time()
    res = run("flow", "--scan", clip.scan, "--task", "close the lid", "--prior", "video", "--video", clip.video,
              "--camera", clip.camera, "--preset", "cpu", "-o", out, timeout=600)
    seconds = time.time() - start
    assert res.returncode == 0, res.stderr
    figures = checker_hinge.errors(ObjectFlow.load(out), clip) | {"seconds": round(seconds, 1)}
    print("\nrecovery:", json.dumps(figures))
    assert figures["lid_mean_mm"] < 5.0 and figures["lid_final_mm"] < 7.0
    assert figures["base_mean_mm"] < 1.2 and figures["base_worst_frame_mm"] < 2.0  # 1.0 measured
    assert seconds < 300.0
