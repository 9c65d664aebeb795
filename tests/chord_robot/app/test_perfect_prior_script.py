"""scripts/perfect_prior.py: the velocity of a prior that knows the answer is the exact one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("perfect_prior")


@pytest.mark.parametrize("tau", [0.05, 0.4, 0.9])
def test_the_perfect_velocity_is_the_posterior_mean_of_its_mixture(script, tau):
    """z_tau - tau v is E[z | z_tau] for z drawn from the equal mixture of N(z_k, s^2) and
    z_tau = (1 - tau) z + tau eps, here by quadrature in one dimension."""
    targets, spread = [-1.0, 0.4, 2.0], 0.5
    z = np.linspace(-6, 8, 200001)
    prior = sum(np.exp(-((z - c) ** 2) / (2 * spread**2)) for c in targets)
    for z_tau in (-0.7, 0.3, 1.6):
        likelihood = np.exp(-((z_tau - (1 - tau) * z) ** 2) / (2 * tau**2))
        want = float((z * prior * likelihood).sum() / (prior * likelihood).sum())
        v = script.perfect_velocity(torch.tensor([[z_tau]], dtype=torch.float64), tau,
                                    [torch.tensor([[c]], dtype=torch.float64) for c in targets], spread)
        assert float(z_tau - tau * v) == pytest.approx(want, abs=1e-6), (tau, z_tau)


def test_one_target_pulls_a_clean_latent_to_it_with_a_bounded_gradient(script):
    """With one target z*, the RF-SDS gradient v - (eps - z) of a noiseless draw at z is
    -tau (z* - z) / ((1 - tau)^2 s^2 + tau^2): towards the target, and bounded as tau falls (a
    single video, s = 0, would give -(z* - z) / tau: -10 at tau 0.1, which the loop's divergence
    check refuses)."""
    from flowgen.priors.sds import Embeddings, rf_sds_gradient

    target, z, spread = torch.full((1, 4), 1.0), torch.zeros(1, 4), 0.5
    for tau in (0.9, 0.5, 0.1):
        g = rf_sds_gradient(z, tau, Embeddings(torch.zeros(1, 1), None),
                            lambda z_tau, t, embedding: script.perfect_velocity(z_tau, t, [target], spread),
                            1.0, torch.zeros(1, 4))
        want = -tau / ((1 - tau) ** 2 * spread**2 + tau**2)
        assert g.flatten().tolist() == pytest.approx([want] * 4, abs=1e-6), tau


def test_end_figures_give_the_carried_objects_height_and_path_per_frame(script):
    """The scripted pick described against itself (no error, its own lift and path) and against a
    flow that slides the banana along the table to the same end (no lift, the same end)."""
    from sim import world as simworld
    from sim.tasks import make

    world = simworld.create(direct=True)
    try:
        task = make("pick-banana", world)
        task.reset(100)
        scripted = task.oracle_flow(num_frames=9)
        same = script.end_figures(task, scripted, scripted)["banana"]
        slid = task.oracle_flow(num_frames=9)
        motion = slid.objects["banana"]
        motion.trajectories[..., 2] = motion.trajectories[:1, :, 2]  # every frame at the rest height
        low = script.end_figures(task, slid, scripted)["banana"]
    finally:
        world.close()
    assert same["end_error_mm"] == 0.0 and same["flow_lift_mm"] == same["scripted_lift_mm"]
    assert max(same["scripted_lift_mm"]) > 80 and same["scripted_lift_mm"][0] == 0  # the pick lifts it
    assert max(same["scripted_along_mm"]) == same["scripted_along_mm"][-1] > 250  # and carries it to the plate
    assert low["flow_lift_mm"] == [0] * 9 and low["flow_along_mm"] == same["flow_along_mm"]
    assert same["flow_turn_deg"] == same["scripted_turn_deg"] and same["flow_turn_deg"][0] == 0
    assert 10 < max(same["scripted_turn_deg"]) < 30  # the scripted pick turns the banana a little
    assert low["end_error_mm"] == pytest.approx(same["scripted_lift_mm"][-1], abs=1.0)  # left at rest height


def test_pixels_needs_the_image_space_and_is_refused_before_any_run(script, tmp_path):
    with pytest.raises(SystemExit, match="give --set wan.sds_space=image"):
        script.main(["pick-banana", "100", "--pixels", "--flows", str(tmp_path / "kept")])
    with pytest.raises(SystemExit, match="no --completions"):
        script.main(["pick-banana", "100", "--pixels", "--set", "wan.sds_space=image", "--completions", "0,1",
                     "--flows", str(tmp_path / "kept")])
    assert not (tmp_path / "kept").exists()


def test_the_turn_is_the_angle_of_the_best_rigid_fit(script):
    rest = np.random.default_rng(0).normal(size=(50, 3))
    c, s = np.cos(np.radians(40.0)), np.sin(np.radians(40.0))
    turned = rest @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T + [0.3, -0.2, 0.1]
    assert script._turn_deg(rest, turned) == pytest.approx(40.0, abs=1e-6)
    assert script._turn_deg(rest, rest + 1.0) == pytest.approx(0.0, abs=1e-5)
    flat = rest * [1.0, 1.0, 0.0]  # coplanar points: the SVD's fit may be a reflection, the turn is not
    assert script._turn_deg(flat, flat @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T) == \
        pytest.approx(40.0, abs=1e-6)
