"""`chord-robot view FLOW_OR_PLAN`: an interactive 3D viewer in the browser (viser)."""

from __future__ import annotations

from pathlib import Path

import typer


def view(
    path: Path = typer.Argument(..., help="FLOW.zarr or PLAN.zarr."),
    port: int = typer.Option(
        8080, help="Port to serve on (the next free one if taken; the URL is printed)."
    ),
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind; 0.0.0.0 exposes the viewer to the network."
    ),
    flow: Path | None = typer.Option(
        None, help="With a PLAN.zarr: the FLOW.zarr it was made from, to show the objects moving."
    ),
    fps: float | None = typer.Option(
        None, help="Playback rate (default: the flow's, or 1 / dt of the plan)."
    ),
) -> None:
    """Serve a 3D view of a flow or a plan (points, trajectories, grasp, robot, time slider) until Ctrl-C."""
    import signal
    import time

    from chord_robot.app.views.viewer import ViewerConfig, open_viewer
    from chord_robot.errors import InputError

    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    if fps is not None and not fps > 0:
        raise InputError(f"--fps must be positive, got {fps}")
    viewer = open_viewer(path, flow, host=host, port=port, config=ViewerConfig(fps=fps))
    moved = "" if viewer.server.get_port() == port or port == 0 else f" (port {port} was taken)"
    print(f"viewer at {viewer.url}{moved}; Ctrl-C to stop", flush=True)
    # Ctrl-C and SIGTERM stop the server cleanly, even when started from a non-interactive
    # shell's background job (which starts Python with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()
