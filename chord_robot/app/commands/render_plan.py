"""`chord-robot render PLAN.zarr`: a video of the robot executing a plan, with the flow's points."""

from __future__ import annotations

from pathlib import Path

import typer


def render_plan_cmd(
    plan: Path = typer.Argument(..., help="PLAN.zarr from `chord-robot plan`."),
    out: Path = typer.Option(..., "-o", "--out", help="Write the MP4 here."),
    flow: Path | None = typer.Option(
        None, help="FLOW.zarr the plan was made from: its points move with the plan."
    ),
    camera: Path | None = typer.Option(
        None,
        help="Camera JSON (the first camera of a list); default: a view framing the robot and the points.",
    ),
    width: int = typer.Option(
        480, help="Image width when the camera is chosen automatically (even)."
    ),
    height: int = typer.Option(
        360, help="Image height when the camera is chosen automatically (even)."
    ),
    fps: float = typer.Option(
        15.0, help="Frames per second of plan time: the video has ceil(duration * fps) + 1 frames."
    ),
) -> None:
    """Render the robot moving along the plan (kinematically, no physics) to an MP4."""
    from rich.progress import Progress

    from chord_robot.app.views.plan_render import render_plan
    from chord_robot.app.views.playback import video_times
    from chord_robot.camera import load_cameras
    from chord_robot.errors import InputError
    from chord_robot.flow import ObjectFlow
    from chord_robot.plans import Plan

    if out.suffix.lower() != ".mp4":
        raise InputError(f"--out must be an .mp4 file, got {out.name!r}")
    p = Plan.load(plan)
    f = ObjectFlow.load(flow) if flow is not None else None
    cam = load_cameras(camera)[0] if camera is not None else None
    total = len(video_times(float(p.times[-1]), fps))
    with Progress(transient=True) as progress:
        task = progress.add_task(f"rendering {total} frames", total=total)
        n = render_plan(
            p,
            f,
            out,
            cam,
            width,
            height,
            fps,
            on_frame=lambda i: progress.update(task, completed=i + 1),
        )
    w, h = (cam.width, cam.height) if cam is not None else (width, height)
    print(f"wrote {out} ({n} frames, {w}x{h}, {fps:g} fps, {p.times[-1]:.2f} s of plan)")
