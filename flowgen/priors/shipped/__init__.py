"""The shipped prior: the project's own small video model of the Wan 2.2 I2V layout.

Trained by `chord-robot train-prior` from a fixed seed (the command, data, time and checks are
in ``model/MODEL_CARD.md``) and shipped inside the package in the diffusers layout, so it loads
through the same code as Wan 2.2 (`flowgen.priors.wan`). It knows a few fixed sentences (its
``train_log.json`` lists them); `chord_robot.app.tasktext` maps what users write onto them.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
"""The shipped weights (diffusers directory: model_index.json, vae/, text_encoder/, tokenizer/,
transformer/, transformer_2/, train_log.json, MODEL_CARD.md)."""


def available(root: Path = MODEL_DIR) -> bool:
    """Whether the shipped weights are present (a source tree without them still imports)."""
    return (root / "model_index.json").is_file() and (root / "train_log.json").is_file()


def is_shipped(model_dir: str | Path | None) -> bool:
    """Whether ``model_dir`` is the shipped prior's directory."""
    return model_dir is not None and Path(model_dir).resolve() == MODEL_DIR


def prompts(root: str | Path = MODEL_DIR) -> tuple[str, ...]:
    """The sentences a prior trained by `train-prior` knows (from its ``train_log.json``)."""
    return tuple(json.loads((Path(root) / "train_log.json").read_text())["prompts"])
