"""The `chord-robot` command line. It picks presets, applies overrides and calls the library.

Heavy libraries (torch, jax, pybullet, diffusers, open3d, matplotlib) are imported inside the
commands that need them, so `chord-robot --help` is instant. A `ChordError` becomes one line on
stderr and its exit code (2 bad input, 1 the task failed); nothing is half-written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from chord_robot.errors import ChordError

app = typer.Typer(
    name="chord-robot",
    help="Robot manipulation from generated 3D object flow (CHORD): scan + task -> flow -> plan -> robot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Robot manipulation from generated 3D object flow (CHORD): scan + task -> flow -> plan -> robot."""


@app.command()
def scene(
    scan: Path = typer.Argument(..., help="Scan file: PLY (mesh, points, 3DGS), OBJ, GLB, or scene.toml."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply coordinates by this to get metres (0.001 for mm)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the object list as JSON here."),
    preview: Optional[Path] = typer.Option(None, help="Write a PNG with top and side views here."),
) -> None:
    """Load and segment a scan; print its objects (name, kind, points, centre, size)."""
    from rich.console import Console
    from rich.table import Table

    from chord_robot.atomic import write_text_atomic
    from chord_robot.pipeline import load_scene

    s = load_scene(scan, up=up, scale=scale)
    console = Console()
    for note in s.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    table = Table(title=f"{scan.name}: {len(s.objects)} objects (metres, z up)")
    for col in ("name", "kind", "points", "centre (x, y, z)", "size (dx, dy, dz)", "static"):
        table.add_column(col)
    summary = s.summary()
    for o in summary["objects"]:
        table.add_row(
            o["name"], o["kind"], f"{o['num_points']:,}",
            ", ".join(f"{v:+.3f}" for v in o["center"]), ", ".join(f"{v:.3f}" for v in o["extent"]),
            "yes" if o["static"] else "",
        )
    console.print(table)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(summary, indent=2))
        console.print(f"wrote {json_out}")
    if preview is not None:
        from chord_robot.preview import write_preview

        write_preview(s, preview)
        console.print(f"wrote {preview}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning project errors into one line and an exit code.

    Usage errors are typer's own (exit 2); a ChordError prints ``error: ...`` and exits with
    its code; anything else is a bug and keeps its traceback.
    """
    try:
        app(args=argv, prog_name="chord-robot")
    except ChordError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
