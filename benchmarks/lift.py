"""Video lifting with and without privileged inputs (issue #17): a hinged box whose lid turns
60 degrees, filmed by PyBullet's TinyRenderer (not flowgen's rasteriser) from one camera, lifted
by `chord-robot flow --prior video --preset cpu` (a) with the object-free background image and
(b) without one (the static scene rendered from the scan instead, as for a user's video).

    python benchmarks/lift.py OUT

Prints and writes OUT/lift.json: per variant the lid's mean and final-frame error and the
base's drift (mm, against the analytic hinge at the scan's vertices) and the wall time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(out: Path) -> dict:
    from chord_robot import synth
    from chord_robot.flow import ObjectFlow
    from tests.chord_robot.app.test_cli_flow import run
    from tests.flowgen.hinge_video import render_clip
    from tests.flowgen.test_recovery import recovery_errors

    out.mkdir(parents=True, exist_ok=True)
    box = synth.hinged_box()
    scan = synth.write_hinged_box_scan(out, box)
    clip = render_clip(box, out)
    report = {}
    for variant, extra in (("with background", ["--background", clip.background]), ("without background", [])):
        flow_path = out / f"flow-{'bg' if extra else 'nobg'}.zarr"
        start = time.perf_counter()
        res = run("flow", "--scan", scan, "--task", "open the lid", "--prior", "video", "--video", clip.video,
                  "--camera", clip.camera, *extra, "--preset", "cpu", "-o", flow_path, timeout=900)
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            report[variant] = {"error": res.stderr.strip().splitlines()[-1:]}
            continue
        figures = recovery_errors(ObjectFlow.load(flow_path), box)
        report[variant] = {k: round(v, 1) for k, v in figures.items() if not isinstance(v, list)}
        report[variant]["seconds"] = round(seconds, 1)
        print(variant, json.dumps(report[variant]), flush=True)
    (out / "lift.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]))
