"""Typed errors. The CLI turns each into one line on stderr and an exit code.

`InputError` (exit 2) is bad input from the user: a malformed scan, a wrong shape, missing
weights, an unsafe trajectory refused before moving. `TaskFailure` (exit 1) is a well-formed
request that could not be carried out: no reachable plan, a fault during motion.
"""

from __future__ import annotations


class ChordError(Exception):
    """Base class of the project's errors; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 2


class InputError(ChordError):
    """Bad input (exit 2): the message says what is wrong and what to do."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration value out of its allowed range or set.

    The library names the config field (``field``, e.g. ``"iterations"`` or
    ``"wan.tau_schedule"``); a front end that sets the field from something else (the CLI's
    ``--iters``) re-words the message with :meth:`named`. ``message`` holds ``{field}`` where
    the name goes: ``ConfigError("iterations", "{field} must be at least 1, got 0")``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.template = message
        super().__init__(message.format(field=field))

    def named(self, name: str) -> str:
        """The message with the field called ``name`` (e.g. a command-line flag)."""
        return self.template.format(field=name)


def quote(value: object) -> str:
    """``repr(value)`` for the text of a `ConfigError` message: braces doubled, so a user's
    value is not read as a placeholder."""
    return repr(value).replace("{", "{{").replace("}", "}}")


class ScanError(InputError):
    """A scan that cannot be loaded or segmented."""


class SchemaError(InputError):
    """A zarr store or JSON file that does not follow the chord-robot schema."""


class CameraError(InputError):
    """A camera JSON that is malformed or not a rigid transform."""


class WeightsError(InputError):
    """Model weights that are not where they are expected."""


class SafetyError(InputError):
    """A trajectory the safety layer refuses to execute (nothing moved)."""


class TaskFailure(ChordError):
    """A well-formed request that could not be carried out (exit 1)."""

    exit_code = 1


class PlanningFailure(TaskFailure):
    """No reachable plan exists for the requested motion.

    ``stage`` says where planning failed, for evaluation funnels: "grasp" (no grasp or push
    proposal survived) or "reach" (proposals exist but the motion is not reachable).
    """

    def __init__(self, message: str, stage: str = "reach") -> None:
        super().__init__(message)
        if stage not in ("grasp", "reach"):
            raise ValueError(f"stage must be 'grasp' or 'reach', got {stage!r}")
        self.stage = stage


class ExecutionFault(TaskFailure):
    """A fault while the robot was moving; the arm was stopped."""
