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
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from chord_robot.app.scenes import load_scene
    from chord_robot.camera import frame_points
    from chord_robot.plans import Plan

    console = Console()
    p = Plan.load(plan)
    scene = load_scene(scan, up=up, scale=scale)
    if p.object not in scene.objects:
        from chord_robot.errors import InputError

        raise InputError(f"the plan manipulates {p.object!r}, which {scan} does not contain ({', '.join(scene.objects)})")

    from sim import world as simworld
    from sim.execute import execute
    from sim.render import Recorder, write_mp4
    from sim.scene import scene_bodies

    world = simworld.create(direct=not gui, table=False)
    try:
        with console.status("building the scene in PyBullet (convex decomposition of movable objects)"):
            bodies = scene_bodies(world, scene)
        panda = simworld.load_panda(world, base_pose=p.robot_base, joints=p.joints[0])
        recorder = None
        if record is not None:
            pts = np.concatenate([o.points for o in scene.movable().values()] + [p.ee_poses[:, 4:]])
            recorder = Recorder(frame_points(pts, 480, 360, margin=1.6), fps=fps)
        with console.status(f"executing {p.num_steps} waypoints over {p.times[-1]:.1f} s"):
            report = execute(world, panda, p, bodies, on_step=(lambda t: recorder.maybe_capture(world, t)) if recorder else None)
    finally:
        world.close()
    table = Table(title=f"executed {plan.name} on {scan.name}")
    table.add_column("quantity")
    table.add_column("value")
    table.add_row("final joint error", f"{report.final_joint_error:.4f} rad")
    table.add_row("max tracking error", f"{report.max_tracking_error:.4f} rad")
    table.add_row("simulated time", f"{report.sim_seconds:.2f} s ({report.sim_steps} steps)")
    table.add_row("contacts", ", ".join(report.contact_objects) or "none")
    table.add_row("grasped", f"{report.grasp_object} at {report.grasp_time:.2f} s" if report.grasped else "no")
    console.print(table)
    if recorder is not None:
        write_mp4(record, recorder.video(), fps=fps)
        console.print(f"wrote {record} ({len(recorder.frames)} frames)")
