"""`chord-robot sim` through the command line on a scan and a hand-made plan."""

import subprocess
import sys

import imageio.v3 as iio
import numpy as np

from chord_robot import synth
from chord_robot.plans import Plan
from sim.world import PANDA_HOME


def _plan(path, obj="box", base=(1.0, 0, 0, 0, -0.6, 0.0, 0.0)):
    t = np.linspace(0, 2.0, 41)
    s = 0.5 - 0.5 * np.cos(np.pi * t / 2.0)  # smooth 0 -> 1
    q0 = np.asarray(PANDA_HOME)
    q1 = q0 + np.array([0.3, 0.2, 0.0, -0.2, 0.0, 0.2, 0.0])
    joints = q0 + s[:, None] * (q1 - q0)
    ee = np.tile([1.0, 0, 0, 0, 0.0, 0.0, 0.3], (41, 1))
    Plan("panda", "pybullet_data:franka_panda/panda.urdf", obj, "grasp", ee[20], 0.04, ee, joints, t,
         np.ones(41), {"approach": [0, 10], "manipulate": [10, 30], "retreat": [30, 40]}, 0.05,
         robot_base=np.asarray(base)).save(path)
    return q1


def test_sim_executes_a_plan_and_records(tmp_path):
    scan = synth.write_scan(tmp_path, "mesh-ply-labelled", synth.tabletop(0))
    _plan(tmp_path / "p.zarr")
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "sim", "--scan", str(scan), "--plan",
                          str(tmp_path / "p.zarr"), "--record", str(tmp_path / "run.mp4"), "--fps", "10"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    err = float(res.stdout.split("final joint error")[1].split("rad")[0].strip(" │"))
    assert err < 0.02
    frames = iio.imread(tmp_path / "run.mp4", index=None)
    # 2 s of plan + the hold (240 steps at 240 Hz = 1 s) at 10 fps: about 30 frames
    assert 25 <= len(frames) <= 40 and frames.shape[1:] == (360, 480, 3)
    assert frames.std() > 10  # an image of something, not a blank frame


def test_sim_rejects_a_plan_for_an_absent_object(tmp_path):
    scan = synth.write_scan(tmp_path, "mesh-ply-labelled", synth.tabletop(0))
    _plan(tmp_path / "p.zarr", obj="lamp")
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "sim", "--scan", str(scan), "--plan",
                          str(tmp_path / "p.zarr")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: the plan manipulates 'lamp'")
