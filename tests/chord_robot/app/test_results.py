import json

import pytest

from chord_robot.app.results import TrialResult, wilson_interval, write_results


def test_wilson_interval_known_values():
    # reference values from the closed form (e.g. Newcombe 1998 table: 7/8 -> 0.529..0.978)
    lo, hi = wilson_interval(7, 8)
    assert lo == pytest.approx(0.5291, abs=1e-3) and hi == pytest.approx(0.9776, abs=1e-3)
    lo, hi = wilson_interval(0, 8)
    assert lo == 0.0 and hi == pytest.approx(0.3244, abs=1e-3)
    lo, hi = wilson_interval(8, 8)
    assert lo == pytest.approx(0.6756, abs=1e-3) and hi == 1.0


def test_results_files(tmp_path):
    trials = {
        "close-laptop": [TrialResult(0, True, None, 5.0, {"plan": 1.0}), TrialResult(1, False, "reach", 80.0, {"plan": 2.0}),
                         TrialResult(2, False, "grasp", 100.0)],
        "pick-banana": [TrialResult(0, True, None, 0.01)],
    }
    data = write_results(tmp_path, "paper", "oracle", trials, wall_time=12.0)
    back = json.loads((tmp_path / "results.json").read_text())
    assert back == data
    entry = back["tasks"]["close-laptop"]
    assert entry["successes"] == 1 and len(entry["trials"]) == 3
    assert set(entry["trials"][1]) == {"seed", "success", "failure_stage", "failure", "verdict", "flow_note",
                                       "metric", "threshold", "times"}
    summary = (tmp_path / "summary.md").read_text()
    assert "| close-laptop | 1/3 |" in summary
    # funnel: 3 trials; none fail at reset, flow or plan, 1 at grasp, 1 at reach, 0 at execute
    assert "| close-laptop | 3 | 3 | 3 | 3 | 2 | 1 | 1 | 1 |" in summary
    assert (tmp_path / "close-laptop.png").stat().st_size > 5000


def test_trial_validation():
    with pytest.raises(ValueError):
        TrialResult(0, True, "grasp", 0.0)
    with pytest.raises(ValueError):
        TrialResult(0, False, "teleport", 0.0)


def test_comparison_in_the_papers_layout(tmp_path):
    from chord_robot.app.results import results_dict, write_comparison
    from sim.tasks.base import Metric

    lid = Metric("final lid angle", "deg", 15.0, below=True, also="base within 20 mm of its start")
    chord = {"close-laptop": [TrialResult(i, i < 7, None if i < 7 else "reach", 3.0, {}, None if i < 7 else "x", "",
                                          lid) for i in range(8)]}
    video = {"close-laptop": [TrialResult(i, i < 2, None if i < 2 else "execute", 40.0, {}, None if i < 2 else "y", "",
                                          lid) for i in range(8)]}
    text = write_comparison(tmp_path, {"chord": results_dict("paper", "chord", chord, 100.0),
                                       "video-baseline": results_dict("paper", "video-baseline", video, 50.0)})
    assert "| close-laptop | 7/8 [0.53, 0.98] | 2/8 [0.07, 0.59] |" in text
    assert "| wall time (s) | 100 | 50 |" in text
    assert "- close-laptop: final lid angle (deg); success < 15 and base within 20 mm of its start" in text
    assert "| close-laptop | 8 | 8 | 8 | 8 | 8 | 7 | 7 | 7 |" in text  # chord: 1 lost at reach
    assert "| close-laptop | 8 | 8 | 8 | 8 | 8 | 8 | 2 | 2 |" in text  # video: 6 lost at execute
    assert (tmp_path / "comparison.png").stat().st_size > 5000
