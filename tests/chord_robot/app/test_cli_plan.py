"""`chord-robot plan` through the command line: a rigid lift of a block on the tabletop scan."""

import subprocess
import sys

import numpy as np
import pytest
import trimesh

from chord_robot import synth
from chord_robot.app.scenes import load_scene
from chord_robot.flow import ObjectFlow, ObjectMotion
from chord_robot.plans import Plan


def _scan(tmp_path):
    """The tabletop with a 4 cm wide block (the Panda opens 8 cm, less 1 cm margin a side)."""
    objects = synth.tabletop(0)
    block = trimesh.creation.box((0.04, 0.16, 0.08))
    block.apply_translation((0.0, -0.15, 0.04))
    objects[3] = synth.SynthObject("block", block, (0.15, 0.75, 0.20))
    return synth.write_scan(tmp_path, "mesh-ply-labelled", objects)


def _flow(tmp_path, scan, lift, controls=True):
    scene = load_scene(scan)
    box = scene.objects["block"]
    pts = box.surface_points(4000, np.random.default_rng(0))
    s = np.linspace(0, 1, 21)
    poses = np.tile(np.eye(4), (21, 1, 1))
    poses[:, :3, 3] = np.asarray(lift)[None] * s[:, None]
    motions = {"block": ObjectMotion.rigid(pts, poses, source="mesh")}
    table = scene.objects["table"].surface_points(500, np.random.default_rng(1))
    motions["table"] = ObjectMotion.rigid(table, np.tile(np.eye(4), (21, 1, 1)), static=True, source="mesh")
    if not controls:  # as a point tracker would write it: points and trajectories only
        motions = {k: ObjectMotion(m.points, m.trajectories, static=m.static) for k, m in motions.items()}
    ObjectFlow(motions, task="lift the block", fps=10).save(tmp_path / "f.zarr")
    return tmp_path / "f.zarr"


