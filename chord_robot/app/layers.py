"""The import graph of the project's packages, checked against the layer rule (DESIGN.md §1).

    python -m chord_robot.app.layers            # a summary and every break (exit 1 if any)
    python -m chord_robot.app.layers --edges    # also every arrow between project modules

Layers:
    0  `chord_robot/*.py` (the data contracts): the standard library, numpy, scipy, trimesh
       and zarr, and other layer-0 modules only.
    1  `flowgen`, `planning`, `sim`, `hardware`: layer 0 and their own package only; never a
       sibling.
    2  `chord_robot.app`: anything.

The package's own `chord_robot/__init__.py` is the front door: it may reach the application
(the Python API) only lazily, inside a function, so importing any contract stays light.

Every import counts, at module level or inside a function (a lazy import is still an arrow).
Read from the source files with `ast`; nothing is imported.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository (or site-packages) folder holding the five packages."""
LAYER1 = ("flowgen", "planning", "sim", "hardware")
PACKAGES = ("chord_robot", *LAYER1)
LAYER0_THIRD_PARTY = frozenset({"numpy", "scipy", "trimesh", "zarr"})
"""What layer 0 may import besides the standard library and itself."""


@dataclass(frozen=True)
class Edge:
    """One import of a project module by another.

    Attributes:
        source: the importing module (dotted).
        target: the imported module (dotted; for ``from a import b``, ``a``).
        line: line number in the source file.
        lazy: the import sits inside a function.
    """

    source: str
    target: str
    line: int
    lazy: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    """``chord_robot/app/cli.py`` -> ``chord_robot.app.cli``; a package's ``__init__`` -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """0, 1 or 2 for a project module (see the module docstring)."""
    top = module.split(".")[0]
    if top in LAYER1:
        return 1
    return 2 if module == "chord_robot.app" or module.startswith("chord_robot.app.") else 0


def _imports(tree: ast.Module, module: str, is_package: bool):
    """(target, line, lazy) for every import in a parsed module; relative imports resolved."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)

    def visit(node: ast.AST, lazy: bool):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, functions)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, inner
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                yield target, child.lineno, inner
            yield from visit(child, inner)

    yield from visit(tree, False)


def scan(root: Path = ROOT) -> tuple[list[Edge], dict[str, set[str]], dict[str, int]]:
    """Read every module of the five packages under ``root``.

    Returns:
        (edges between project modules, third-party top-level imports per layer-0 module,
        line counts per module).
    """
    edges: list[Edge] = []
    third_party: dict[str, set[str]] = {}
    lengths: dict[str, int] = {}
    stdlib = set(sys.stdlib_module_names)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            text = path.read_text(encoding="utf-8")
            lengths[module] = text.count("\n") + (not text.endswith("\n") and bool(text))
            for target, line, lazy in _imports(ast.parse(text, str(path)), module, path.stem == "__init__"):
                top = target.split(".")[0]
                if top in PACKAGES:
                    edges.append(Edge(module, target, line, lazy))
                elif layer(module) == 0 and top not in stdlib and top != "__future__":
                    third_party.setdefault(module, set()).add(top)
    return edges, third_party, lengths


def breaks(edges: list[Edge], third_party: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the layer rule, one line each (empty when the house is in order)."""
    found = []
    for e in edges:
        src, dst = layer(e.source), layer(e.target)
        src_top, dst_top = e.source.split(".")[0], e.target.split(".")[0]
        if e.source == "chord_robot" and dst == 2:
            ok = e.lazy  # the front door reaches the application lazily
        elif src == 0:
            ok = dst == 0
        elif src == 1:
            ok = dst == 0 or dst_top == src_top
        else:
            ok = True
        if not ok:
            found.append(f"{e.source}:{e.line} (layer {src}) imports {e.target} (layer {dst})"
                         + (" inside a function" if e.lazy else ""))
    for module, tops in sorted(third_party.items()):
        extra = sorted(tops - LAYER0_THIRD_PARTY)
        if extra:
            found.append(f"{module} (layer 0) imports {', '.join(extra)}; layer 0 may use only "
                         f"{', '.join(sorted(LAYER0_THIRD_PARTY))} and the standard library")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chord_robot.app.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--edges", action="store_true", help="print every arrow between project modules")
    parser.add_argument("--root", type=Path, default=ROOT, help="folder holding the packages")
    args = parser.parse_args(argv)
    edges, third_party, lengths = scan(args.root)
    found = breaks(edges, third_party)
    if args.edges:
        for e in sorted(edges, key=lambda e: (e.source, e.line)):
            print(f"{e.source} -> {e.target}" + (" (lazy)" if e.lazy else ""))
    counts: dict[tuple[int, int], int] = {}
    for e in {(e.source, e.target) for e in edges}:
        key = (layer(e[0]), layer(e[1]))
        counts[key] = counts.get(key, 0) + 1
    longest = max(lengths, key=lengths.get)
    print(f"{len(lengths)} modules, {len({(e.source, e.target) for e in edges})} arrows between them "
          f"({', '.join(f'{a}->{b}: {n}' for (a, b), n in sorted(counts.items()))})")
    print(f"longest module: {longest} ({lengths[longest]} lines); over 500 lines: "
          f"{sum(n > 500 for n in lengths.values())}")
    print(f"layer breaks: {len(found)}")
    for line in found:
        print(f"  {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
