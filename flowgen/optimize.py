"""The optimisation loop (DESIGN.md §4): an appearance stage, then the motion stage with the
paper's schedules, checkpoints, resume and rollback.

Per motion iteration ``it``:

1. schedules (`flowgen.schedules`, pure functions of ``it``): learning rates, regulariser
   weights, the fine level, the image scale, which frames are unlocked;
2. state transitions at fixed iterations: when new frames unlock they (and every later
   frame) take the last unlocked frame's deformation, and at ``split_iteration`` frames after
   ``split_frame`` take that frame's (the paper's split re-initialisation) - both through
   `flowgen.fenwick.split`, with the optimiser's moments of the rebuilt nodes cleared;
3. a batch: ``views_per_iteration`` cameras x ``frames_per_view`` frames, the frames drawn in
   proportion to their running photometric error (more iterations where the motion is
   fast or hard), the newest unlocked frame always included while frames unlock;
4. loss (`flowgen.objective`), a finiteness and explosion check, Adam step; the norm of the
   deformation (Fenwick) gradients goes into the history (``grad_deform``) with the loss terms.

A NaN or exploding loss (or gradient) restores the last checkpoint, halves the learning
rates, reseeds the batch draws and continues, with a message; after ``max_rollbacks`` the
run stops with TaskFailure instead of writing garbage. Checkpoints are taken every
``checkpoint_every`` iterations, in memory (rollback) and, with a path, on disk (``resume``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from chord_robot.errors import TaskFailure
from flowgen import schedules
from flowgen.checkpoint import (
    Checkpoint,
    TrainState,
    capture,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from flowgen.config import FlowConfig
from flowgen.fenwick import FenwickStore, PerFrameStore, from_per_frame, per_frame_from_per_frame, query_all, split
from flowgen.model import SceneModel, parameter_group, parameters
from flowgen.objective import Objective, Prior, appearance_objective, motion_objective, visibility
from flowgen.quat import quat_conjugate, quat_multiply, quat_normalize

__all__ = ["draw_frames", "extrapolate", "make_optimizer", "optimize", "total_iterations"]

Progress = Callable[[int, int, dict[str, float]], None]
Log = Callable[[str], None]

GROUPS = ("deform", "part", "part_translation", "control_scale", "control_rotation", "color", "gaussian_scale", "opacity", "light")


def total_iterations(config: FlowConfig) -> int:
    """Appearance plus motion iterations."""
    return config.appearance_iterations + config.iterations


def make_optimizer(params: dict[str, Tensor]) -> torch.optim.Adam:
    """Adam with one parameter group per schedule (learning rates are set every iteration)."""
    groups: dict[str, list[Tensor]] = {g: [] for g in GROUPS}
    for name, p in params.items():
        groups[parameter_group(name)].append(p)
    return torch.optim.Adam([{"params": ps, "name": g, "lr": 0.0} for g, ps in groups.items() if ps],
                            eps=1e-15)


def draw_frames(error: Tensor, last: int, count: int, newest: bool, rng: torch.Generator) -> Tensor:
    """(count,) distinct frames in 1..last, drawn in proportion to their running error.

    Unmeasured frames (NaN) weigh as much as the worst measured one; a floor of a quarter of
    the mean keeps every frame visited. With ``newest`` the frame ``last`` is always included.
    """
    candidates = torch.arange(1, last + 1)
    if count >= len(candidates):
        return candidates
    e = error[1 : last + 1].clone()
    known = ~torch.isnan(e)
    fill = e[known].max() if known.any() else torch.tensor(1.0)
    e = torch.where(known, e, fill)
    weights = e + 0.25 * e.mean() + 1e-12
    if newest:
        weights = weights[:-1]
        picked = torch.multinomial(weights, count - 1, replacement=False, generator=rng) + 1
        return torch.cat((picked, torch.tensor([last]))).sort().values
    return (torch.multinomial(weights, count, replacement=False, generator=rng) + 1).sort().values


def _set_rates(optimizer: torch.optim.Adam, rates: dict[str, float], scale: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rates[group["name"]] * scale


def _stores(model: SceneModel) -> list[FenwickStore]:
    out = []
    for obj in model.moving:
        out.append(obj.coarse_store)
        if obj.fine_store is not None:
            out.append(obj.fine_store)
        if obj.part_store is not None:
            out.append(obj.part_store)
    return out


def extrapolate(store: FenwickStore, after_frame: int, steps: int) -> FenwickStore:
    """Frames ``after_frame + 1 .. after_frame + steps`` continue frame ``after_frame``'s
    velocity (per control: the rotation and translation from the frame before it, repeated);
    later frames hold the last extrapolated one. Nodes <= ``after_frame`` stay unchanged.

    A newly unlocked frame then starts near where a smooth motion would be, instead of lagging
    a whole frame behind (which the decayed learning rate recovers only slowly).
    """
    with torch.no_grad():
        quats, trans = query_all(store)
        quats, trans = quats.clone(), trans.clone()
        a = after_frame
        step_q = quat_multiply(quats[a], quat_conjugate(quats[max(a - 1, 0)]))
        step_t = trans[a] - trans[max(a - 1, 0)]
        q, t = quats[a], trans[a]
        for f in range(a + 1, quats.shape[0]):
            if f <= a + steps:
                q, t = quat_normalize(quat_multiply(step_q, q)), t + step_t
            quats[f], trans[f] = q, t
        rebuild = per_frame_from_per_frame if isinstance(store, PerFrameStore) else from_per_frame
        rebuilt = rebuild(quats, trans)  # row j - 1 is node / frame j in both stores
        node_q = torch.cat((store.quats[:a].detach(), rebuilt.quats[a:]), 0)
        node_t = torch.cat((store.trans[:a].detach(), rebuilt.trans[a:]), 0)
        return type(store)(node_q.clone(), node_t.clone())


def _reset_stores(model: SceneModel, optimizer: torch.optim.Adam, after_frame: int,
                  rebuild: Callable[[FenwickStore], FenwickStore]) -> None:
    """Replace every store by ``rebuild(store)`` (which changes nodes > ``after_frame`` only)
    and clear the optimiser's moments of those nodes."""
    for store in _stores(model):
        new = rebuild(store)
        with torch.no_grad():
            store.quats.copy_(new.quats)
            store.trans.copy_(new.trans)
        for p in (store.quats, store.trans):  # node j is row j - 1: nodes > after_frame
            for value in optimizer.state.get(p, {}).values():
                if isinstance(value, Tensor) and value.shape == p.shape:
                    value[after_frame:] = 0.0