def run(*args):
    return subprocess.run([sys.executable, "-m", "chord_robot.app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_plan_lifts_the_block(tmp_path):
    scan = _scan(tmp_path)
    flow = _flow(tmp_path, scan, [0.0, 0.0, 0.12])
    res = run("plan", "--scan", scan, "--task", "lift the block", "--flow", flow, "-o", tmp_path / "p.zarr",
              "--robot-base", "-0.55,0,0,0", "--preset", "fast", "--mode", "grasp")
    assert res.returncode == 0, res.stderr + res.stdout
    p = Plan.load(tmp_path / "p.zarr")
    assert p.object == "block" and p.mode == "grasp"
    a, b = p.segments["manipulate"]
    assert b - a + 1 == 21  # aligned with the flow's frames
    lift = p.ee_poses[b, 4:] - p.ee_poses[a, 4:]
    np.testing.assert_allclose(lift, [0, 0, 0.12], atol=0.005)
    assert p.costs["alignment_mean_m"] < 0.005
    assert "alignment error" in res.stdout


@pytest.mark.slow
def test_a_flow_of_points_only_plans_executes_and_renders(tmp_path):
    """A flow from elsewhere (no control points): plan, sim and render take it."""
    import zarr

    scan = _scan(tmp_path)
    flow = _flow(tmp_path, scan, [0.0, 0.0, 0.12], controls=False)
    assert "control" not in zarr.open_group(str(flow), mode="r")["objects/block"]
    res = run("plan", "--scan", scan, "--task", "lift the block", "--flow", flow, "-o", tmp_path / "p.zarr",
              "--robot-base", "-0.55,0,0,0", "--preset", "fast", "--mode", "grasp")
    assert res.returncode == 0, res.stderr + res.stdout
    p = Plan.load(tmp_path / "p.zarr")
    a, b = p.segments["manipulate"]
    np.testing.assert_allclose(p.ee_poses[b, 4:] - p.ee_poses[a, 4:], [0, 0, 0.12], atol=0.005)
    res = run("sim", "--scan", scan, "--plan", tmp_path / "p.zarr")
    assert res.returncode == 0, res.stderr + res.stdout
    res = run("render", flow, "-o", tmp_path / "f.mp4", "--width", 160, "--height", 120)
    assert res.returncode == 0, res.stderr + res.stdout
    assert (tmp_path / "f.mp4").stat().st_size > 1000


@pytest.mark.slow
def test_a_plan_whose_manipulation_hits_another_object_is_refused(tmp_path):
    """The block slid across the table through a wall standing in its way: the manipulation
    (not only the approach) is checked against the rest of the scene, and every grasp is
    refused; without the wall the same flow plans."""
    wall = trimesh.creation.box((0.30, 0.02, 0.25))
    wall.apply_translation((0.0, 0.0, 0.125))
    for name, extra in (("walled", [synth.SynthObject("wall", wall, (0.6, 0.6, 0.6))]), ("clear", [])):
        out = tmp_path / name
        objects = [o for o in synth.tabletop(0) if o.name in ("table", "block")]
        block = trimesh.creation.box((0.04, 0.16, 0.08))
        block.apply_translation((0.0, -0.15, 0.04))
        objects = [objects[0], synth.SynthObject("block", block, (0.15, 0.75, 0.20)), *extra]
        scan = synth.write_scan(out, "mesh-ply-labelled", objects)
        flow = _flow(out, scan, [0.0, 0.25, 0.0])  # through y = 0, where the wall stands
        res = run("plan", "--scan", scan, "--task", "slide the block", "--flow", flow, "-o", out / "p.zarr",
                  "--robot-base", "-0.55,0,0,0", "--preset", "fast", "--mode", "grasp")
        if name == "walled":
            assert res.returncode == 1, res.stderr + res.stdout
            assert "would hit the rest of the scene while moving 'block'" in res.stderr, res.stderr
            assert not (out / "p.zarr").exists()
        else:
            assert res.returncode == 0, res.stderr + res.stdout


def test_plan_unreachable_exits_1(tmp_path):
    scan = _scan(tmp_path)
    flow = _flow(tmp_path, scan, [0.0, 1.6, 0.5])
    res = run("plan", "--scan", scan, "--task", "throw the block", "--flow", flow, "-o", tmp_path / "p.zarr",
              "--robot-base", "-0.55,0,0,0", "--preset", "fast")
    assert res.returncode == 1, res.stderr + res.stdout
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
    assert "reach" in res.stderr or "workspace" in res.stderr
    assert not (tmp_path / "p.zarr").exists()


def test_plan_without_flow_generates_it_and_refuses_what_the_prior_cannot_do(tmp_path):
    scan = synth.write_scan(tmp_path, "mesh-ply-labelled", synth.tabletop(0))
    res = run("plan", "--scan", scan, "--task", "lift the block", "-o", tmp_path / "p.zarr")
    assert res.returncode == 2 and "the shipped prior cannot do 'lift the block'" in res.stderr, res.stderr
    assert not (tmp_path / "p.zarr").exists() and not (tmp_path / "p.flow.zarr").exists()


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A desk: a laptop (lid ~100 degrees open), a lamp, a mug and a book (`sim.desk`)."""
    from sim.desk import write_desk

    out = tmp_path_factory.mktemp("desk")
    write_desk(out)
    return out


@pytest.mark.parametrize("task, message", [
    ("wipe the table with the sponge", ("close a laptop lid", "lower a lamp's head", "Wan 2.2")),
    ("fold the towel in half", ("close a laptop lid", "on a plate", "Wan 2.2")),  # the shipped models: lids, lamps, picks
])
def test_a_task_the_shipped_prior_cannot_do_is_refused(desk, tmp_path, task, message):
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "plan", "--scan", desk / "desk.ply",
                          "--task", task], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and all(m in lines[0] for m in message), res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_existing_plan_is_not_overwritten_without_force(desk, tmp_path):
    (tmp_path / "plan.zarr").mkdir()
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "plan", "--scan", desk / "desk.ply",
                          "--task", "close the laptop"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 2 and "--force" in res.stderr, res.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["plan.zarr"]


@pytest.mark.slow
def test_plan_generates_the_flow_from_words(desk, tmp_path):
    # ~2.5-3 min: the headline command as written, on a desk with a laptop, a lamp and two distractors
    from sim.desk import measure_flow

    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "plan", "--scan", desk / "desk.ply",
                          "--task", "close the laptop"], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "reads 'close the laptop' as 'the laptop lid closes', moving laptop" in " ".join(res.stdout.split())
    plan = Plan.load(tmp_path / "plan.zarr")
    assert plan.object == "laptop"
    figures = measure_flow(desk, tmp_path / "plan.flow.zarr")["objects"]
    assert figures["laptop"]["turn_deg"] < -60, figures["laptop"]  # the lid closes (start ~100 degrees)
    assert figures["laptop"]["base_drift_max_mm"] < 3.0, figures["laptop"]
    for still in ("lamp", "mug", "book"):  # objects the task does not name stay still
        assert figures[still]["max_mean_displacement_mm"] == 0.0, (still, figures[still])
    assert plan.costs["alignment_mean_m"] < 0.01


@pytest.fixture(scope="module")
def pick_scan(tmp_path_factory):
    """The pick-banana task's scene at seed 100 as a labelled scan (a banana, a plate, the table)."""
    from sim import world as simworld
    from sim.tasks import make
    from sim.tasks.flow_inputs import write_scan

    world = simworld.create(direct=True)
    try:
        task = make("pick-banana", world)
        task.reset(100)
        return write_scan(task, tmp_path_factory.mktemp("pick") / "scan.ply")
    finally:
        world.close()


@pytest.mark.slow
def test_a_pick_is_generated_by_the_shipped_pick_model(pick_scan, tmp_path):
    # ~1 min: `flow --scan --task` routes the words to the pick model and its preset (a short run)
    res = subprocess.run([sys.executable, "-m", "chord_robot.app.cli", "flow", "--scan", pick_scan, "--task",
                          "put the banana on the plate", "--iters", "30", "-o", tmp_path / "f.zarr"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = " ".join(res.stdout.split())
    assert "shipped/pick), preset shipped" in out
    assert "reads 'put the banana on the plate' as 'the object is put on the plate', moving banana" in out
    flow = ObjectFlow.load(tmp_path / "f.zarr")
    assert set(flow.moving()) == {"banana"} and flow.num_frames == 9
    banana = np.asarray(flow.objects["banana"].trajectories).mean(axis=1)  # its centre per frame
    plate = np.asarray(flow.objects["plate"].trajectories)[0].mean(axis=0)
    to_plate = np.linalg.norm(banana[:, :2] - plate[:2], axis=1)
    # 30 of the preset's 300 iterations already carry it: measured 89 mm nearer the plate, lifted 62 mm
    assert to_plate[0] - to_plate[-1] > 0.07 and banana[-1, 2] - banana[0, 2] > 0.045, (to_plate, banana[:, 2])
