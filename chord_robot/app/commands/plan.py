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
    import numpy as np
    from rich.console import Console

    from chord_robot.app.scenes import load_scene
    from chord_robot.errors import InputError
    from chord_robot.flow import ObjectFlow

    console = Console()
    scene = load_scene(scan, up=up, scale=scale)
    if flow is None:
        raise InputError(
            "no --flow given: generate one first with `chord-robot flow --scan ... --task ... -o FLOW.zarr` "
            "(the video prior on a CPU, or the Wan prior on a GPU), then pass --flow FLOW.zarr"
        )
    f = ObjectFlow.load(flow)
    if mode not in ("grasp", "push", "auto"):
        raise InputError(f"--mode must be grasp, push or auto, got {mode!r}")
    missing = [n for n in f.moving() if n not in scene.objects]
    if missing:
        raise InputError(f"the flow moves {', '.join(missing)}, which {scan} does not contain; was it made for another scan?")

    from loguru import logger

    logger.disable("jaxls")
    from planning import (
        PRESETS,
        ROBOTS,
        FlowPlanner,
        describe,
        enable_compilation_cache,
        parse_base,
    )

    if robot not in ROBOTS:
        raise InputError(f"unknown robot {robot!r}; available: {', '.join(ROBOTS)}")
    if preset not in PRESETS:
        raise InputError(f"unknown planner preset {preset!r}; available: {', '.join(PRESETS)}")
    enable_compilation_cache()
    rng = np.random.default_rng(seed)
    points = {name: o.surface_points(4096, rng) if o.kind == "mesh" else o.points for name, o in scene.objects.items()}
    base = parse_base(robot_base) if robot_base else None
    planner = FlowPlanner(PRESETS[preset](robot=ROBOTS[robot]()))
    with console.status("planning: grasp proposals, reachability, trajectory optimisation (first run compiles, ~10 s)"):
        result = planner.plan(f, points, object_name=object_name, base=base, mode=mode, rng=rng,
                              log=lambda m: console.print(f"  {m}"))
    result.save(out)
    console.print(describe(result))
    console.print(f"wrote {out} ({result.num_steps} steps, {result.times[-1]:.1f} s)")
