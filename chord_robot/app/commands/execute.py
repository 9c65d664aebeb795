"""`chord-robot execute`: run a plan on a robot arm through the safety layer.

Every plan goes through `hardware.runner.prepare` (all checks, nothing touched), a summary
table and a joints-over-time PNG, then `hardware.runner.run`: connect, check the start state,
and move unless this is a dry run. A real arm is only dry-run until ``--yes`` is given.
Exit codes: 0 done, 2 refused (nothing moved), 1 a fault during motion (the arm was stopped;
the message says how far it got).
"""

from __future__ import annotations

from pathlib import Path

import typer

REAL_ARM_DEFAULT_SPEED = 0.25


def execute(
    plan: Path = typer.Option(..., "--plan", help="The plan store (PLAN.zarr) to execute."),
    robot: str | None = typer.Option(
        None, "--robot", help="sim, franka://HOST, ur://HOST or xarm://HOST (?model=xarm7 ...)."
    ),
    speed: float | None = typer.Option(
        None,
        "--speed",
        help=f"Speed scale in (0, 1]: times stretch by 1/F. Default 1 in sim, {REAL_ARM_DEFAULT_SPEED} on a real arm.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check, summarise and plot; move nothing."
    ),
    yes: bool = typer.Option(
        False, "--yes", help="Really move a real arm (without it a real arm is dry-run)."
    ),
    scan_to_robot: str | None = typer.Option(
        None,
        "--scan-to-robot",
        help="Registration scan -> robot base: a file (JSON/text 4x4) or x,y,z,qw,qx,qy,qz.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="TOML config: robot, speed, scan_to_robot, and safety, gripper and backend tables.",
    ),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Where to write the joints-over-time PNG (default: PLAN.trajectory.png beside the plan).",
    ),
) -> None:
    """Execute a plan on a robot arm through the safety layer (dry run by default on real arms)."""
    from rich.console import Console

    from chord_robot.errors import InputError
    from chord_robot.plans import Plan
    from hardware.backends import open_arm, parse_robot_address
    from hardware.config import FileConfig, load_config
    from hardware.frames import parse_transform
    from hardware.runner import prepare, run

    console = Console()
    file = load_config(config) if config is not None else FileConfig()
    robot = robot or file.robot
    if robot is None:
        raise InputError(
            "give --robot (sim, franka://HOST, ur://HOST, xarm://HOST) or robot = ... in --config"
        )
    address = parse_robot_address(robot)
    loaded = Plan.load(plan)
    registration = scan_to_robot or file.scan_to_robot
    robot_from_scan = parse_transform(registration) if registration else None
    if address.kind == "sim":
        arm = _sim_arm(loaded, robot_from_scan)
    else:
        arm = open_arm(address, file.backends.get(address.kind))
    if speed is None:
        speed = (
            file.speed
            if file.speed is not None
            else (REAL_ARM_DEFAULT_SPEED if arm.info.real else 1.0)
        )
    dry = dry_run or (arm.info.real and not yes)

    prepared = prepare(loaded, arm.info, speed, file.execute, robot_from_scan)
    _summary(console, prepared, plan)
    out = (
        plot
        if plot is not None
        else plan.parent / f"{plan.name.removesuffix('.zarr')}.trajectory.png"
    )
    write_plot(prepared, out)
    console.print(f"wrote {out}")
    result = run(arm, prepared, file.execute, dry_run=dry)
    start = result.report.get("start")
    console.print(f"start: {start.detail}")
    if not result.moved:
        why = "--dry-run" if dry_run else "a real arm without --yes"
        console.print(f"[yellow]dry run ({why}): every check passed, nothing moved[/yellow]")
        return
    console.print(
        f"[green]done[/green]: reached {result.progress.describe()}; final joint error "
        f"{result.final_error:.4f} rad; {'stopped' if result.stopped else 'STOP COMMAND FAILED'}"
    )


def _sim_arm(plan, robot_from_scan):
    """The rehearsal arm: a simulated Panda where the registration (or the plan) puts the
    robot base in the scan frame, starting at the plan's first configuration."""
    import numpy as np

    from chord_robot.app.sim_arm import PANDA_HOME, SimArm
    from chord_robot.geometry import invert, matrix_to_pose
    from hardware.robots import PANDA
    from hardware.runner import plan_columns
    from hardware.safety import Refusal

    base = plan.robot_base if robot_from_scan is None else matrix_to_pose(invert(robot_from_scan))
    try:
        start = plan.joints[0, plan_columns(plan, PANDA)]
    except Refusal:
        start = np.asarray(PANDA_HOME)
    return SimArm(base_pose=base, joints=start)


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit in ("m", "rad"):
        return f"{value:+.4f} {unit}" if unit == "m" else f"{value:.4f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:g}"


def _summary(console, prepared, plan_path: Path) -> None:
    """The checks as a table, under a line saying what runs where."""
    from rich.table import Table

    from hardware.runner import Grip

    p = prepared
    reg = "registered (--scan-to-robot)" if p.registered else "plan's own base"
    console.print(
        f"{plan_path.name}: {p.plan.robot} plan, {p.plan.num_steps} steps, {len(p.trajectories)} motions, "
        f"{sum(isinstance(x, Grip) for x in p.program)} gripper actions -> {p.arm.address} "
        f"({'real' if p.arm.real else 'simulated'}); speed {p.speed:g}, duration {p.duration:.2f} s; base: {reg}"
    )
    table = Table(title="safety checks (robot base frame; limits: " + p.spec.limits.source + ")")
    for col in ("check", "value", "limit", "ok", "where / why"):
        table.add_column(col)
    for c in p.report.checks:
        table.add_row(
            c.name,
            _fmt(c.value, c.unit),
            _fmt(c.limit, c.unit),
            "[green]yes[/green]" if c.ok else "[red]NO[/red]",
            c.detail,
        )
    console.print(table)


def write_plot(prepared, path: Path) -> None:
    """Joints over time (rad) and |velocity| as % of each joint's limit, gripper actions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from chord_robot.atomic import atomic_path
    from hardware.runner import Grip, timeline

    t, q = timeline(prepared, dt=0.02)
    names = prepared.spec.joint_names
    vmax = np.asarray(prepared.spec.limits.velocity)
    fig, (ax_q, ax_v) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for j, name in enumerate(names):
        ax_q.plot(t, q[:, j], label=name)
    for traj in prepared.trajectories:
        ts, _, qd = traj.sample(0.02)
        for j in range(len(names)):
            ax_v.plot(traj.start_time + ts, 100 * np.abs(qd[:, j]) / vmax[j], color=f"C{j}")
    for item in prepared.program:
        if isinstance(item, Grip):
            step = max(item.command.step - 1, 0)  # it acts once the arm rests at this step
            tg = prepared.plan.times[step] / prepared.speed
            for ax in (ax_q, ax_v):
                ax.axvline(tg, color="k", ls=":", lw=0.8)
    ax_v.axhline(prepared.report.get("velocity").limit, color="r", ls="--", lw=1)
    ax_q.set_ylabel("joint position (rad)")
    ax_q.legend(fontsize=7, ncol=4, loc="upper right")
    ax_v.set_ylabel("|velocity| (% of limit)")
    ax_v.set_xlabel(f"time (s) at speed {prepared.speed:g}; dotted: gripper actions")
    ax_q.set_title(f"{prepared.plan.robot} plan on {prepared.arm.address}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
