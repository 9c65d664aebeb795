"""The optimisation loop: schedules, split re-initialisation, checkpoint/resume, rollback."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math

import pytest
import torch

from chord_robot.errors import InputError, TaskFailure
from flowgen import schedules
from flowgen.config import Decay, FlowConfig, cpu, fast, paper, preset, sds_weights
from flowgen.fenwick import from_per_frame, query_all
from flowgen.model import build_model, parameters
from flowgen.optimize import draw_frames, extrapolate, optimize
from flowgen.quat import quat_normalize

from .conftest import tiny_config, tiny_prior

# --------------------------------------------------------------------------- schedules


def test_learning_rates_are_log_linear_between_the_papers_end_points():
    config = paper()
    first, last = schedules.learning_rates(config, 0), schedules.learning_rates(config, config.iterations - 1)
    assert first["deform"] == pytest.approx(6e-3) and last["deform"] == pytest.approx(6e-5)
    assert first["control_scale"] == pytest.approx(6e-3) and last["control_scale"] == pytest.approx(6e-5)
    assert first["control_rotation"] == pytest.approx(3e-3) and last["control_rotation"] == pytest.approx(3e-5)
    # log-linear: the geometric mean halfway, and a constant ratio per iteration
    middle = schedules.log_linear(Decay(6e-3, 6e-5), 50, 101)
    assert middle == pytest.approx(6e-4, rel=1e-9)
    ratios = [schedules.log_linear(Decay(6e-3, 6e-5), i + 1, 101) / schedules.log_linear(Decay(6e-3, 6e-5), i, 101)
              for i in (0, 37, 99)]
    assert ratios == pytest.approx([0.01 ** (1 / 100)] * 3, rel=1e-9)


def test_regulariser_weights_decay_between_the_papers_end_points():
    config = paper("wan")
    assert config.weights == sds_weights()
    first, last = schedules.reg_weights(config, 0), schedules.reg_weights(config, config.iterations - 1)
    assert (first["temporal"], last["temporal"]) == pytest.approx((9.6, 1.6))
    assert (first["arap"], last["arap"]) == pytest.approx((3000.0, 300.0))
    half = schedules.reg_weights(dataclasses.replace(config, iterations=101), 50)
    assert (half["temporal"], half["arap"]) == pytest.approx((5.6, 1650.0))  # linear
    video = paper("video")
    assert video.weights != config.weights  # the video prior has its own weights


def test_schedules_are_pure_functions_of_the_iteration_and_know_no_tau():
    """Nothing depends on running state or on the SDS noise level: same inputs, same values."""
    config = cpu()
    for fn in (schedules.learning_rates, schedules.reg_weights, schedules.last_active_frame,
               schedules.fine_active, schedules.render_scale, schedules.split_now):
        assert list(inspect.signature(fn).parameters) == ["config", "it"]
        assert [fn(config, i) for i in (5, 200, 5)] == [fn(config, i) for i in (5, 200, 5)]


def test_presets_are_typed_configs_with_documented_fields():
    for name in ("paper", "fast", "cpu"):
        assert isinstance(preset(name, "video"), FlowConfig)
    assert (paper().max_side, paper().num_frames, paper().iterations, paper().views_per_iteration) == (832, 41, 2000, 4)
    assert fast().iterations < paper().iterations and cpu().max_side <= 160
    source = inspect.getsource(FlowConfig)
    for f in dataclasses.fields(FlowConfig):  # a docstring line under each field
        line = next(i for i, s in enumerate(source.splitlines()) if s.strip().startswith(f"{f.name}:"))
        assert source.splitlines()[line + 1].strip().startswith('"""'), f.name
    with pytest.raises(ValueError, match="one of paper, fast, cpu"):
        preset("huge")


def test_split_frame_scales_with_the_frame_count():
    assert schedules.split_frame(paper()) == 30  # of 0..40
    assert schedules.split_frame(dataclasses.replace(paper(), num_frames=21)) == 15
    assert schedules.split_frame(dataclasses.replace(paper(), num_frames=9)) == 6


