"""Task text as users write it -> the shipped prior's motions; unknown tasks refused; the named
object found in the scan."""

from __future__ import annotations

import numpy as np
import pytest

from chord_robot.app.tasktext import match_task, named_object
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
"""Phrasings the word lists were not written from (besides the prompts themselves)."""


def test_phrasings_map_to_their_motion():
    wrong = [(text, match_task(text, PROMPTS).prompt) for prompt, texts in PHRASINGS.items() for text in texts
             if match_task(text, PROMPTS).prompt != prompt]
    assert wrong == []
    assert sum(map(len, PHRASINGS.values())) == 28


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