def _transitions(model: SceneModel, optimizer: torch.optim.Adam, config: FlowConfig, it: int,
                 log: Log) -> None:
    if it > 0:
        before = schedules.last_active_frame(config, it - 1)
        steps = schedules.last_active_frame(config, it) - before
        if steps > 0:
            _reset_stores(model, optimizer, before, lambda s: extrapolate(s, before, steps))
    if schedules.split_now(config, it):
        frame = schedules.split_frame(config)
        _reset_stores(model, optimizer, frame, lambda s: split(s, frame))
        log(f"iteration {it}: split re-initialisation, frames after {frame} reset to frame {frame}")


def _objective(model: SceneModel, prior: Prior, config: FlowConfig, g: int, rng: torch.Generator,
               error: Tensor) -> tuple[Objective, dict[str, float]]:
    if g < config.appearance_iterations:  # frame 0 of every video
        views = prior.views([torch.tensor([0])] * prior.num_sources, 1.0)
        return appearance_objective(model, prior, views, config.albedo_prior), \
            schedules.appearance_learning_rates(config)
    it = g - config.appearance_iterations
    last = schedules.last_active_frame(config, it)
    newest = last < config.num_frames - 1 or schedules.last_active_frame(config, max(it - 1, 0)) < last
    scale = schedules.render_scale(config, it)
    frames = [draw_frames(error, last, config.frames_per_view, newest, rng)
              for _ in range(config.views_per_iteration)]
    views = prior.views(frames, scale, first=it * config.views_per_iteration)
    objective = motion_objective(model, prior, views, schedules.reg_weights(config, it),
                                 schedules.fine_active(config, it), scale)
    return objective, schedules.learning_rates(config, it)


def _visible_masks(model: SceneModel, prior: Prior) -> dict[str, Tensor]:
    """Object name -> (N,) bool: Gaussians that show in the guides' frame 0 at rest."""
    views = prior.views([torch.tensor([0])] * prior.num_sources, 1.0)
    objects = list(model.moving) + list(model.static)
    return {o.name: v for o, v in zip(objects, visibility(model, views))}


def _mask_appearance(model: SceneModel, masks: dict[str, Tensor], keep_visible: bool) -> None:
    """Zero the appearance gradients of the Gaussians frame 0 does not show (appearance stage:
    they keep the scan's colours and their sampled shape until the motion reveals them), or of
    those it shows (motion stage: frame 0's fit stays, only revealed colours adapt)."""
    for obj in list(model.moving) + list(model.static):
        keep = masks[obj.name] if keep_visible else ~masks[obj.name]
        for p in (obj.albedo_logit, obj.log_scales, obj.opacity_logit):
            if p.grad is not None:
                p.grad.mul_(keep.view(-1, *([1] * (p.grad.dim() - 1))).to(p.grad))


def _group_grad_norm(optimizer: torch.optim.Adam, name: str) -> float:
    """Euclidean norm of the gradients of one parameter group (0 without any)."""
    total = 0.0
    for group in optimizer.param_groups:
        if group["name"] == name:
            total += sum(float(p.grad.square().sum()) for p in group["params"] if p.grad is not None)
    return math.sqrt(total)