def test_progressive_unlocking_reaches_every_frame():
    config = dataclasses.replace(cpu(), num_frames=21, iterations=300, progressive=0.5)
    active = [schedules.last_active_frame(config, i) for i in range(300)]
    assert active[0] == 1 and active[149] < 20 and active[150] == 20 and active[-1] == 20
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(active))
    assert schedules.last_active_frame(dataclasses.replace(config, progressive=0.0), 0) == 20


def test_draw_frames_weights_errors_and_keeps_the_newest():
    gen = torch.Generator().manual_seed(0)
    error = torch.tensor([float("nan"), 1e-6, 1e-6, 1.0, 1e-6, float("nan")])
    counts = torch.zeros(6)
    for _ in range(200):
        picked = draw_frames(error, 5, 2, newest=True, rng=gen)
        assert 5 in picked.tolist() and len(set(picked.tolist())) == 2 and 0 not in picked.tolist()
        counts[picked] += 1
    assert counts[3] > 3 * counts[1]  # the frame with the large error is drawn most


def test_extrapolation_continues_a_constant_velocity():
    num_frames, k = 6, 3
    angle = torch.linspace(0, 0.5, num_frames)[:, None].expand(num_frames, k)
    quats = torch.stack((torch.cos(angle / 2), torch.zeros_like(angle), torch.zeros_like(angle), torch.sin(angle / 2)), -1)
    trans = torch.linspace(0, 0.1, num_frames)[:, None, None] * torch.tensor([1.0, 2.0, 0.0])
    trans = trans.expand(num_frames, k, 3).clone()
    truth = from_per_frame(quats, trans)
    held = from_per_frame(torch.cat((quats[:3], quats[2:3].expand(3, k, 4))), torch.cat((trans[:3], trans[2:3].expand(3, k, 3))))
    out_q, out_t = query_all(extrapolate(held, 2, 2))
    want_q, want_t = query_all(truth)
    assert torch.allclose(out_q[:5], want_q[:5], atol=1e-5) and torch.allclose(out_t[:5], want_t[:5], atol=1e-6)
    assert torch.allclose(out_q[5], out_q[4], atol=1e-6)  # beyond the steps: held
    assert torch.equal(extrapolate(held, 2, 2).quats[:2], held.quats[:2])  # earlier nodes untouched


# --------------------------------------------------------------------------- the loop


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in parameters(model).items()}


def test_split_reinitialises_at_its_iteration(hinge_scene):
    config = tiny_config(num_frames=9, iterations=6, split_iteration=3, split_fraction=0.5,
                         appearance_iterations=1)
    model = build_model(hinge_scene, config)
    seen, before = [], {}

    def snapshot():
        q, t = query_all(model.moving[0].coarse_store)
        return q.detach().clone(), t.detach().clone()

    def progress(done, total, terms):
        if done == 1 + 3:  # the appearance iteration and motion iterations 0, 1, 2 are done
            before["q"], before["t"] = snapshot()

    def log(message: str) -> None:
        if "split" in message:
            seen.append((message, *snapshot()))

    state = optimize(model, tiny_prior(9), config, log=log, progress=progress)
    assert len(seen) == 1 and seen[0][0].startswith("iteration 3:")
    _, q, t = seen[0]
    assert torch.allclose(q[5:], q[4:5].expand_as(q[5:]), atol=1e-6)
    assert torch.allclose(t[5:], t[4:5].expand_as(t[5:]), atol=1e-7)
    assert torch.equal(q[:5], before["q"][:5]) and torch.equal(t[:5], before["t"][:5])  # nodes <= 4 kept
    assert not torch.equal(t[5:], before["t"][5:])  # later frames had moved; now reset
    assert state.iteration == 7


