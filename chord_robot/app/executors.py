"""Where jobs run: in this process, in a local process pool (the default), or on a Ray cluster.

`run_jobs` takes a function and one argument tuple per job and yields ``(index, result)`` as
jobs finish, whichever executor runs them. Jobs always run in worker processes set up alike
(`WORKER_ENV`: JAX on one thread; the job functions put torch on one thread), never in the
calling process, so the same jobs give the same results on every executor: the same flows bit
for bit and the same outcomes; the planner's solutions agree to about 1e-6 rad between Ray's
workers and the pool's (measured in benchmarks/scaleout.py; the environments and libraries
are the same, the cause is not pinned down), so simulated metrics agree closely, not exactly.

    workers = N, no ray    N spawned processes (JAX does not survive fork); a process that dies
                           breaks the pool: a new pool takes the unfinished jobs (`retries`).
    ray = "local"          a Ray instance started on this machine for the call (N CPUs).
    ray = "auto"           the Ray cluster this machine belongs to (``ray start --head`` or
                           ``ray start --address HEAD``); ray = "HOST:PORT" that cluster.

On Ray each job is a task asking for its ``resources`` (``num_cpus``, ``num_gpus``), so a
cluster of CPU and GPU nodes places a Wan 2.2 job (``num_gpus=1``) on a GPU node; a task whose
worker process dies is retried by Ray up to ``retries`` times. A job that still cannot finish
yields a `JobCrash` instead of a result. Workers keep their process between jobs, so the
planner compiles once per worker (`chord_robot.app.trial.shared_planner`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chord_robot.errors import InputError

WORKER_ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Environment of every worker process: JAX and the BLAS under numpy on one thread (each worker
runs one job at a time; a BLAS on more threads rounds differently, and Ray sets
OMP_NUM_THREADS=1 in its workers)."""


@dataclass(frozen=True)
class Executor:
    """How to run a set of jobs.

    Attributes:
        workers: local worker processes; with ``ray="local"``, the CPUs the local Ray
            instance offers.
        ray: None (local), "local", "auto" or a cluster address "HOST:PORT".
        retries: how many times a job whose worker process died is run again.
    """

    workers: int = 1
    ray: str | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise InputError(f"--retries must be at least 0, got {self.retries}")
        if self.ray is not None and not self.ray.strip():
            raise InputError("--ray needs 'local', 'auto' or a cluster address HOST:PORT")

    @property
    def label(self) -> str:
        """One line naming the executor (for logs and results)."""
        if self.ray is None:
            return f"a local pool of {self.workers} worker process{'es' if self.workers > 1 else ''}"
        return f"Ray ({'local instance' if self.ray == 'local' else self.ray})"


@dataclass(frozen=True)
class JobCrash:
    """A job whose worker process died on every attempt (the executor's result for it)."""

    message: str
    attempts: int = 1


@contextmanager
def _worker_environment() -> Iterator[None]:
    """`WORKER_ENV` in this process's environment while workers are spawned (they inherit it
    before anything reads it), restored afterwards."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    executor: Executor,
    resources: Sequence[dict] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*jobs[i])`` for every job; yield ``(i, result)`` in the order jobs finish.

    Args:
        fn: a module-level function (pickled by reference for the workers).
        jobs: argument tuples.
        executor: where they run.
        resources: per job, Ray resources (``num_cpus``, default 1; ``num_gpus``, default 0);
            ignored by the local executors.
    """
    if not jobs:
        return
    if executor.ray is not None:
        yield from _run_ray(fn, jobs, executor, resources)
    else:
        yield from _run_pool(fn, jobs, executor)


def _run_pool(fn: Callable[..., Any], jobs: Sequence[tuple], executor: Executor) -> Iterator[tuple[int, Any]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    attempts = [0] * len(jobs)
    pending = list(range(len(jobs)))
    while pending:
        broken = False
        with _worker_environment(), ProcessPoolExecutor(min(executor.workers, len(pending)),
                                                        mp_context=mp.get_context("spawn")) as pool:
            futures = {}
            for i in pending:
                attempts[i] += 1
                futures[pool.submit(fn, *jobs[i])] = i
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    pending.remove(i)
                    yield i, result
        if broken:  # every job the dead pool had not finished runs again, in a new pool
            for i in [i for i in pending if attempts[i] > executor.retries]:
                pending.remove(i)
                yield i, JobCrash("a worker process died (the local pool broke) on every attempt", attempts[i])


def _run_ray(fn: Callable[..., Any], jobs: Sequence[tuple], executor: Executor,
             resources: Sequence[dict] | None) -> Iterator[tuple[int, Any]]:
    ray = ray_module()
    started = connect(executor)
    try:
        remote = ray.remote(fn)
        refs = {}
        for i, job in enumerate(jobs):
            res = dict(resources[i]) if resources else {}
            options = {"num_cpus": res.get("num_cpus", 1), "num_gpus": res.get("num_gpus", 0),
                       "max_retries": executor.retries, "runtime_env": {"env_vars": dict(WORKER_ENV)}}
            refs[remote.options(**options).remote(*job)] = i
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.RayTaskError) as e:
                    result = JobCrash(f"{type(e).__name__}: {str(e).splitlines()[0]}", executor.retries + 1)
                yield refs[ref], result
    finally:
        if started:
            ray.shutdown()


def ray_module():
    """The ``ray`` package, or an InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("Ray is not installed: pip install 'chord-robot[ray]' (or run without --ray)") from None
    return ray


def connect(executor: Executor) -> bool:
    """Connect this process to the executor's Ray cluster (start a local instance for "local");
    True when this call started or joined it (and should shut it down)."""
    ray = ray_module()
    if ray.is_initialized():
        return False
    options: dict = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if executor.ray == "local":
        ray.init(num_cpus=executor.workers, **options)
    else:
        try:
            ray.init(address=executor.ray, **options)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(f"cannot reach the Ray cluster at {executor.ray!r}: {str(e).splitlines()[0]}") from None
    return True
