"""Clip sets on disk and joined: `save_clips` / `load_clips` (one ``.npz``, written
atomically) and `concatenate_clips`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from chord_robot.atomic import atomic_path
from chord_robot.errors import InputError
from sim.clips import ClipScene, ClipSet


def concatenate_clips(first: ClipSet, second: ClipSet) -> ClipSet:
    """One set of the clips of ``first`` then ``second`` (same prompts, same order); its seed is
    the first's."""
    if first.prompts != second.prompts:
        raise InputError(f"cannot join clip sets of different prompts: {first.prompts} and {second.prompts}")
    if first.videos.shape[1:] != second.videos.shape[1:]:
        raise InputError(f"cannot join clip sets of different sizes: {first.videos.shape[1:]} and "
                         f"{second.videos.shape[1:]}")
    return ClipSet(np.concatenate([first.videos, second.videos]), np.concatenate([first.angles, second.angles]),
                   first.prompts, np.concatenate([first.prompt_ids, second.prompt_ids]),
                   first.scenes + second.scenes, first.seed)



def save_clips(path: str | Path, clips: ClipSet) -> None:
    """Write a clip set as one ``.npz`` (atomically)."""
    scenes = json.dumps([asdict(s) for s in clips.scenes])
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, videos=clips.videos, angles=clips.angles, prompt_ids=clips.prompt_ids,
                 prompts=np.array(json.dumps(list(clips.prompts))), scenes=np.array(scenes),
                 seed=np.array(clips.seed))


def load_clips(path: str | Path) -> ClipSet:
    """Read a clip set written by `save_clips` (InputError if it is not one)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return ClipSet(z["videos"], z["angles"], tuple(json.loads(str(z["prompts"]))), z["prompt_ids"],
                           tuple(ClipScene(**s) for s in json.loads(str(z["scenes"]))), int(z["seed"]))
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path} is not a clip set written by save_clips: {e}") from None
