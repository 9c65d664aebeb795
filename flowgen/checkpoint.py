"""Running state of an optimisation and its checkpoints (in memory and on disk).

The algorithm (schedules, losses) is stateless; everything that changes while it runs is
here: the parameters' values, the optimiser's moments, the random generator, the per-frame
error estimates that steer frame sampling, and the rollback bookkeeping. A checkpoint is a
deep copy of all of it, so restoring one and continuing reproduces an uninterrupted run.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from chord_robot.atomic import atomic_path
from chord_robot.errors import InputError

__all__ = ["Checkpoint", "TrainState", "capture", "load_checkpoint", "restore", "save_checkpoint"]

_FORMAT = "chord-robot/flowgen-checkpoint/1"


@dataclass
class TrainState:
    """Mutable bookkeeping of a run (the parameters and optimiser live in their own objects).

    Attributes:
        iteration: the next global iteration to run (appearance, then motion iterations).
        frame_error: (T,) running estimate of each frame's photometric error.
        lr_scale: multiplier on every learning rate (halved at each rollback).
        rollbacks: rollbacks so far.
        history: per-iteration loss terms (floats), for reports and tests.
    """

    iteration: int
    frame_error: Tensor
    lr_scale: float = 1.0
    rollbacks: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Checkpoint:
    """A deep copy of everything needed to continue a run.

    Attributes:
        state: the TrainState.
        params: parameter name -> tensor value.
        optimizer: the optimiser's state_dict.
        rng: the torch generator's state.
        fingerprint: what the run was started with (config and inputs); resume checks it.
    """

    state: TrainState
    params: dict[str, Tensor]
    optimizer: dict
    rng: Tensor
    fingerprint: str


def capture(state: TrainState, params: dict[str, Tensor], optimizer: torch.optim.Optimizer,
            rng: torch.Generator, fingerprint: str) -> Checkpoint:
    """A checkpoint of the live objects (copies, unaffected by later steps)."""
    return Checkpoint(
        state=copy.deepcopy(state),
        params={k: v.detach().clone() for k, v in params.items()},
        optimizer=copy.deepcopy(optimizer.state_dict()),
        rng=rng.get_state().clone(),
        fingerprint=fingerprint,
    )


def restore(checkpoint: Checkpoint, params: dict[str, Tensor], optimizer: torch.optim.Optimizer,
            rng: torch.Generator) -> TrainState:
    """Copy a checkpoint into the live parameters, optimiser and generator; returns its state."""
    missing = set(params) ^ set(checkpoint.params)
    if missing:
        raise InputError(f"the checkpoint does not match the model (differs in {sorted(missing)[:3]}); "
                         "start over without resuming")
    with torch.no_grad():
        for name, value in params.items():
            saved = checkpoint.params[name]
            if saved.shape != value.shape:
                raise InputError(f"the checkpoint's {name} has shape {tuple(saved.shape)}, the model "
                                 f"{tuple(value.shape)}; start over without resuming")
            value.copy_(saved)
    optimizer.load_state_dict(copy.deepcopy(checkpoint.optimizer))
    rng.set_state(checkpoint.rng.clone())
    return copy.deepcopy(checkpoint.state)


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write a checkpoint file atomically (never half-written)."""
    payload = {
        "format": _FORMAT,
        "fingerprint": checkpoint.fingerprint,
        "state": {
            "iteration": checkpoint.state.iteration,
            "frame_error": checkpoint.state.frame_error,
            "lr_scale": checkpoint.state.lr_scale,
            "rollbacks": checkpoint.state.rollbacks,
            "history": checkpoint.state.history,
        },
        "params": checkpoint.params,
        "optimizer": checkpoint.optimizer,
        "rng": checkpoint.rng,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], fingerprint: str) -> Checkpoint | None:
    """The checkpoint at ``path``, or None if there is none.

    Raises InputError when the file is not a checkpoint or was made by a run with another
    config or other inputs.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        raise InputError(f"cannot read the checkpoint {path}: {e}; delete it to start over") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise InputError(f"{path} is not a flow checkpoint; delete it to start over")
    if payload["fingerprint"] != fingerprint:
        raise InputError(
            f"the checkpoint {path} was made with other inputs or settings; start over without "
            "resuming, or resume with the same scan, videos, cameras and preset"
        )
    s = payload["state"]
    state = TrainState(s["iteration"], s["frame_error"], s["lr_scale"], s["rollbacks"], s["history"])
    return Checkpoint(state, payload["params"], payload["optimizer"], payload["rng"], fingerprint)
