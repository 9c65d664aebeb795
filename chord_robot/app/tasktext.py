"""Task text as users write it -> the motion a small prior knows, and the object it names.

The shipped prior (`flowgen.priors.shipped`) is trained on a few fixed sentences ("the laptop
lid closes" ...). Users write imperatives and paraphrases ("close the laptop", "shut the lid",
"tilt the lamp head down", "put the banana on the plate", "fold the towel in half").
`match_task` reads the object family from the text's nouns and the direction from its verbs
and particles (for a plate, the preposition before it), and returns the prior's own sentence;
a text it cannot read is refused with the motions it knows. `named_object` finds the scan
object the task names, so objects the task does not name can be held still.
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
        name: the family ("laptop", "lamp", "pick", "cloth").
        nouns: words naming the object or its moving part.
        down: the prior's sentence for the closing / lowering / placing / folding motion.
        up: the prior's sentence for the opening / raising / removing / unfolding motion.
        down_words: verbs and particles of ``down``.
        up_words: verbs and particles of ``up``.
    """

    name: str
    nouns: frozenset[str]
    down: str
    up: str
    down_words: frozenset[str]
    up_words: frozenset[str]


DOWN_WORDS = frozenset({"close", "closes", "closed", "closing", "shut", "shuts", "shutting", "lower", "lowers",
                        "lowering", "down", "downward", "downwards", "dip", "dips", "drop", "drops", "droop", "fold",
                        "folds", "bend", "bends", "bow", "nod"})
"""Verbs and particles of the closing / lowering motion."""
UP_WORDS = frozenset({"open", "opens", "opened", "opening", "raise", "raises", "raising", "lift", "lifts",
                      "lifting", "up", "upward", "upwards", "unfold", "unfolds", "flip", "pop"})
"""Verbs and particles of the opening / raising motion."""
ONTO_WORDS = frozenset({"on", "onto", "to", "into", "in", "put", "puts", "place", "places", "placed", "set", "sets",
                        "lay", "lays", "drop", "move", "moves", "transfer", "bring", "carry", "serve", "plate"})
"""Words of putting an object on the plate (the preposition before "plate" decides first)."""
OFF_WORDS = frozenset({"off", "from", "remove", "removes", "removed", "take", "takes", "clear", "away", "unload",
                       "empty", "back"})
"""Words of taking it off the plate."""
FOLD_WORDS = frozenset({"fold", "folds", "folded", "folding", "double", "crease", "halve", "half", "halves"})
UNFOLD_WORDS = frozenset({"unfold", "unfolds", "unfolded", "unfolding", "spread", "spreads", "flatten", "flattens",
                          "flat", "open", "opens", "out", "smooth", "lay", "undo"})

FAMILIES = (
    Family("laptop", frozenset({"laptop", "laptops", "notebook", "computer", "macbook", "lid", "screen", "display"}),
           "the laptop lid closes", "the laptop lid opens", DOWN_WORDS, UP_WORDS),
    Family("lamp", frozenset({"lamp", "lamps", "light", "desklamp", "shade", "lampshade"}),
           "the lamp lowers its head", "the lamp raises its head", DOWN_WORDS, UP_WORDS),
    Family("cloth", frozenset({"cloth", "cloths", "towel", "towels", "fabric", "napkin", "napkins", "rag", "sheet",
                               "tablecloth", "handkerchief", "dishcloth", "tea", "washcloth", "cover", "blanket",
                               "scarf", "shirt", "tissue"}),
           "the cloth folds in half", "the cloth unfolds", FOLD_WORDS, UNFOLD_WORDS),
    Family("pick", frozenset({"banana", "bananas", "block", "blocks", "cube", "can", "tin", "soda", "object", "item",
                              "thing", "fruit", "apple", "orange", "toy", "brick", "cylinder", "box", "it"}),
           "the object is put on the plate", "the object is taken off the plate", ONTO_WORDS, OFF_WORDS),
)
"""The families the shipped prior knows, in the order their nouns are tried (pick last: "it"
and "object" name anything; the plate must be named for a pick)."""


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
            "the lamp lowers its head": "lower a lamp's head", "the lamp raises its head": "raise a lamp's head",
            "the object is put on the plate": "put a small object (banana, block, can) on a plate",
            "the object is taken off the plate": "take it off the plate",
            "the cloth folds in half": "fold a cloth in half", "the cloth unfolds": "unfold a cloth"}
    return ", ".join(said.get(p, repr(p)) for p in prompts)


