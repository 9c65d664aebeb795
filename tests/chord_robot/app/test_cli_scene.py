"""`chord-robot scene` through the real command line: outputs, and bad input -> exit 2, one line."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from chord_robot import synth
from chord_robot.ply import write_ply


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "chord_robot.app.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys; from chord_robot.app.cli import app; "
            "heavy = [m for m in ('torch', 'jax', 'pybullet', 'diffusers', 'open3d', 'matplotlib', 'trimesh', 'zarr') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert run("--help").returncode == 0


def test_the_process_command_freezes_its_objects_at_the_end(monkeypatch):
    """`main()` as the process's entry point freezes the garbage collector's objects when the
    command ends (the interpreter's last collection then skips them); called with arguments,
    as a library or a test does, it leaves the collector alone."""
    import gc

    from chord_robot.app.cli import main

    gc.unfreeze()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(sys, "argv", ["chord-robot", "--help"])
    try:
        with pytest.raises(SystemExit):
            main()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_scene_json_and_preview(tmp_path):
    scan = synth.write_scan(tmp_path, "points-ply", synth.tabletop(0), up="y", scale=1000.0)
    res = run("scene", scan, "--up", "y", "--scale", "0.001", "--json", tmp_path / "s.json", "--preview", tmp_path / "p.png")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["units"] == "m" and data["up"] == "z"
    assert [o["name"] for o in data["objects"]] == ["table", "object_0", "object_1", "object_2"]
    assert set(data["objects"][0]) == {"name", "kind", "num_points", "center", "extent", "static"}
    assert data["objects"][0]["static"] is True and data["objects"][1]["kind"] == "points"
    np.testing.assert_allclose(data["objects"][0]["extent"][:2], [0.9, 0.6], rtol=0.02)
    png = (tmp_path / "p.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "object_2" in res.stdout


def _label_scan(tmp_path, names):
    scan = synth.write_scan(tmp_path, "points-ply-labelled", synth.tabletop(0))
    (tmp_path / "scan.labels.json").write_text(json.dumps(names))
    return scan


def _nan_scan(tmp_path):
    pts = np.random.default_rng(0).random((100, 3)).astype(np.float32)
    pts[5, 1] = np.nan
    write_ply(tmp_path / "nan.ply", {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]})
    return tmp_path / "nan.ply"


def _flat_scan(tmp_path):
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-0.5, 0.5, (5000, 2)), rng.normal(0, 0.0005, 5000)].astype(np.float32)
    write_ply(tmp_path / "flat.ply", {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]})
    return tmp_path / "flat.ply"


def _truncated(tmp_path):
    scan = synth.write_scan(tmp_path, "mesh-ply", synth.tabletop(0))
    data = scan.read_bytes()
    scan.write_bytes(data[: len(data) // 2])
    return scan


def _file(name, content: bytes):
    def make(tmp_path):
        (tmp_path / name).write_bytes(content)
        return tmp_path / name

    return make


CASES = {
    "truncated": (_truncated, "truncated"),
    "empty": (_file("e.ply", b""), "is empty"),
    "text-named-ply": (_file("t.ply", b"just some notes\n"), "is not a PLY file"),
    "nan": (_nan_scan, "NaN or infinite coordinates"),
    "unknown-label-ids": (lambda p: _label_scan(p, {"0": "table", "7": "lamp"}), r"names ids \[7\] that no point carries"),
    "nothing-above-plane": (_flat_scan, "no object found above the support plane"),
    "missing": (lambda p: p / "nope.ply", "scan not found"),
    "bad-format": (_file("s.xyz", b"1 2 3"), "unsupported scan format"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, case):
    make, message = CASES[case]
    scan = make(tmp_path)
    out = tmp_path / "out"
    res = run("scene", scan, "--json", out / "s.json", "--preview", out / "p.png")
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists() or not any(out.iterdir())
