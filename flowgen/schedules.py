"""Schedules: pure functions of the motion iteration ``it`` (0 .. I - 1) and the config.

Learning rates decay log-linearly, as in 3D-GS (supp. §A.1): ``lr(it) = start^(1 - s) end^s``
with ``s = it / (I - 1)``. Regulariser weights decay linearly (the paper gives only the end
points; the CFG scale it decays alongside is linear). Nothing here depends on the running
state, so a resumed run sees exactly the schedule an uninterrupted one would.
"""

from __future__ import annotations

import math

from flowgen.config import Decay, FlowConfig

__all__ = [
    "appearance_learning_rates",
    "fine_active",
    "last_active_frame",
    "learning_rates",
    "linear",
    "log_linear",
    "progress",
    "reg_weights",
    "render_scale",
    "split_frame",
    "split_now",
]


def progress(it: int, total: int) -> float:
    """s in [0, 1]: 0 at the first iteration, 1 at the last (``total - 1``)."""
    return min(max(it / max(total - 1, 1), 0.0), 1.0)


def log_linear(decay: Decay, it: int, total: int) -> float:
    """Log-linear interpolation from ``decay.start`` to ``decay.end``."""
    s = progress(it, total)
    if decay.start <= 0 or decay.end <= 0:
        return linear(decay, it, total)
    return math.exp((1 - s) * math.log(decay.start) + s * math.log(decay.end))


def linear(decay: Decay, it: int, total: int) -> float:
    """Linear interpolation from ``decay.start`` to ``decay.end``."""
    s = progress(it, total)
    return (1 - s) * decay.start + s * decay.end


def learning_rates(config: FlowConfig, it: int) -> dict[str, float]:
    """Learning rate of every optimiser group at motion iteration ``it``."""
    total = config.iterations
    return {
        "deform": log_linear(config.lr_deform, it, total),
        "part": log_linear(config.lr_part, it, total),
        "part_translation": log_linear(config.lr_part_translation, it, total),
        "control_scale": log_linear(config.lr_control_scale, it, total),
        "control_rotation": log_linear(config.lr_control_rotation, it, total),
        "color": config.lr_color_motion,
        "gaussian_scale": 0.0,
        "opacity": 0.0,
        "light": config.lr_light_motion,
    }


def appearance_learning_rates(config: FlowConfig) -> dict[str, float]:
    """Learning rates of the appearance stage: colours and light only."""
    return {"deform": 0.0, "part": 0.0, "part_translation": 0.0, "control_scale": 0.0, "control_rotation": 0.0,
            "color": config.lr_color, "gaussian_scale": config.lr_gaussian_scale,
            "opacity": config.lr_opacity, "light": config.lr_light}


def reg_weights(config: FlowConfig, it: int) -> dict[str, float]:
    """Weight of every regulariser at motion iteration ``it``."""
    w = config.weights
    return {
        "temporal": linear(w.temporal, it, config.iterations),
        "arap": linear(w.arap, it, config.iterations),
        "motion": w.motion,
        "motion_scale": w.motion_scale,
        "attach": w.attach,
        "attach_smooth": w.attach_smooth,
        "still": w.still,
        "acceleration": w.acceleration,
        "rigid": w.rigid,
        "turn": w.turn,
        "sink": w.sink,
        "overlap": w.overlap,
        "motion_per_part": float(w.motion_per_part),
        "motion_unsupported": w.motion_unsupported,
        "albedo": config.albedo_prior if config.lr_color_motion > 0 else 0.0,
    }


def split_frame(config: FlowConfig) -> int:
    """The frame whose deformation later frames take at the split (paper: 30 of 0..40)."""
    return round(config.split_fraction * (config.num_frames - 1))


def split_now(config: FlowConfig, it: int) -> bool:
    """True at the motion iteration of the split re-initialisation."""
    return config.split_iteration is not None and it == config.split_iteration


def last_active_frame(config: FlowConfig, it: int) -> int:
    """The latest frame optimised at motion iteration ``it`` (progressive unlocking).

    Frames unlock one at a time, evenly over the first ``progressive`` fraction of the
    iterations, starting from frame 1; with ``progressive == 0`` all frames are active.
    """
    last = config.num_frames - 1
    span = config.progressive * config.iterations
    if span <= 0:
        return last
    return min(last, 1 + int((last - 1) * it / span))


def fine_active(config: FlowConfig, it: int) -> bool:
    """Whether the fine control level is optimised at motion iteration ``it``."""
    return it >= int(config.fine_start * config.iterations)


def render_scale(config: FlowConfig, it: int) -> float:
    """Image scale at motion iteration ``it``: ``lowres_scale`` early (pyramid), then 1."""
    return config.lowres_scale if it < int(config.lowres_fraction * config.iterations) else 1.0
