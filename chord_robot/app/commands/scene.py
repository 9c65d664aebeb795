"""`chord-robot scene`: load and segment a scan, print its objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


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

    from chord_robot.app.scenes import load_scene
    from chord_robot.atomic import write_text_atomic

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
        from chord_robot.app.views.preview import write_preview

        write_preview(s, preview)
        console.print(f"wrote {preview}")
