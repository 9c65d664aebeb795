"""`chord-robot batch` and the executors: jobs files, the store that outlives the driver, and a
real local Ray cluster (started by the tests on loopback, stopped after): the same results as
the local executor, a worker killed mid-job retried, a killed driver resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chord_robot.app.batch import load_jobs, run_batch
from chord_robot.app.executors import Executor
from chord_robot.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
SCAN = ROOT / "examples" / "laptop" / "scan.ply"
LAUNCH = "import sys; from chord_robot.app import cli; cli.main(sys.argv[1:])"


def jobs_file(folder: Path, text: str) -> Path:
    (folder / "scan.ply").write_bytes(SCAN.read_bytes())
    (folder / "scan.labels.json").write_bytes(SCAN.with_suffix(".labels.json").read_bytes())
    path = folder / "jobs.toml"
    path.write_text(text)
    return path


QUICK = """
[defaults.flow]
iters = 5

[[job]]
scan = "scan.ply"
task = "close the laptop lid"
seed = 0

[[job]]
scan = "scan.ply"
task = ["open the laptop lid", "peel the banana"]
seed = 1
simulate = false
"""
"""Three jobs of a few seconds each (5 iterations of the shipped prior): one planned and
simulated, one planned, one the shipped prior cannot do (fails at flow)."""


def assert_same_results(rows_a: list[dict], rows_b: list[dict]) -> None:
    """The same jobs, outcomes, flows (bit for bit) and plans (the planner's solutions agree to
    about 1e-6 rad between Ray's worker processes and the pool's: alignment within 0.01 mm,
    durations within 1 ms)."""
    assert [(r["id"], r["status"], r["stage"], r["message"]) for r in rows_a] == \
           [(r["id"], r["status"], r["stage"], r["message"]) for r in rows_b]
    for a, b in zip(rows_a, rows_b, strict=True):
        fa, fb = a["figures"], b["figures"]
        assert set(fa) == set(fb)
        for key in fa:
            if key in ("alignment_mm", "duration_s"):
                assert fa[key] == pytest.approx(fb[key], abs=0.01 if key == "alignment_mm" else 1e-3), key
            elif key not in ("final_joint_error", "sim_centroid_mm"):
                assert fa[key] == fb[key], key


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-c", LAUNCH, *map(str, args)], capture_output=True, text=True,
                          check=False, **kwargs)


# -- jobs files --------------------------------------------------------------------------------

def test_a_jobs_file_expands_to_every_scan_task_seed(tmp_path):
    path = jobs_file(tmp_path, """
[defaults]
simulate = false
[defaults.flow]
iters = 7
video = "v.mp4"

[[job]]
scan = "scan.ply"
task = ["close the laptop lid", "open the laptop lid"]
seed = [3, 4]
num_gpus = 1

