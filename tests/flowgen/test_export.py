"""Export: the single-level control set reproduces a part-aware motion under plain LBS."""

from __future__ import annotations

import numpy as np

from chord_robot import synth
from chord_robot.flow import ObjectMotion, lbs_numpy
from flowgen.config import FlowConfig
from flowgen.export import ExportConfig, export_flow, fit_controls, reproduction_error
from flowgen.model import build_model

from .conftest import tiny_config


def test_exported_controls_reproduce_a_hinge_with_a_still_base():
    box = synth.hinged_box(resolution=0.02)
    rng = np.random.default_rng(0)
    base = box.base.mesh.sample(3000, seed=1)
    lid = box.lid.mesh.sample(2000, seed=2)
    rest = np.concatenate([base, lid])
    part = np.repeat([0, 1], [len(base), len(lid)])
    times = np.linspace(0, 1, 6)
    traj = np.concatenate([np.broadcast_to(base, (6, *base.shape)), box.hinge.move(lid, times)], 1)
    centres, quats, trans, scales = fit_controls(rest, traj, part, ExportConfig(num_controls=256))
    assert centres.shape == (len(quats[0]), 3) and np.allclose(quats[0], [1, 0, 0, 0])
    motion = ObjectMotion(rest, traj, centres, quats, trans, scales=scales)
    assert reproduction_error(motion) < 1.5e-3
    # points never seen by the fit (the scan's vertices) follow their part too
    query = np.asarray(box.lid.mesh.vertices)[rng.choice(len(box.lid.mesh.vertices), 500)]
    err = np.linalg.norm(lbs_numpy(query, centres, quats, trans, scales) - box.hinge.move(query, times), axis=-1)
    assert err.mean() < 2e-3
    still = np.asarray(box.base.mesh.vertices)
    drift = np.linalg.norm(lbs_numpy(still, centres, quats, trans, scales) - still[None], axis=-1)
    assert drift.mean() < 1e-3


def test_export_flags_static_objects_and_keeps_colours(hinge_scene):
    config: FlowConfig = tiny_config(num_frames=3)
    model = build_model(hinge_scene, config)
    flow = export_flow(model, config, "open the lid", fps=5.0)
    assert flow.num_frames == 3 and flow.fps == 5.0 and flow.task == "open the lid"
    assert flow.objects["table"].static and not flow.objects["box"].static
    box = flow.objects["box"]
    assert box.source == "gaussians" and box.colors is not None
    assert np.allclose(box.trajectories, box.points[None], atol=1e-6)  # identity motion
    assert np.allclose(box.evaluate(box.points[:50]), box.points[None, :50], atol=1e-6)
    assert flow.config["num_frames"] == 3 and flow.config["controls"]["num_controls"] == [6, 16]
