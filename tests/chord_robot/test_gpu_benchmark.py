"""benchmarks/gpu_iteration.py (issue #19 item 6): on a machine without CUDA it exits 2 saying so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
@pytest.mark.parametrize("extra", [[], ["--device", "cpu"]])
def test_the_gpu_benchmark_exits_2_without_cuda(extra):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_iteration.py"), *extra],
                         check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and ("needs a CUDA GPU" in lines[0] or "only --tiny runs" in lines[0]), res.stderr
