"""scripts/flow_parts.py: the parts the distillation makes of a task's scan, and where each turns."""

from __future__ import annotations

import json

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("flow_parts")


@pytest.mark.slow
def test_the_parts_of_a_laptop_and_a_lamp_and_their_pivots(script, tmp_path):
    script.main(["close-laptop", "100", "-o", str(tmp_path / "laptop.json")])
    (row,) = json.loads((tmp_path / "laptop.json").read_text())
    assert row["model"].endswith("shipped/model")  # the model the task's words choose
    laptop = row["objects"]["laptop"]["parts"]
    assert len(laptop) == 2
    base, lid = sorted(laptop, key=lambda p: p["links"]["lid"])
    assert base["rests_on_static"] and not lid["rests_on_static"] and lid["hangs_from"] == base["part"]
    assert base["hangs_from"] == -1 and "pivot_off_joint_axis_mm" not in base
    assert lid["links"]["lid"] > 0.99 * lid["gaussians"]
    assert lid["pivot_off_joint_axis_mm"] < 2.0  # the lid turns about its hinge (0.7 mm measured)
    lamp = script.parts_of("lower-lamp", 100, None)["objects"]["lamp"]
    assert len(lamp["parts"]) == 3
    disc, arm, shade = sorted(lamp["parts"], key=lambda p: p["height_m"][0] + p["height_m"][1])
    assert disc["rests_on_static"] and arm["hangs_from"] == disc["part"] and shade["hangs_from"] == arm["part"]
    assert shade["links"] == {"base": 0, "arm": 0, "head": shade["gaussians"]}
    assert "pivot_off_joint_axis_mm" not in shade  # hung from the arm, not the still part
    # the arm's part carries the base's post and the head's neck (their insides overlap the
    # arm's), so it turns where the post stands on the disc, 40 mm below the arm's joint
    assert arm["links"]["base"] > 150 and arm["links"]["head"] > 50
    assert 38.0 < arm["pivot_below_joint_mm"] < 42.0 and 38.0 < arm["pivot_off_joint_axis_mm"] < 42.0
    assert abs(lamp["joint"][2] - arm["pivot"][2] - 0.040) < 0.002
