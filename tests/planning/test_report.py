"""The terminal summary of a plan."""

from __future__ import annotations


def test_describe_reports_grasp_error_and_time(plans):
    from planning.report import describe

    text = describe(plans["arc"][1])
    assert "grasp 'object'" in text and "alignment error: mean" in text and "solve" in text
