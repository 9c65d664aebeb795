"""scripts/flow_parts.py: the parts the distillation makes of a task's scan, and where each turns."""

from __future__ import annotations

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("flow_parts")


@pytest.mark.slow
def test_the_parts_of_a_laptop_and_a_lamp_and_their_pivots(script):
    laptop = script.parts_of("close-laptop", 100, None)["objects"]["laptop"]["parts"]
    base, lid = sorted(laptop, key=lambda p: p["links"]["lid"])
    assert base["rests_on_static"] and not lid["rests_on_static"] and lid["hangs_from"] == base["part"]
    assert lid["links"]["lid"] > 0.99 * lid["gaussians"]
    assert lid["pivot_off_joint_axis_mm"] < 2.0  # the lid turns about its hinge (0.7 mm measured)
    lamp = script.parts_of("lower-lamp", 100, None)["objects"]["lamp"]["parts"]
    assert len(lamp) == 3
    disc, arm, shade = sorted(lamp, key=lambda p: p["height_m"][0] + p["height_m"][1])
    assert disc["rests_on_static"] and arm["hangs_from"] == disc["part"] and shade["hangs_from"] == arm["part"]
    assert shade["links"] == {"base": 0, "arm": 0, "head": shade["gaussians"]}
    # the arm's part carries the base's post and the head's neck (their insides overlap the
    # arm's), so it turns where the post stands on the disc, 40 mm below the arm's joint
    assert arm["links"]["base"] > 150 and arm["links"]["head"] > 50
    assert 38.0 < arm["pivot_off_joint_axis_mm"] < 42.0