@pytest.mark.parametrize("part_motion", [False, True])
def test_resume_continues_a_killed_run_to_the_same_result(hinge_scene, tmp_path, part_motion):
    config = tiny_config(iterations=8, checkpoint_every=3, part_motion=part_motion)
    prior = tiny_prior(config.num_frames)
    straight = build_model(hinge_scene, config)
    optimize(straight, prior, config)

    class Killed(Exception):
        pass

    def kill_at_6(done, total, terms):
        if done == 6:
            raise Killed

    ckpt = tmp_path / "run.ckpt"
    killed = build_model(hinge_scene, config)
    with pytest.raises(Killed):
        optimize(killed, prior, config, checkpoint_path=ckpt, fingerprint="a", progress=kill_at_6)
    resumed = build_model(hinge_scene, config)
    messages = []
    state = optimize(resumed, prior, config, checkpoint_path=ckpt, resume=True, fingerprint="a", log=messages.append)
    assert any("resumed" in m and "iteration 6" in m for m in messages)
    assert state.iteration == 10
    want, got = _params(straight), _params(resumed)
    moved = want["box/coarse/trans"].abs().max()
    assert moved > 0
    assert ("box/part/quats" in want) == part_motion
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6, rtol=0), name
    with pytest.raises(InputError, match="other inputs or settings"):
        optimize(build_model(hinge_scene, config), prior, config, checkpoint_path=ckpt, resume=True, fingerprint="b")


class _Faulty:
    """A prior whose loss is NaN (or huge) on chosen calls."""

    def __init__(self, prior, bad_calls: set[int], value: float):
        self.prior, self.bad_calls, self.value, self.calls = prior, bad_calls, value, 0
        self.num_frames, self.num_sources = prior.num_frames, prior.num_sources

    def views(self, frames, scale, first=0):
        return self.prior.views(frames, scale, first)

    def still(self, view, scale):
        return self.prior.still(view, scale)

    def loss(self, view, rgb, alpha, scale):
        out = self.prior.loss(view, rgb, alpha, scale)
        self.calls += 1
        if self.calls in self.bad_calls:
            out["photometric"] = out["photometric"] * self.value
        return out


@pytest.mark.parametrize("value, reason", [(float("nan"), "NaN"), (1e9, "exploded")])
def test_a_bad_loss_rolls_back_and_continues(hinge_scene, value, reason):
    config = tiny_config(iterations=24, appearance_iterations=0, checkpoint_every=5)
    prior = _Faulty(tiny_prior(config.num_frames), {17}, value)
    model = build_model(hinge_scene, config)
    messages = []
    state = optimize(model, prior, config, log=messages.append)
    assert state.rollbacks == 1 and state.lr_scale == 0.5 and state.iteration == 24
    assert len(messages) == 1 and reason in messages[0] and "rolled back to the checkpoint at iteration 15" in messages[0]
    assert all(torch.isfinite(p).all() for p in parameters(model).values())
    assert all(math.isfinite(h["total"]) and h["total"] < 1e3 for h in state.history)


def test_a_diverging_run_stops_with_a_clear_error(hinge_scene):
    config = tiny_config(iterations=6, appearance_iterations=0, max_rollbacks=2)
    prior = _Faulty(tiny_prior(config.num_frames), set(range(1, 100)), float("nan"))
    with pytest.raises(TaskFailure, match="diverged"):
        optimize(build_model(hinge_scene, config), prior, config)


def test_frame_zero_stays_the_rest_pose(hinge_scene):
    config = tiny_config(iterations=5)
    model = build_model(hinge_scene, config)
    optimize(model, tiny_prior(config.num_frames), config)
    store = model.moving[0].coarse_store
    q, t = query_all(store)
    assert torch.equal(q[0], quat_normalize(torch.tensor([1.0, 0, 0, 0])).expand_as(q[0]))
    assert torch.equal(t[0], torch.zeros_like(t[0]))
    assert t[1:].abs().max() > 0


