"""`chord-robot plan`: grasp + flow-aligned trajectory for a scan and a flow."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def plan(
    scan: Path = typer.Option(..., help="The scan (PLY, OBJ, GLB or scene.toml)."),
    task: str = typer.Option(..., help="The task in words, e.g. 'lower the lamp'."),
    out: Path = typer.Option(..., "-o", "--out", help="Write PLAN.zarr here."),
    flow: Optional[Path] = typer.Option(None, help="FLOW.zarr from `chord-robot flow`; generated first if not given."),
    object_name: Optional[str] = typer.Option(None, "--object", help="The object to manipulate (default: the one the flow moves most)."),
    mode: str = typer.Option("auto", help="grasp | push | auto (grasp if reachable, else push)."),
    robot: str = typer.Option("panda", help="Robot model."),
    robot_base: Optional[str] = typer.Option(None, help="Robot base 'x,y,z,yaw' (metres, degrees); default: placed automatically."),
    preset: str = typer.Option("default", help="Planner preset: default | fast."),
    seed: int = typer.Option(0, help="Seed of grasp sampling."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply scan coordinates by this to get metres."),
) -> None:
    """Propose a grasp on the moving object and optimise a trajectory that makes it follow the flow."""
    from rich.console import Console

    from chord_robot.app import api
    from chord_robot.errors import InputError
    from chord_robot.flow import ObjectFlow

    console = Console()
    scene = api.load_scan(scan, up=up, scale=scale)
    if flow is None:
        raise InputError(
            "no --flow given: generate one first with `chord-robot flow --scan ... --task ... -o FLOW.zarr` "
            "(the video prior on a CPU, or the Wan prior on a GPU), then pass --flow FLOW.zarr"
        )
    from planning import describe

    with console.status("planning: grasp proposals, reachability, trajectory optimisation (first run compiles, ~10 s)"):
        result = api.plan(scene, ObjectFlow.load(flow), object_name=object_name, mode=mode, robot=robot,
                          robot_base=robot_base, preset=preset, seed=seed, log=lambda m: console.print(f"  {m}"))
    result.save(out)
    console.print(describe(result))
    console.print(f"wrote {out} ({result.num_steps} steps, {result.times[-1]:.1f} s)")
