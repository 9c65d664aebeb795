"""`chord-robot plan`: scan + task (+ a flow, or one generated first) -> grasp + flow-aligned trajectory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def plan(
    scan: Path = typer.Option(..., help="The scan (PLY, OBJ, GLB or scene.toml)."),
    task: str = typer.Option(..., help="The task in words, e.g. 'lower the lamp'."),
    out: Path = typer.Option(Path("plan.zarr"), "-o", "--out", help="Write PLAN.zarr here."),
    flow: Optional[Path] = typer.Option(None, help="FLOW.zarr from `chord-robot flow`; if not given, one is generated from the task (the shipped prior, or --model) and written beside the plan as PLAN.flow.zarr."),
    model: Optional[Path] = typer.Option(None, help="Generating: Wan 2.2-layout weights to distil from (default: the shipped prior)."),
    object_name: Optional[str] = typer.Option(None, "--object", help="The object to move and manipulate (default: the one the task names, else the one the flow moves most)."),
    mode: str = typer.Option("auto", help="grasp | push | auto (grasp if reachable, else push)."),
    robot: str = typer.Option("panda", help="Robot model."),
    robot_base: Optional[str] = typer.Option(None, help="Robot base 'x,y,z,yaw' (metres, degrees); default: placed automatically."),
    preset: str = typer.Option("default", help="Planner preset: default | fast."),
    seed: int = typer.Option(0, help="Seed of grasp sampling and of the flow generation."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing plan (and generated flow)."),
    allow_cpu: bool = typer.Option(False, "--allow-cpu", help="Generating with --model: run Wan without a CUDA GPU."),
    up: str = typer.Option("z", help="The scan's up axis: z or y."),
    scale: float = typer.Option(1.0, help="Multiply scan coordinates by this to get metres."),
) -> None:
    """Propose a grasp on the moving object and optimise a trajectory that makes it follow the
    flow; without --flow the flow is generated from the task first."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chord_robot.app import api
    from chord_robot.errors import InputError
    from chord_robot.flow import ObjectFlow

    flow_out = out.with_name(out.name.removesuffix(".zarr") + ".flow.zarr")
    for path in (out, *([] if flow else [flow_out])):
        if path.exists() and not force:
            raise InputError(f"{path} exists; pass --force to overwrite it, or choose another -o")
    console = Console()
    start = time.perf_counter()
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[note]}"))
    with Progress(*columns, console=console) as bar:
        stages = {s: bar.add_task(s, total=1, start=False, note="") for s in
                  ("load", *(() if flow else ("generate",)), "plan")}

        def begin(name: str, note: str = "") -> None:
            for other, job in stages.items():
                if other != name and bar.tasks[job].started and not bar.tasks[job].finished:
                    bar.update(job, completed=bar.tasks[job].total)
                    bar.stop_task(job)
            bar.start_task(stages[name])
            bar.update(stages[name], note=note)

        begin("load")
        scene = api.load_scan(scan, up=up, scale=scale)
        if flow is not None:
            f = ObjectFlow.load(flow)
        else:
            begin("generate", "reading the task")

            def progress(done: int, total: int, terms: dict) -> None:
                bar.update(stages["generate"], total=total, completed=done,
                           note=f"loss {terms.get('total', float('nan')):.4g}")

            f = api.generate_flow(scene, task, model=model, object_name=object_name, allow_cpu=allow_cpu,
                                  output=flow_out, seed=seed, progress=progress,
                                  log=lambda m: bar.console.print(f"  {m}"))
        begin("plan", "grasp proposals, reachability, trajectory optimisation")
        result = api.plan(scene, f, object_name=object_name, mode=mode, robot=robot, robot_base=robot_base,
                          preset=preset, seed=seed, log=lambda m: bar.console.print(f"  {m}"))
        result.save(out)
        begin("plan")
        bar.update(stages["plan"], completed=1)
    from planning import describe

    console.print(describe(result))
    console.print(f"wrote {out}" + ("" if flow else f" and {flow_out}")
                  + f" ({result.num_steps} steps, {result.times[-1]:.1f} s of motion; {time.perf_counter() - start:.0f} s)")