[[job]]
id = "one"
scan = "scan.ply"
task = "close the laptop lid"
simulate = true
flow = {iters = 9}
plan = {mode = "grasp"}
""")
    jobs = load_jobs(path)
    assert [j.id for j in jobs] == ["scan-close-the-laptop-lid-s3", "scan-close-the-laptop-lid-s4",
                                    "scan-open-the-laptop-lid-s3", "scan-open-the-laptop-lid-s4", "one"]
    assert jobs[0].scan == str((tmp_path / "scan.ply").resolve()) and jobs[0].num_gpus == 1 and not jobs[0].simulate
    assert jobs[0].flow == {"iters": 7, "video": [str(tmp_path / "v.mp4")]}
    last = jobs[-1]
    assert last.seed == 0 and last.simulate and last.flow["iters"] == 9 and last.plan == {"mode": "grasp"}
    assert last.num_cpus == 1 and last.num_gpus == 0


@pytest.mark.parametrize("text,message", [
    ("[[job]]\nscan = 'scan.ply'\n", "needs a scan and a task"),
    ("[[job]]\nscan = 'nope.ply'\ntask = 't'\n", "scan 'nope.ply' is not a file"),
    ("[[job]]\nscan = 'scan.ply'\ntask = 't'\nseed = -1\n", "seed must be a non-negative integer"),
    ("[[job]]\nscan = 'scan.ply'\ntask = 't'\ncolour = 1\n", "unknown key(s) colour"),
    ("[[job]]\nscan = 'scan.ply'\ntask = 't'\nplan = {speed = 2}\n", "unknown plan key(s) speed"),
    ("[[job]]\nscan = 'scan.ply'\ntask = 't'\nflow = {seed = 2}\n", "set seed in the job, not in flow"),
    ("[[job]]\nid = 'a'\nscan = 'scan.ply'\ntask = 't'\nseed = [1, 2]\n", "the entry makes 2"),
    ("[[job]]\nid = 'a'\nscan = 'scan.ply'\ntask = 't'\n[[job]]\nid = 'a'\nscan = 'scan.ply'\ntask = 'u'\n",
     "two jobs are named 'a'"),
    ("[jobs]\nscan = 1\n", "unknown table(s) jobs"),
    ("[[job]\n", "is not valid TOML"),
    ("", "no [[job]] entries"),
])
def test_a_malformed_jobs_file_is_refused_with_one_line(tmp_path, text, message):
    path = jobs_file(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_jobs(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_batch_command_exits_2_on_a_bad_jobs_file_and_writes_nothing(tmp_path):
    path = jobs_file(tmp_path, "[[job]]\nscan = 'scan.ply'\ntask = 't'\nseed = 'x'\n")
    res = cli("batch", path, "-o", tmp_path / "out", timeout=60)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "seed" in res.stderr
    assert not (tmp_path / "out").exists()
    res = cli("batch", path, "-o", tmp_path / "out", "--workers", "0", timeout=60)
    assert res.returncode == 2 and "--workers must be at least 1" in res.stderr


# -- running jobs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The quick jobs in this process, the reference the other executors are held to."""
    folder = tmp_path_factory.mktemp("local")
    path, out = jobs_file(folder, QUICK), folder / "out"
    return path, out, run_batch(path, out, Executor())


@pytest.mark.slow
def test_a_batch_stores_each_job_and_one_table(local_run):
    path, out, result = local_run
    assert [r["id"] for r in result] == [r["id"] for r in rows(out)] == [j.id for j in load_jobs(path)]
    close, opened, banana = result
    assert close["status"] == opened["status"] == "done" and close["attempt"] == 1
    assert close["figures"]["moved"] == ["laptop"] and close["figures"]["grasped"] is True
    assert set(close["times"]) == {"load", "flow", "plan", "sim"} and "sim" not in opened["times"]
    assert banana["status"] == "failed" and banana["stage"] == "flow" and "shipped prior cannot do" in banana["message"]
    for row in result:
        folder = out / "jobs" / row["id"]
        assert json.loads((folder / "result.json").read_text()) == row
        assert (folder / "flow.zarr").is_dir() == (row["stage"] != "flow")
        assert (folder / "plan.zarr").is_dir() == (row["status"] == "done")
    assert not [p for p in (out / "jobs").iterdir() if p.name.startswith(".") and p.name != ".running"]
    summary = (out / "summary.md").read_text()
    assert "3 of 3 jobs finished: 2 done, 1 failed" in summary and "at flow: the shipped prior" in summary


@pytest.mark.slow
def test_a_rerun_skips_finished_jobs_and_retries_failed_ones_on_request(local_run):
    path, out, first = local_run

    def stamps() -> list[int]:
        return [(out / "jobs" / r["id"] / "result.json").stat().st_mtime_ns for r in first]

    written = stamps()
    again = run_batch(path, out, Executor())
    assert again == first and stamps() == written  # nothing ran: the rows are the stored ones
    assert "(3 finished before this run)" in (out / "summary.md").read_text()
    retried = run_batch(path, out, Executor(), retry_failed=True)
    now = stamps()
    assert now[:2] == written[:2] and now[2] != written[2]  # only the failed job ran again
    assert retried[:2] == first[:2] and retried[2]["stage"] == "flow" and len(rows(out)) == 3


