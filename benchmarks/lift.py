"""Video lifting with and without privileged inputs (issue #17): a hinged box whose lid turns,
filmed from one camera by a renderer that is not flowgen's, lifted by `chord-robot flow --prior
video --preset cpu` (a) with the object-free background image and (b) without one (the
background is then the video's first frame around the scan's box, `flowgen.priors.first_frame`).
Two clips: the project's patched hinged box filmed by PyBullet's TinyRenderer (lid opening 60
degrees), and a checkerboard box filmed by the small rasteriser of `tests/flowgen/checker_hinge.py`
(lid closing 105 -> 45 degrees).

    python benchmarks/lift.py OUT

Prints and writes OUT/lift.json: per clip and variant the lid's mean and final-frame error and
the base's drift (mm, against the analytic hinge at the scan's vertices) and the wall time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _lift(scan, clip, extra: list, flow_path: Path) -> tuple[object, float]:
    from chord_robot.flow import ObjectFlow
    from tests.chord_robot.app.test_cli_flow import run

    start = time.perf_counter()
    res = run("flow", "--scan", scan, "--task", "move the lid", "--prior", "video", "--video", clip.video,
              "--camera", clip.camera, *extra, "--preset", "cpu", "-o", flow_path, timeout=900)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        return res.stderr.strip().splitlines()[-1:], seconds
    return ObjectFlow.load(flow_path), seconds


def main(out: Path) -> dict:
    from chord_robot import synth
    from tests.flowgen import checker_hinge
    from tests.flowgen.hinge_video import render_clip
    from tests.flowgen.test_recovery import recovery_errors

    out.mkdir(parents=True, exist_ok=True)
    box = synth.hinged_box()
    hinge = (synth.write_hinged_box_scan(out, box), render_clip(box, out), lambda flow: recovery_errors(flow, box))
    checker = checker_hinge.write(out)
    clips = {"pybullet hinge": hinge, "checker box": (checker.scan, checker, lambda flow: checker_hinge.errors(flow, checker))}
    report = {}
    for name, (scan, clip, measure) in clips.items():
        for variant, extra in (("with background", ["--background", clip.background]), ("without background", [])):
            key = f"{name}, {variant}"
            flow, seconds = _lift(scan, clip, extra, out / f"{name.split()[0]}-{'bg' if extra else 'nobg'}.zarr")
            if isinstance(flow, list):
                report[key] = {"error": flow}
                continue
            report[key] = {k: round(v, 1) for k, v in measure(flow).items() if not isinstance(v, list)}
            report[key]["seconds"] = round(seconds, 1)
            print(key, json.dumps(report[key]), flush=True)
    (out / "lift.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]))
