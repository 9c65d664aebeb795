"""Hostile scans (issue #18): every loader, fed ~400 mutated files (truncations, bit and byte
flips in header and body, inflated element counts, NaN/inf coordinates, out-of-range face
indices, bad labels JSON and manifests, garbage, empty files), either loads a sane scene or
refuses with one line (exit 2): never a traceback, a load over 10 s, or memory past 4 GB (the
worker runs under that address-space limit)."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_loader_survives_hostile_files(tmp_path):
    report = tmp_path / "fuzz.json"
    res = subprocess.run([sys.executable, "-m", "tests.chord_robot.fuzz_scans", str(tmp_path / "cases"), str(report)],
                         capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads(report.read_text())
    outcomes = collections.Counter(r["outcome"] for r in results)
    bad = [f"{r['format']} {r['file']} {r['mutation']}: {r['outcome']} {r['detail']}" for r in results
           if r["outcome"] not in ("loaded", "refused")]
    assert not bad, "\n".join(bad)
    assert len(results) > 380 and outcomes["refused"] > 300, outcomes
    assert all(r["outcome"] == "loaded" for r in results if r["mutation"] == "none")  # the clean scans
    by_format = collections.Counter(r["format"] for r in results)
    assert len(by_format) == 9 and min(by_format.values()) >= 20, by_format  # GLB 20 ... manifest 129