# -- Ray ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A one-node Ray cluster on loopback with 2 CPUs (`ray start --head`) and its own token
    (Ray's token authentication, which this process and the commands it starts present),
    stopped after; yields its address and how long it took to start."""
    import secrets

    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # before ray is imported: it reads them once
    pytest.importorskip("ray")
    start = time.perf_counter()
    try:
        subprocess.run([ray_bin, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                        "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                       check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", time.perf_counter() - start
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, check=False)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
def test_ray_gives_the_same_results_as_the_local_executor(ray_cluster, local_run, tmp_path):
    address, _ = ray_cluster
    path, _, reference = local_run
    on_ray = run_batch(path, tmp_path / "ray", Executor(ray=address))
    assert_same_results(on_ray, reference)
    assert {r["worker"] for r in on_ray} != {r["worker"] for r in reference}  # other processes ran them


@pytest.mark.slow
def test_eval_on_ray_gives_the_same_trials_as_the_local_pool(ray_cluster, tmp_path):
    from dataclasses import replace

    from chord_robot.app.evaluate import EvalConfig, run_suite

    address, _ = ray_cluster
    config = EvalConfig(tasks=("pick-banana",), flow_source="oracle", trials=1, seed=3, record=False)
    local = run_suite(config, tmp_path / "local")
    on_ray = run_suite(replace(config, ray=address), tmp_path / "ray")
    assert [(r.seed, r.success, r.failure_stage) for r in on_ray["pick-banana"]] == \
           [(r.seed, r.success, r.failure_stage) for r in local["pick-banana"]]
    # the banana's final distance to the plate centre: the planner's solutions agree to ~1e-6
    # rad between Ray's and the pool's worker processes, the physics to a fraction of a mm
    for a, b in zip(on_ray["pick-banana"], local["pick-banana"], strict=True):
        assert a.metric == pytest.approx(b.metric, abs=1e-3)


SLOW_JOB = """
[[job]]
id = "slow"
scan = "scan.ply"
task = "close the laptop lid"
simulate = false
flow = {iters = 20}
"""


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_retried_and_nothing_is_lost(ray_cluster, tmp_path):
    address, _ = ray_cluster
    path, out = jobs_file(tmp_path, SLOW_JOB), tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-c", LAUNCH, "batch", str(path), "-o", str(out), "--ray", address],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mark = out / "jobs" / ".running" / "slow"
    line = _wait_for(lambda: mark.exists() and mark.read_text().strip(), 120, "the job to start")
    time.sleep(3.0)  # well inside its flow stage
    os.kill(int(line.split()[1]), signal.SIGKILL)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-2000:]
    (row,) = rows(out)
    assert row["id"] == "slow" and row["status"] == "done" and row["attempt"] == 2
    assert row["worker"].split(":")[1] != line.split()[1]
    assert (out / "jobs" / "slow" / "plan.zarr").is_dir()
    assert not [p for p in (out / "jobs").iterdir() if p.name.startswith(".") and p.name != ".running"]
    assert "slow: attempt 2" in (out / "summary.md").read_text()


KILLED_DRIVER_JOBS = """
[[job]]
scan = "scan.ply"
task = "close the laptop lid"
seed = 0
simulate = false
flow = {iters = 5}

[[job]]
scan = "scan.ply"
task = ["open the laptop lid", "peel the banana"]
seed = 1
simulate = false
flow = {iters = 40}
"""
"""A quick first job and a slow second one (the third fails at once), so the driver is killed
while the second still runs (three quick jobs could all finish within one poll of the table)."""


@pytest.mark.slow
def test_a_killed_driver_resumes_skipping_finished_jobs(ray_cluster, tmp_path):
    address, _ = ray_cluster
    path, out = jobs_file(tmp_path, KILLED_DRIVER_JOBS), tmp_path / "out"
    command = [sys.executable, "-c", LAUNCH, "batch", str(path), "-o", str(out), "--ray", address]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = out / "results.jsonl"
    _wait_for(lambda: table.exists() and table.read_text().strip(), 180, "a first finished job")
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    before = {r["id"]: r for r in rows(out)}
    assert 1 <= len(before) < 3
    res = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 1, res.stderr[-2000:]  # the banana jobs fail at flow, as they should
    after = rows(out)
    assert [r["id"] for r in after] == [j.id for j in load_jobs(path)]  # complete, in order, no duplicates
    for r in after:
        if r["id"] in before:
            assert r == before[r["id"]]  # skipped, not run again
    # a job the cluster finished after the driver died counts as finished too (its result is
    # on disk), so the resumed run may find more than the killed driver's table listed
    found = re.search(r"\((\d+) finished before this run\)", (out / "summary.md").read_text())
    assert found and len(before) <= int(found.group(1)) <= len(after)
