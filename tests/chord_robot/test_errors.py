"""Typed errors: exit codes and messages."""

from __future__ import annotations

from chord_robot.errors import ConfigError, InputError, quote


def test_config_error_names_the_field_or_what_sets_it():
    e = ConfigError("iterations", "{field} must be at least 1, got 0")
    assert isinstance(e, InputError) and e.exit_code == 2
    assert str(e) == "iterations must be at least 1, got 0"
    assert e.named("--iters") == "--iters must be at least 1, got 0"


def test_a_quoted_value_with_braces_stays_text():
    e = ConfigError("mode", f"{{field}} must be grasp or push, got {quote('{x}')}")
    assert str(e) == "mode must be grasp or push, got '{x}'"
    assert e.named("--mode") == "--mode must be grasp or push, got '{x}'"