def _exploding(loss: float, state: TrainState, config: FlowConfig) -> bool:
    recent = [h["total"] for h in state.history[-20:] if h.get("stage") == 1.0]
    if len(recent) < 10:
        return False
    recent.sort()
    return loss > config.explode_factor * recent[len(recent) // 2]


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """torch's deterministic kernels while inside (its multi-threaded CPU scatters otherwise
    sum in a different order on every run, and the optimisation amplifies the difference):
    with the rasteriser's per-batch sums, a seed gives the same flow on every run."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def optimize(
    model: SceneModel,
    prior: Prior,
    config: FlowConfig,
    *,
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    fingerprint: str = "",
    progress: Progress | None = None,
    log: Log | None = None,
) -> TrainState:
    """Optimise ``model`` in place against ``prior``; returns the final running state.

    Args:
        model: from `flowgen.model.build_model` (its parameters are updated in place).
        prior: the guidance (`flowgen.priors.video.VideoPrior` or
            `flowgen.priors.sds_prior.SdsPrior`).
        config: the run's settings.
        checkpoint_path: where to write checkpoints (None: in memory only).
        resume: continue from ``checkpoint_path`` if it exists (same fingerprint required).
        fingerprint: identifies the config and inputs; a checkpoint from another is refused.
        progress: called after every iteration with (done, total, loss terms).
        log: called with one-line messages (rollbacks, split, resume).
    """
    with deterministic():
        return _optimize(model, prior, config, checkpoint_path, resume, fingerprint, progress, log)


def _optimize(
    model: SceneModel,
    prior: Prior,
    config: FlowConfig,
    checkpoint_path: str | os.PathLike[str] | None,
    resume: bool,
    fingerprint: str,
    progress: Progress | None,
    log: Log | None,
) -> TrainState:
    log = log or (lambda message: None)
    params = parameters(model)
    optimizer = make_optimizer(params)
    rng = torch.Generator().manual_seed(config.seed)
    state = TrainState(iteration=0, frame_error=torch.full((config.num_frames,), float("nan")))
    total = total_iterations(config)
    if resume and checkpoint_path is not None:
        found = load_checkpoint(checkpoint_path, fingerprint)
        if found is not None:
            state = restore(found, params, optimizer, rng)
            log(f"resumed from {checkpoint_path} at iteration {state.iteration} of {total}")
    last: Checkpoint = capture(state, params, optimizer, rng, fingerprint)
    visible: dict[str, Tensor] | None = None

    def rollback(reason: str) -> TrainState:
        if state.rollbacks >= config.max_rollbacks:
            raise TaskFailure(f"the optimisation diverged ({reason}) {state.rollbacks} times; "
                              "try fewer iterations or another preset")
        restored = restore(last, params, optimizer, rng)
        restored.rollbacks = state.rollbacks + 1
        restored.lr_scale = state.lr_scale * 0.5
        rng.manual_seed(config.seed + 7919 * restored.rollbacks)
        log(f"iteration {state.iteration}: {reason}; rolled back to the checkpoint at iteration "
            f"{restored.iteration}, learning rates x{restored.lr_scale:g}")
        return restored

    while state.iteration < total:
        g = state.iteration
        motion = g >= config.appearance_iterations
        if motion:
            _transitions(model, optimizer, config, g - config.appearance_iterations, log)
        objective, rates = _objective(model, prior, config, g, rng, state.frame_error)
        value = float(objective.total.detach())
        if not math.isfinite(value) or (motion and _exploding(value, state, config)):
            state = rollback("the loss is NaN" if not math.isfinite(value) else f"the loss exploded to {value:.3g}")
            continue
        _set_rates(optimizer, rates, state.lr_scale)
        optimizer.zero_grad(set_to_none=True)
        objective.total.backward()
        if not motion or config.lr_color_motion > 0:
            if visible is None:
                visible = _visible_masks(model, prior)
            _mask_appearance(model, visible, keep_visible=not motion)
        grads_ok = True
        for group in optimizer.param_groups:
            for p in group["params"]:
                if group["lr"] == 0.0:
                    p.grad = None
                elif p.grad is not None and not torch.isfinite(p.grad).all():
                    grads_ok = False
        if not grads_ok:
            state = rollback("a gradient is NaN")
            continue
        deform_grad = _group_grad_norm(optimizer, "deform")
        optimizer.step()
        per_frame = objective.per_frame.detach().cpu()  # the running state lives on the host
        measured = ~torch.isnan(per_frame)
        old = state.frame_error[measured]
        new = per_frame[measured]
        state.frame_error[measured] = torch.where(torch.isnan(old), new, 0.7 * old + 0.3 * new)
        terms = {k: float(v.detach()) for k, v in objective.terms.items()}
        state.history.append({"total": value, "stage": float(motion), "grad_deform": deform_grad, **terms})
        state.iteration += 1
        if state.iteration % config.checkpoint_every == 0 or state.iteration in (
                config.appearance_iterations, total):
            last = capture(state, params, optimizer, rng, fingerprint)
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, last)
        if progress is not None:
            progress(state.iteration, total, {"total": value, **terms})
    return state
