"""Task text as users write it -> the shipped prior's motions; unknown tasks refused; the named
object found in the scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chord_robot.app.tasktext import destinations, match_task, named_object
from sim.clips import MOTIONS
from chord_robot.errors import InputError
from chord_robot.scene import Scene, SceneObject

PROMPTS = ("the laptop lid closes", "the laptop lid opens", "the lamp lowers its head", "the lamp raises its head")

PHRASINGS = {
    "the laptop lid closes": ["close the laptop", "shut the lid", "Close the laptop lid.", "please shut the notebook",
                              "lower the laptop screen", "fold the laptop closed", "closing the computer",
                              "push the lid of the laptop down", "the laptop lid closes"],
    "the laptop lid opens": ["open the laptop", "lift the lid", "Open the laptop lid!", "raise the laptop screen",
                             "flip the notebook open", "open up the computer", "the laptop lid opens"],
    "the lamp lowers its head": ["lower the lamp", "tilt the lamp head down", "point the desk lamp downwards",
                                 "bend the lamp down", "dip the light", "lower the lamp's head",
                                 "the lamp lowers its head"],
    "the lamp raises its head": ["raise the lamp", "tilt the lamp head up", "lift the lamp's head",
                                 "point the light upward", "the lamp raises its head"],
}
"""Phrasings written with the word lists in view: they guard the lists, they are not a benchmark."""

ALL_PROMPTS = tuple(MOTIONS)
PICK_AND_FOLD = {
    "the object is put on the plate": ["put the banana on the plate", "place the block onto the plate",
                                       "move the can to the plate", "set the apple on the dish"],
    "the object is taken off the plate": ["take the banana off the plate", "remove the can from the plate",
                                          "clear the block away from the plate"],
    "the cloth folds in half": ["fold the towel in half", "fold the cloth corner to corner", "double the napkin over"],
    "the cloth unfolds": ["unfold the cloth", "spread the towel out flat", "flatten the napkin"],
}
HELD_OUT = json.loads((Path(__file__).parent / "heldout_phrasings.json").read_text())
"""8 phrasings per motion and 10 other tasks, written by someone who had not seen the word lists
(and never tuned against): the measurement of how users' words map."""


def test_phrasings_map_to_their_motion():
    wrong = [(text, match_task(text, PROMPTS).prompt) for prompt, texts in PHRASINGS.items() for text in texts
             if match_task(text, PROMPTS).prompt != prompt]
    assert wrong == []
    assert sum(map(len, PHRASINGS.values())) == 28
    wrong = [(text, match_task(text, ALL_PROMPTS).prompt) for prompt, texts in {**PHRASINGS, **PICK_AND_FOLD}.items()
             for text in texts if match_task(text, ALL_PROMPTS).prompt != prompt]
    assert wrong == []


def _read(text: str) -> str:
    try:
        return match_task(text, ALL_PROMPTS).prompt
    except InputError:
        return "unknown"


def test_held_out_phrasings_map_to_their_motion():
    # measured 69/74 when the file was written (before any change of the word lists): the
    # misses are two-direction wordings ("bend the lamp's head back up", "open up the folded
    # cloth", "undo the fold"), "aim the desk lamp higher", and a fold said without "fold"
    results = [(motion, text, _read(text)) for motion, texts in HELD_OUT.items() for text in texts]
    right = sum(motion == read for motion, _, read in results)
    assert len(results) == 74 and right >= 69, [r for r in results if r[0] != r[2]]
    unknown = [r for r in results if r[0] == "unknown"]
    assert all(read == "unknown" for _, _, read in unknown), unknown  # never a wrong motion for another task


@pytest.mark.parametrize("text", ["put the banana on the plate", "fold the towel in half", "wave hello",
                                  "move the laptop", "open and close the lid", "lower the lamp"])
def test_tasks_it_cannot_do_are_refused_naming_what_it_knows(text):
    prompts = PROMPTS[:2] if text == "lower the lamp" else PROMPTS  # a prior without the lamp
    with pytest.raises(InputError) as info:
        match_task(text, prompts)
    message = str(info.value)
    assert "close a laptop lid" in message and "Wan 2.2" in message and "\n" not in message


def _scene(*names: str) -> Scene:
    box = np.random.default_rng(0).uniform(0, 0.1, (20, 3))
    objects = {n: SceneObject(n, "points", box, static=n == "table") for n in ("table", *names)}
    return Scene(objects, "test.ply")


def test_the_named_object_is_found_by_its_noun():
    match = match_task("lower the lamp", PROMPTS)
    assert named_object(_scene("desk_lamp", "laptop", "mug"), match) == "desk_lamp"
    assert named_object(_scene("object_0", "object_1"), match) is None  # unnamed segments: the prior decides
    with pytest.raises(InputError, match="several"):
        named_object(_scene("lamp_1", "lamp_2"), match)
    pick = match_task("put the banana on the plate", ALL_PROMPTS)
    assert named_object(_scene("banana", "block", "plate", "lamp"), pick) == "banana"  # the very noun first
    assert named_object(_scene("red_block", "plate"), match_task("place the cube on the plate", ALL_PROMPTS)) == \
        "red_block"  # else a word of its family
    with pytest.raises(InputError, match="names a lamp and the scan has none"):  # a named scan without one
        named_object(_scene("laptop", "mug"), match)


def test_a_pick_frames_the_plate_it_puts_its_object_on():
    """The prior's cameras keep a pick's plate in view (the clips frame the object's whole
    path); other motions frame only what moves."""
    scene = _scene("banana", "dinner_plate", "mug", "lamp")
    assert destinations(scene, match_task("put the banana on the plate", ALL_PROMPTS), "banana") == ("dinner_plate",)
    assert destinations(scene, match_task("take the banana off the dish", ALL_PROMPTS), "banana") == ("dinner_plate",)
    assert destinations(_scene("banana", "mug"), match_task("put the banana on the plate", ALL_PROMPTS), "banana") == ()
    assert destinations(scene, match_task("lower the lamp", ALL_PROMPTS), "lamp") == ()
