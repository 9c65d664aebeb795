"""Task text as users write it -> the motion a small prior knows, and the object it names.

The shipped prior (`flowgen.priors.shipped`) is trained on a few fixed sentences ("the laptop
lid closes" ...). Users write imperatives and paraphrases ("close the laptop", "shut the lid",
"tilt the lamp head down"). `match_task` reads the object family from the text's nouns and
the direction from its verbs and particles, and returns the prior's own sentence; a text it
cannot read is refused with the motions it knows. `named_object` finds the scan object the
task names, so objects the task does not name can be held still.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chord_robot.errors import InputError
from chord_robot.scene import Scene


@dataclass(frozen=True)
class Family:
    """An object family the prior moves, with the words that name it and its two motions.

    Attributes:
        name: the family ("laptop", "lamp").
        nouns: words naming the object or its moving part.
        down: the prior's sentence for the closing / lowering motion.
        up: the prior's sentence for the opening / raising motion.
    """

    name: str
    nouns: frozenset[str]
    down: str
    up: str


FAMILIES = (
    Family("laptop", frozenset({"laptop", "laptops", "notebook", "computer", "macbook", "lid", "screen", "display"}),
           "the laptop lid closes", "the laptop lid opens"),
    Family("lamp", frozenset({"lamp", "lamps", "light", "desklamp", "shade", "lampshade"}),
           "the lamp lowers its head", "the lamp raises its head"),
)
"""The families the shipped prior knows, in the order their nouns are tried."""

DOWN_WORDS = frozenset({"close", "closes", "closed", "closing", "shut", "shuts", "shutting", "lower", "lowers",
                        "lowering", "down", "downward", "downwards", "dip", "dips", "drop", "drops", "droop", "fold",
                        "folds", "bend", "bends", "bow", "nod"})
"""Verbs and particles of the closing / lowering motion."""
UP_WORDS = frozenset({"open", "opens", "opened", "opening", "raise", "raises", "raising", "lift", "lifts",
                      "lifting", "up", "upward", "upwards", "unfold", "unfolds", "flip", "pop"})
"""Verbs and particles of the opening / raising motion."""


@dataclass(frozen=True)
class TaskMatch:
    """A task text read as one of the prior's motions.

    Attributes:
        prompt: the prior's sentence for the motion (its text condition).
        family: the object family (`Family.name`).
        noun: the word of the text that named the object.
    """

    prompt: str
    family: str
    noun: str


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters only; "desk_lamp" -> "desk", "lamp")."""
    return re.findall(r"[a-z]+", text.lower())


def known_motions(prompts: Iterable[str]) -> str:
    """The motions a prior knows, for a message: "close / open a laptop lid, ..."."""
    said = {"the laptop lid closes": "close a laptop lid", "the laptop lid opens": "open a laptop lid",
            "the lamp lowers its head": "lower a lamp's head", "the lamp raises its head": "raise a lamp's head"}
    return ", ".join(said.get(p, repr(p)) for p in prompts)


def match_task(text: str, prompts: Iterable[str]) -> TaskMatch:
    """The prior's motion that ``text`` asks for.

    The object is the first word naming a family the prior knows (a prompt of that family is
    among ``prompts``); the direction comes from the text's verbs and particles ("close",
    "shut", "lower", "down" / "open", "raise", "lift", "up"). The prior's own sentences match
    themselves.

    Raises:
        InputError (exit 2) naming the motions the prior knows when the text names no object
        it moves, no direction, or both directions.
    """
    prompts = tuple(prompts)
    if text.strip().lower().rstrip(".") in prompts:
        family = next(f for f in FAMILIES if text.strip().lower().rstrip(".") in (f.down, f.up))
        return TaskMatch(text.strip().lower().rstrip("."), family.name, family.name)
    tokens = words(text)
    refuse = (f"the shipped prior cannot do {text!r}: it knows {known_motions(prompts)}; open-ended tasks need "
              "the Wan 2.2 weights on a GPU (`--model DIR`)")
    families = [(i, f, t) for i, t in enumerate(tokens) for f in FAMILIES
                if t in f.nouns and (f.down in prompts or f.up in prompts)]
    if not families:
        raise InputError(refuse)
    _, family, noun = families[0]
    down = any(t in DOWN_WORDS for t in tokens)
    up = any(t in UP_WORDS for t in tokens)
    if down == up:
        raise InputError(refuse)
    prompt = family.down if down else family.up
    if prompt not in prompts:
        raise InputError(refuse)
    return TaskMatch(prompt, family.name, noun)


def named_object(scene: Scene, match: TaskMatch) -> str | None:
    """The movable object of ``scene`` that the task names: the one whose name has a word of
    the task's family ("lamp" matches `lamp`, `desk_lamp`); None when no object's name does
    (unnamed segments `object_k`: the prior decides). InputError when several do."""
    family = next(f for f in FAMILIES if f.name == match.family)
    hits = [name for name, obj in scene.objects.items()
            if not obj.static and any(w in family.nouns for w in words(name))]
    if len(hits) > 1:
        raise InputError(f"the task names a {family.name} and the scan has several ({', '.join(hits)}); "
                         "say which with --object NAME")
    return hits[0] if hits else None
