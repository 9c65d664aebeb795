"""`chord-robot render`: a video of an ObjectFlow or a plan, or the first frame of a scan."""

from __future__ import annotations

from pathlib import Path

import typer


def render(
    flow: Path | None = typer.Argument(None, help="FLOW.zarr from `chord-robot flow`, or PLAN.zarr from "
                                       "`chord-robot plan` (or give --scan)."),
    out: Path = typer.Option(..., "-o", "--out", help="Write the video here (.mp4, .gif ...); with --scan the "
                             "image (.png, .jpg), its camera JSON beside it (first.png -> first.json)."),
    camera: Path | None = typer.Option(None, help="Camera JSON (the first camera of a list); default: a view framing "
                                       "every object. With --scan: 'auto' (default) frames the movable objects "
                                       "from the scan alone."),
    scan: Path | None = typer.Option(None, help="Render this scan's first frame instead (flowgen's Gaussians of "
                                     "the scan at rest): the image an image-to-video model starts from."),
    up: str = typer.Option("z", help="With --scan: the scan's up axis (z or y)."),
    width: int = typer.Option(480, help="Image width when the camera is chosen automatically."),
    height: int = typer.Option(360, help="Image height when the camera is chosen automatically."),
    fps: float | None = typer.Option(None, help="Frames per second (default: the flow's; 15 for a plan)."),
    with_flow: Path | None = typer.Option(None, "--flow", help="For a PLAN.zarr: the flow it was made from (its points move with the plan)."),
) -> None:
    """Render a flow's points over time, or a plan's robot with the object (kinematically), to a video;
    or, with --scan, the scene's first frame and its camera."""
    from chord_robot.errors import InputError

    if scan is not None:
        if flow is not None:
            raise InputError("give a FLOW/PLAN store or --scan, not both")
        return render_scan_cmd(scan, out, camera, width, height, up)
    if flow is None:
        raise InputError("give a FLOW.zarr or PLAN.zarr to render, or --scan SCAN for its first frame")
    from chord_robot.app.views.playback import is_plan_store

    if is_plan_store(flow):
        from chord_robot.app.commands.render_plan import render_plan_cmd

        return render_plan_cmd(flow, out, with_flow, camera, width, height, fps if fps is not None else 15.0)
    from rich.console import Console

    from chord_robot.app.views.videos import render_flow
    from chord_robot.atomic import atomic_path
    from chord_robot.camera import load_cameras
    from chord_robot.flow import ObjectFlow

    if out.suffix.lower() not in (".mp4", ".gif", ".webm", ".mov", ".mkv", ".avi"):
        raise InputError(f"--out must be a video file (.mp4, .gif, ...), got {out.name!r}")
    if width < 16 or height < 16:
        raise InputError(f"--width and --height must be at least 16, got {width}x{height}")
    result = ObjectFlow.load(flow)
    cam = load_cameras(camera)[0] if camera is not None else None
    console = Console()
    with console.status(f"rendering {result.num_frames} frames"):
        frames = render_flow(result, cam, width - width % 2, height - height % 2)
    import imageio.v3 as iio

    rate = fps if fps is not None else result.fps
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".gif":
            iio.imwrite(tmp, frames, duration=1000.0 / rate, loop=0)
        else:
            iio.imwrite(tmp, frames, fps=rate, macro_block_size=2)
    console.print(f"wrote {out} ({len(frames)} frames, {frames.shape[2]}x{frames.shape[1]})")


def render_scan_cmd(scan: Path, out: Path, camera: Path | None, width: int, height: int, up: str) -> None:
    """`render --scan`: the first frame (PNG/JPG) and its camera JSON, written atomically."""
    import imageio.v3 as iio
    from rich.console import Console

    from chord_robot.app.scenes import load_scene
    from chord_robot.app.views.scan_render import auto_camera, render_scene
    from chord_robot.atomic import atomic_path
    from chord_robot.camera import load_cameras, save_cameras
    from chord_robot.errors import InputError

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"with --scan, --out must be an image (.png or .jpg), got {out.name!r}")
    if width < 16 or height < 16:
        raise InputError(f"--width and --height must be at least 16, got {width}x{height}")
    camera_out = out.with_suffix(".json")
    scene = load_scene(scan, up=up)
    automatic = camera is None or str(camera) == "auto"
    cam = auto_camera(scene, width, height) if automatic else load_cameras(camera)[0]
    console = Console()
    with console.status(f"rendering {scan.name} ({len(scene.objects)} objects)"):
        image = render_scene(scene, cam)
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, image, extension=out.suffix)
    if automatic:
        save_cameras(camera_out, cam)
    console.print(f"wrote {out} ({cam.width}x{cam.height})" + (f" and its camera {camera_out}" if automatic else ""))
