"""The `chord-robot` command line. It picks presets, applies overrides and calls the library.

Heavy libraries (torch, jax, pybullet, diffusers, open3d, matplotlib) are imported inside the
commands that need them, so `chord-robot --help` is instant. A `ChordError` becomes one line on
stderr and its exit code (2 bad input, 1 the task failed); nothing is half-written.
"""

from __future__ import annotations

import gc
import sys

import typer

from chord_robot.app.commands import batch as _batch
from chord_robot.app.commands import demo as _demo
from chord_robot.app.commands import eval as _eval
from chord_robot.app.commands import execute as _execute
from chord_robot.app.commands import flow as _flow
from chord_robot.app.commands import plan as _plan
from chord_robot.app.commands import render as _render
from chord_robot.app.commands import scene as _scene
from chord_robot.app.commands import sim as _sim
from chord_robot.app.commands import train_prior as _train_prior
from chord_robot.app.commands import view as _view
from chord_robot.app.flowconfig import FIELD_OPTIONS as FLOW_FIELD_OPTIONS
from chord_robot.errors import ChordError, ConfigError

app = typer.Typer(
    name="chord-robot",
    help="Robot manipulation from generated 3D object flow (CHORD): scan + task -> flow -> plan -> robot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Robot manipulation from generated 3D object flow (CHORD): scan + task -> flow -> plan -> robot."""


app.command("scene")(_scene.scene)
app.command("flow")(_flow.flow)
app.command("plan")(_plan.plan)
app.command("render")(_render.render)
app.command("sim")(_sim.sim)
app.command("eval")(_eval.eval_)
app.command("batch")(_batch.batch)
app.command("execute")(_execute.execute)
app.command("view")(_view.view)
app.command("train-prior")(_train_prior.train_prior_cmd)
app.command("demo")(_demo.demo)


FIELD_OPTIONS: dict[str, dict[str, str]] = {
    "flow": FLOW_FIELD_OPTIONS,
    "plan": {"mode": "--mode", "robot": "--robot", "preset": "--preset"},
    "execute": {"robot": "--robot", "scan_to_robot": "--scan-to-robot", "model": "model (of --robot or the config file)"},
    "train-prior": {"textured": "--textured"},
}
"""Per command: config field -> the option that sets it. A `ConfigError` names a field (the
library's word); the message the user sees names the option they typed."""


def _option_for(field: str, argv: list[str]) -> str:
    command = next((a for a in argv if not a.startswith("-")), "")
    return FIELD_OPTIONS.get(command, {}).get(field, field)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning project errors into one line and an exit code.

    Usage errors are typer's own (exit 2); a ChordError prints ``error: ...`` and exits with
    its code (a ConfigError names the option that sets its field); anything else is a bug and
    keeps its traceback.
    """
    try:
        app(args=argv, prog_name="chord-robot")
    except ConfigError as e:
        print(f"error: {e.named(_option_for(e.field, sys.argv[1:] if argv is None else argv))}", file=sys.stderr)
        sys.exit(e.exit_code)
    except ChordError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    finally:
        if argv is None:  # the process's own command, now ending: the interpreter's last garbage
            gc.freeze()  # collection need not walk torch's objects (~0.4 s and more at exit)


if __name__ == "__main__":
    main()
