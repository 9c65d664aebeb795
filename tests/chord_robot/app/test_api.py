"""The Python API at the front door: the README's example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_api_is_the_packages_front_door_and_imports_lazily():
    code = ("import sys, chord_robot; "
            "print(all(callable(getattr(chord_robot, n)) for n in chord_robot.__all__[1:]), "
            "[m for m in ('torch', 'jax', 'pybullet', 'chord_robot.app.api') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "True []"


@pytest.mark.parametrize(("given", "want"), [(None, "10000"), ("250000", "250000")])
def test_importing_either_package_shortens_openmps_spin_before_torch_loads(given, want):
    """GNU OpenMP reads GOMP_SPINCOUNT when torch loads: importing chord_robot or flowgen sets
    it first, without importing torch (a value in the environment is kept)."""
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"} | ({"GOMP_SPINCOUNT": given} if given else {})
    for package in ("chord_robot", "flowgen"):
        code = f"import os, sys, {package}; print('torch' in sys.modules, os.environ['GOMP_SPINCOUNT'])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
        assert out.stdout.split() == ["False", want], (package, out.stdout)


@pytest.mark.slow
def test_readme_example_runs_the_chain():
    # ~60-90 s: a 240-iteration fit of the example's video, a plan, PyBullet on the scan's objects
    # (there the laptop is one rigid body: the hand reaches and touches it, the lid cannot turn)
    code = readme_example()
    code += ("\nassert plan.object == 'laptop' and plan.mode in ('grasp', 'push'), (plan.object, plan.mode)"
             "\nassert result.sim_seconds >= plan.times[-1] - 1e-6, (result.sim_seconds, plan.times[-1])"
             "\nassert 'laptop' in result.contact_objects, result.contact_objects"
             "\nprint('flow', flow.num_frames, len(flow.objects['laptop'].points))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"^flow 11 \d+$", out.stdout, re.M), out.stdout
