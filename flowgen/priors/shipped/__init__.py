"""The shipped prior: the project's own small video models of the Wan 2.2 I2V layout.

Two models, each trained by `chord-robot train-prior` from fixed seeds (the commands, data, time
and checks are in each directory's ``MODEL_CARD.md``) and shipped inside the package in the
diffusers layout, so they load through the same code as Wan 2.2 (`flowgen.priors.wan`): ``model``
knows the laptop's lid and the desk lamp's head, ``pick`` the pick-and-place. Each knows a few
fixed sentences (its ``train_log.json`` lists them); `chord_robot.app.tasktext` maps what users
write onto them, and the task's motion chooses the model (`chord_robot.app.flowconfig.choose_prior`).
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
"""The first shipped model, the laptop's lid and the lamp's head, and the default (diffusers
directory: model_index.json, vae/, text_encoder/, tokenizer/, transformer/, transformer_2/,
train_log.json, MODEL_CARD.md)."""

PICK_DIR = MODEL_DIR.with_name("pick")
"""The pick-and-place model (the same layout)."""

MODEL_DIRS = (MODEL_DIR, PICK_DIR)
"""Every shipped model, the default first."""


def available(root: Path = MODEL_DIR) -> bool:
    """Whether the shipped weights are present (a source tree without them still imports)."""
    return (root / "model_index.json").is_file() and (root / "train_log.json").is_file()


def is_shipped(model_dir: str | Path | None) -> bool:
    """Whether ``model_dir`` is one of the shipped models' directories."""
    return model_dir is not None and Path(model_dir).resolve() in MODEL_DIRS


def trained(model_dir: str | Path | None) -> bool:
    """Whether ``model_dir`` holds a prior `chord-robot train-prior` made (a shipped one or a
    user's): CPU-sized, knowing the few sentences its ``train_log.json`` lists, distilled at its
    clips' size."""
    return model_dir is not None and available(Path(model_dir))


def known_prompts() -> dict[str, Path]:
    """Every sentence the shipped models know -> the model that knows it (models present only)."""
    return {prompt: root for root in MODEL_DIRS if available(root) for prompt in prompts(root)}


def prompts(root: str | Path = MODEL_DIR) -> tuple[str, ...]:
    """The sentences a prior trained by `train-prior` knows (from its ``train_log.json``)."""
    return tuple(json.loads((Path(root) / "train_log.json").read_text())["prompts"])


def clip_size(root: str | Path = MODEL_DIR) -> tuple[int, int, int]:
    """(frames, height, width) of the clips a prior trained by `train-prior` learnt from: the
    size its flows are distilled at. From its ``train_log.json`` (a prior logged before the size
    was: from its latents' shape and its VAE's scale factors)."""
    root = Path(root)
    log = json.loads((root / "train_log.json").read_text())["log"]
    if "clips" in log:
        return log["clips"]["frames"], log["clips"]["height"], log["clips"]["width"]
    _, _, frames, height, width = log["latents"]["shape"]
    vae = json.loads((root / "vae" / "config.json").read_text())
    time, space = vae["scale_factor_temporal"], vae["scale_factor_spatial"]
    return 1 + (frames - 1) * time, height * space, width * space