def test_store_option_picks_the_deformation_store_and_per_frame_runs_the_loop(hinge_scene):
    from flowgen.fenwick import FenwickStore, PerFrameStore

    with pytest.raises(ValueError, match="unknown deformation store 'tree'; one of fenwick, per-frame"):
        tiny_config(deformation_store="tree")
    tree = build_model(hinge_scene, tiny_config())
    assert type(tree.moving[0].coarse_store) is FenwickStore and type(tree.moving[0].fine_store) is FenwickStore
    # progressive unlocking exercises extrapolate() on the per-frame rows
    config = tiny_config(deformation_store="per-frame", iterations=6, progressive=0.5, appearance_iterations=1)
    model = build_model(hinge_scene, config)
    stores = (model.moving[0].coarse_store, model.moving[0].fine_store)
    assert all(type(s) is PerFrameStore for s in stores)
    optimize(model, tiny_prior(5), config)
    obj = model.moving[0]
    assert type(obj.coarse_store) is PerFrameStore and obj.coarse_store.quats.shape[0] == 4
    assert float(obj.coarse_store.trans.detach().abs().max()) > 0  # the rows were optimised


def test_extrapolation_of_a_per_frame_store_matches_the_tree():
    from flowgen.fenwick import per_frame_from_per_frame

    num_frames, k = 6, 2
    angle = torch.linspace(0, 0.4, num_frames)[:, None].expand(num_frames, k)
    quats = torch.stack((torch.cos(angle / 2), torch.sin(angle / 2), torch.zeros_like(angle), torch.zeros_like(angle)), -1)
    trans = torch.linspace(0, 0.1, num_frames)[:, None, None].expand(num_frames, k, 3).clone()
    tree_q, tree_t = query_all(extrapolate(from_per_frame(quats, trans), 2, 2))
    rows = extrapolate(per_frame_from_per_frame(quats, trans), 2, 2)
    assert type(rows).__name__ == "PerFrameStore"
    rows_q, rows_t = query_all(rows)
    assert torch.allclose(rows_q, tree_q, atol=1e-5) and torch.allclose(rows_t, tree_t, atol=1e-6)
    assert torch.equal(rows.quats[:2], quats[1:3])  # frames <= 2 untouched


def test_a_seed_gives_the_same_flow_on_every_run_on_two_threads(hinge_scene):
    """Two workers take the rasteriser's tile batches in any order, and torch's threaded CPU
    scatters sum in any order; the per-batch sums and deterministic kernels make the optimised
    motion bit for bit the same (the README's example once planned a push on one run and
    failed on the next from such differences)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = tiny_config(iterations=12, max_side=96, num_gaussians=3000, num_static_gaussians=500)
        runs = []
        for _ in range(3):
            model = build_model(hinge_scene, config)
            optimize(model, tiny_prior(config.num_frames), config)
            runs.append(_params(model))
    finally:
        torch.set_num_threads(threads)
    assert runs[0]["box/coarse/trans"].abs().max() > 0
    for run in runs[1:]:
        assert all(torch.equal(run[name], runs[0][name]) for name in runs[0])


@pytest.mark.parametrize("per_axis", [True, False])
def test_control_covariances_turn_only_with_per_axis_scales(hinge_scene, per_axis):
    """The paper's control covariance R diag(s^2) R^T: with three scales (initialised equal)
    the scales part and the learned rotations then change the skinning weights; with one
    isotropic scale R cancels out (the parameter does nothing, whatever Adam makes of its
    round-off gradient)."""
    from flowgen.skinning import skinning_weights

    config = tiny_config(iterations=12, per_axis_control_scales=per_axis)
    model = build_model(hinge_scene, config)
    obj = model.moving[0]
    coarse = obj.coarse
    assert coarse.log_scales.shape == ((coarse.num_controls, 3) if per_axis else (coarse.num_controls,))
    optimize(model, tiny_prior(config.num_frames), config)
    with torch.no_grad():
        learned = skinning_weights(obj.rest.means, coarse, obj.binding.coarse)
        unturned = skinning_weights(obj.rest.means, dataclasses.replace(coarse, rotations=None), obj.binding.coarse)
    change = (learned - unturned).abs().max()
    if per_axis:
        spread = coarse.log_scales.detach().amax(1) - coarse.log_scales.detach().amin(1)
        assert spread.max() > 0.01  # the axes parted (0.014 measured)
        assert change > 1e-5, (change, spread.max())  # 1.4e-5 measured: 100x round-off
    else:
        assert change < 5e-7, change  # float32 round-off (1.2e-7 measured)
