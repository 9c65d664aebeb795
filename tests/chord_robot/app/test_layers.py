"""The layer rule (DESIGN.md §1) holds over the whole code base, and the checker finds a break."""

from __future__ import annotations

from pathlib import Path

from chord_robot.app import layers


def test_the_packages_have_no_layer_break():
    edges, third_party, _ = layers.scan()
    assert len(edges) > 300  # the graph was read, not skipped
    assert layers.breaks(edges, third_party) == []


def test_no_module_is_over_500_lines():
    _, _, lengths = layers.scan()
    long = {m: n for m, n in lengths.items() if n > 500}
    assert long == {}


def _package(root: Path, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_breaks_are_found_lazy_or_not(tmp_path):
    _package(tmp_path, "chord_robot", {
        "__init__.py": "def api():\n    from chord_robot.app import flowrun\n",
        "scene.py": "import numpy\nimport torch\n",
        "flow.py": "def f():\n    from planning import trajopt\n",
        "app/__init__.py": "",
        "app/cli.py": "import flowgen\nimport sim\n",
    })
    _package(tmp_path, "flowgen", {"__init__.py": "from chord_robot import scene\n",
                                   "model.py": "from .fenwick import x\nfrom sim import world\n"})
    for name in ("planning", "sim", "hardware"):
        _package(tmp_path, name, {"__init__.py": ""})
    edges, third_party, lengths = layers.scan(tmp_path)
    found = layers.breaks(edges, third_party)
    assert sorted(found) == sorted([
        "chord_robot.flow:2 (layer 0) imports planning (layer 1) inside a function",
        "flowgen.model:2 (layer 1) imports sim (layer 1)",
        "chord_robot.scene (layer 0) imports torch; layer 0 may use only numpy, scipy, trimesh, zarr "
        "and the standard library",
    ])
    assert ("flowgen.model", "flowgen.fenwick") in {(e.source, e.target) for e in edges}  # relative import
    assert lengths["chord_robot.app.cli"] == 2
