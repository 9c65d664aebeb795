"""`chord-robot execute` through the CLI entry point: exit codes 0 / 2 (refused) / 1 (fault),
dry runs, the summary and the plot, config files and registration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chord_robot.app import cli
from chord_robot.app.commands import execute as execute_cmd
from tests.hardware.conftest import Log, fake_franky
from tests.hardware.plans import HOME, REACH, grasp_plan, move_plan


def chord(args, capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        cli.main(["execute", *map(str, args)])
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


@pytest.fixture
def plan_path(tmp_path):
    path = tmp_path / "plan.zarr"
    grasp_plan().save(path)
    return path


def test_sim_executes_prints_the_checks_and_plots(plan_path, capsys):
    code, out, err = chord(["--plan", plan_path, "--robot", "sim"], capsys)
    assert code == 0, err
    assert "done" in out and "step 61 of 61" in out and "final joint error" in out
    for check in ("joint_limits", "velocity", "acceleration", "jerk", "workspace", "table", "tcp"):
        assert check in out
    png = (plan_path.parent / "plan.trajectory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_dry_run_moves_nothing(plan_path, tmp_path, capsys):
    code, out, err = chord(
        ["--plan", plan_path, "--robot", "sim", "--dry-run", "--plot", tmp_path / "p.png"], capsys
    )
    assert code == 0, err
    assert "nothing moved" in out and "done" not in out
    assert (tmp_path / "p.png").exists()


def test_refused_plan_exits_2_with_the_reason(tmp_path, capsys):
    target = REACH.copy()
    target[3] = -0.03  # beyond panda_joint4's upper limit -0.0698
    move_plan(HOME, target, duration=3.0).save(tmp_path / "bad.zarr")
    code, out, err = chord(["--plan", tmp_path / "bad.zarr", "--robot", "sim"], capsys)
    assert code == 2
    assert err.startswith("error: refused, nothing moved: joint_limits: panda_joint4")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "NO" in out  # the summary shows the failed row


def test_fault_exits_1_and_reports_how_far_it_got(plan_path, capsys, monkeypatch):
    from chord_robot.app.sim_arm import SimArm

    make = execute_cmd._sim_arm

    def faulty(plan, registration):
        arm = make(plan, registration)

        def inject(t):
            if t >= 1.0:
                raise RuntimeError("injected fault")

        return SimArm(arm.base_pose, arm.initial_joints, on_step=inject)

    monkeypatch.setattr(execute_cmd, "_sim_arm", faulty)
    code, _, err = chord(["--plan", plan_path, "--robot", "sim"], capsys)
    assert code == 1
    assert "injected fault" in err and "stop command" in err and "stopped at step 20 of 61" in err


def test_real_arm_is_dry_run_without_yes(plan_path, capsys, monkeypatch):
    log = Log()
    monkeypatch.setitem(sys.modules, "franky", fake_franky(log, grasp_plan().joints[0]))
    code, out, err = chord(["--plan", plan_path, "--robot", "franka://172.16.0.2"], capsys)
    assert code == 0, err
    assert "a real arm without --yes" in out and "speed 0.25" in out
    assert not [c for c in log if c[0] in ("move", "gripper.move", "gripper.grasp")]
    code, out, err = chord(
        ["--plan", plan_path, "--robot", "franka://172.16.0.2", "--yes", "--speed", "0.5"], capsys
    )
    assert code == 0, err
    assert (
        len(log.named("move")) == 2 and log.named("move")[0][1][0].relative_dynamics_factor == 0.5
    )


def test_config_file_and_registration(tmp_path, capsys):
    yaw = np.pi / 2
    base = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2), 0.5, 0.2, 0.0])
    move_plan(robot_base=base).save(tmp_path / "p.zarr")
    # the inverse of the base: x,y,z,qw,qx,qy,qz of robot_from_scan
    reg = "-0.2,0.5,0,0.70710678,0,0,-0.70710678"
    (tmp_path / "robot.toml").write_text('robot = "sim"\nspeed = 0.8\n[safety]\nmax_speed = 0.5\n')
    code, _, err = chord(
        [
            "--plan",
            tmp_path / "p.zarr",
            "--config",
            tmp_path / "robot.toml",
            "--scan-to-robot",
            reg,
        ],
        capsys,
    )
    assert code == 2 and "speed: speed scale 0.8 is outside (0, 0.5]" in err
    code, out, err = chord(
        [
            "--plan",
            tmp_path / "p.zarr",
            "--config",
            tmp_path / "robot.toml",
            "--scan-to-robot",
            reg,
            "--speed",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, err
    assert "registered (--scan-to-robot)" in out and "done" in out
    # a registration 10 cm off: the plan's robot is not where the real one is
    code, _, err = chord(
        [
            "--plan",
            tmp_path / "p.zarr",
            "--robot",
            "sim",
            "--speed",
            "0.5",
            "--scan-to-robot",
            "-0.1,0.5,0,0.70710678,0,0,-0.70710678",
        ],
        capsys,
    )
    assert code == 2 and "base:" in err and "re-plan with the registered base" in err
    (tmp_path / "bad.toml").write_text('robot = "sim"\n[safety]\nmax_sped = 0.5\n')
    code, _, err = chord(["--plan", tmp_path / "p.zarr", "--config", tmp_path / "bad.toml"], capsys)
    assert code == 2 and "unknown key(s) ['max_sped']" in err


def test_bad_robot_address_exits_2(plan_path, capsys):
    code, _, err = chord(["--plan", plan_path, "--robot", "kuka://1.2.3.4"], capsys)
    assert code == 2 and "use sim, franka://HOST" in err


def test_command_module_imports_nothing_heavy():
    code = (
        "import sys, chord_robot.app.commands.execute; "
        "heavy = [m for m in ('pybullet', 'matplotlib', 'scipy', 'yourdfpy', 'zarr', 'hardware.runner') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