def _plate_direction(tokens: list[str]) -> bool | None:
    """For a pick: True (onto the plate), False (off it) from the preposition before "plate"
    ("on the plate", "off the plate", "from the plate"); None when it says neither."""
    for i, t in enumerate(tokens):
        if t in ("plate", "plates", "dish", "saucer"):
            for w in reversed(tokens[max(0, i - 3):i]):
                if w in ("on", "onto", "to", "into", "in", "upon", "atop"):
                    return True
                if w in ("off", "from", "away"):
                    return False
    return None


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
    plate = any(t in ("plate", "plates", "dish", "saucer") for t in tokens)
    families = [(i, f, t) for f in FAMILIES for i, t in enumerate(tokens)
                if t in f.nouns and (f.down in prompts or f.up in prompts) and (f.name != "pick" or plate)]
    if not families:
        raise InputError(refuse)
    _, family, noun = min(families, key=lambda x: (x[1].name == "pick", x[0]))
    if family.name == "pick" and _plate_direction(tokens) is not None:
        down = _plate_direction(tokens)
        up = not down
    else:
        down = any(t in family.down_words for t in tokens)
        up = any(t in family.up_words for t in tokens)
        if family.name == "cloth" and up and any(t.startswith("unfold") or t == "spread" for t in tokens):
            down = False  # "unfold" carries "fold"'s meaning reversed; "flat" after "fold" does not
        elif family.name == "cloth" and down and up:
            up = False
    if down == up:
        raise InputError(refuse)
    prompt = family.down if down else family.up
    if prompt not in prompts:
        raise InputError(refuse)
    return TaskMatch(prompt, family.name, noun)


def destinations(scene: Scene, match: TaskMatch, moving: str | None) -> tuple[str, ...]:
    """The objects of ``scene`` a pick puts its object on or takes it from (named `plate`,
    `dish`, `saucer` ...), other than ``moving``: the prior's cameras keep them in view, as the
    clips it learnt from frame the object's whole path; () for other motions."""
    if match.family != "pick":
        return ()
    return tuple(name for name in scene.objects
                 if name != moving and any(w in ("plate", "plates", "dish", "saucer") for w in words(name)))


def named_object(scene: Scene, match: TaskMatch) -> str | None:
    """The movable object of ``scene`` that the task names: the one whose name has the task's
    noun ("banana" matches `banana`), else a word of its family ("lamp" matches `lamp`,
    `desk_lamp`); None when the objects are unnamed segments (`object_k`: the prior decides).

    Raises:
        InputError when several objects match, or when the scan names its objects and none is
        of the task's family (a task about a towel on a scan without one).
    """
    family = next(f for f in FAMILIES if f.name == match.family)
    movable = [name for name, obj in scene.objects.items() if not obj.static]
    hits = [name for name in movable if match.noun in words(name)]  # the very word first ("banana")
    hits = hits or [name for name in movable if any(w in family.nouns for w in words(name))]
    if len(hits) > 1:
        raise InputError(f"the task names a {match.noun} and the scan has several ({', '.join(hits)}); "
                         "say which with --object NAME")
    if not hits and any(not re.fullmatch(r"object_?\d+", name) for name in movable):
        raise InputError(f"the task names a {match.noun} and the scan has none (its objects: {', '.join(movable)}); "
                         "say which object with --object NAME")
    return hits[0] if hits else None
