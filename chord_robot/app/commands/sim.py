"""`chord-robot sim`: execute a plan in PyBullet on a user's scan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def sim(
    scan: Path = typer.Option(..., help="The scan the plan was made for."),
    plan: Path = typer.Option(..., help="PLAN.zarr from `chord-robot plan`."),
    record: Optional[Path] = typer.Option(None, help="Write an MP4 of the execution here."),
    gui: bool = typer.Option(False, help="Open the PyBullet window (needs a display)."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply scan coordinates by this to get metres."),
    fps: float = typer.Option(15.0, help="Frames per simulated second of the recording."),
) -> None:
    """Execute a plan in PyBullet: the scan's objects become bodies, the robot tracks the plan."""
    from rich.console import Console
    from rich.table import Table

    from chord_robot.app import api
    from chord_robot.plans import Plan

    console = Console()
    p = Plan.load(plan)
    scene = api.load_scan(scan, up=up, scale=scale)
    with console.status(f"building the scene in PyBullet and executing {p.num_steps} waypoints over "
                        f"{p.times[-1]:.1f} s"):
        report = api.simulate(scene, p, record=record is not None, fps=fps, gui=gui)
    table = Table(title=f"executed {plan.name} on {scan.name}")
    table.add_column("quantity")
    table.add_column("value")
    table.add_row("final joint error", f"{report.final_joint_error:.4f} rad")
    table.add_row("max tracking error", f"{report.max_tracking_error:.4f} rad")
    table.add_row("simulated time", f"{report.sim_seconds:.2f} s ({report.sim_steps} steps)")
    table.add_row("contacts", ", ".join(report.contact_objects) or "none")
    table.add_row("grasped", f"{report.grasp_object} at {report.grasp_time:.2f} s" if report.grasped else "no")
    console.print(table)
    if record is not None:
        from sim.render import write_mp4

        write_mp4(record, report.frames, fps=fps)
        console.print(f"wrote {record} ({len(report.frames)} frames)")
