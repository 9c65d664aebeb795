"""One trial of a simulated task: reset -> flow -> plan -> execute -> evaluate.

`run_trial` is the one place this chain is written; the demo and the evaluation suite call it
with their own flow source (`FlowSource`: the task's scripted motion, a fit to a video, a flow
the demo generates into its output folder ...). Every stage is timed; a planning failure, or
an exception in any stage, ends the trial as failed at that stage with its message (the task
is still asked for its verdict where it was set up) instead of raising. A fresh PyBullet world per trial, closed whatever happens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chord_robot.errors import InputError, PlanningFailure
from chord_robot.flow import ObjectFlow
from chord_robot.plans import Plan

if TYPE_CHECKING:
    from planning import FlowPlanner
    from sim.execute import ExecuteConfig

TRIAL_STAGES = ("reset", "flow", "plan", "execute")
"""The stages of a trial, in order (the keys of `TrialOutcome.times`)."""

FAILURE_STAGES = ("reset", "flow", "plan", "grasp", "reach", "execute")
"""Where a trial can fail, in order: its task could not be set up ("reset"), the flow source
raised ("flow"), the planner raised ("plan"), it found no grasp ("grasp") or no reachable,
well-aligned trajectory ("reach"), or execution raised or left the task undone ("execute")."""

FlowSource = Callable[[object], ObjectFlow]
"""(a reset `sim.tasks.base.Task`) -> the flow the trial plans from."""


@dataclass
class TrialOutcome:
    """What a trial did (running state, filled stage by stage).

    Attributes:
        seed: the seed the task was reset with.
        success: the task's verdict after execution.
        failure_stage: None on success, else one of `FAILURE_STAGES`.
        failure: why the trial failed, one line (None on success).
        metric: the task's metric (e.g. the lid's angle in degrees for close-laptop).
        metric_info: its name, unit and success threshold (None if the task never reset).
        verdict: the task's one-line account of its last verdict.
        flow_note: the task's measure of what the flow asked (`describe_flow`; "" if none).
        times: seconds per stage of `TRIAL_STAGES`.
        flow: the flow planned from (None if the flow source failed).
        plan: the plan executed (None if planning failed).
        planning_seconds: the planner's own time.
    """

    seed: int
    success: bool = False
    failure_stage: str | None = None
    failure: str | None = None
    metric: float = float("nan")
    metric_info: object = None
    verdict: str = ""
    flow_note: str = ""
    times: dict[str, float] = field(default_factory=dict)
    flow: ObjectFlow | None = None
    plan: Plan | None = None
    planning_seconds: float = float("nan")


_PLANNER = None  # one per process: the compiled trajectory solver is reused across trials


def shared_planner():
    """This process's `planning.FlowPlanner` (built once: its jitted solve compiles once)."""
    global _PLANNER
    if _PLANNER is None:
        from loguru import logger

        from planning import FlowPlanner, enable_compilation_cache

        logger.disable("jaxls")  # its problem-building messages, once per trial
        enable_compilation_cache()
        _PLANNER = FlowPlanner()
    return _PLANNER


def run_trial(
    task_name: str,
    seed: int,
    flow_source: FlowSource,
    *,
    record: str | os.PathLike[str] | None = None,
    video_size: tuple[int, int] = (480, 360),
    plan_path: str | os.PathLike[str] | None = None,
    stage: Callable[[str], None] | None = None,
    log: Callable[[str], None] | None = None,
    planner: FlowPlanner | None = None,
    execute_config: ExecuteConfig | None = None,
) -> TrialOutcome:
    """Run one trial of ``task_name`` at ``seed`` in a fresh PyBullet world.

    Args:
        task_name: a task of `sim.tasks.TASKS`.
        seed: the task's seed (also the planner's).
        flow_source: gives the flow for the reset task; an InputError it raises propagates
            (bad input is the user's to fix), any other exception fails the trial at "flow"
            (as an exception in any other stage fails it at that stage: never raised).
        record: write an MP4 of the execution (the task's reference view) here; without a
            plan, one frame of the scene as it stands.
        video_size: (width, height) of that video.
        plan_path: save the plan here.
        stage: called with each stage's name as it starts.
        log: one-line messages (the planner's).
        planner: the `planning.FlowPlanner` to plan with (default: this process's `shared_planner`).
        execute_config: how the plan is executed (default: `sim.execute.ExecuteConfig()`).
    """
    import numpy as np

    from sim import world as simworld
    from sim.execute import execute
    from sim.render import Recorder, write_mp4
    from sim.tasks import make

    outcome = TrialOutcome(seed)
    clock = [time.perf_counter(), ""]

    def begin(name: str) -> None:
        end()
        clock[:] = [time.perf_counter(), name]
        if stage is not None:
            stage(name)

    def end() -> None:
        if clock[1]:
            outcome.times[clock[1]] = time.perf_counter() - clock[0]
            clock[1] = ""

    def stop(stage_name: str, message: str, metric: bool = True) -> TrialOutcome:
        end()
        outcome.failure_stage, outcome.failure = stage_name, message
        if metric:  # the scene as planning left it (nothing moved)
            verdict()
            outcome.success = False
        return outcome

    begin("reset")
    world = simworld.create(direct=True)
    task = None

    def verdict() -> None:
        """The task's verdict on the scene as it stands, if the task got as far as a reset."""
        if task is not None and task.seed is not None:
            success, metric = task.evaluate()
            outcome.success, outcome.metric = bool(success), float(metric)
            outcome.verdict = task.verdict

    try:
        try:
            task = make(task_name, world)
            task.reset(seed)
        except InputError:
            raise
        except Exception as e:  # a task that cannot be set up is a failed trial
            return stop("reset", f"reset: {type(e).__name__}: {e}", metric=False)
        outcome.metric_info = task.metric_info()
        begin("flow")
        try:
            outcome.flow = flow_source(task)
        except InputError:
            raise
        except Exception as e:  # a flow source that fails is a failed trial, not a crashed suite
            return stop("flow", f"flow: {type(e).__name__}: {e}", metric=False)
        try:
            outcome.flow_note = task.describe_flow(outcome.flow)
        except Exception as e:  # noqa: BLE001 - a note on the flow never fails the trial
            outcome.flow_note = f"(the flow could not be described: {type(e).__name__}: {e})"
        begin("plan")
        try:
            start = time.perf_counter()
            planner = planner if planner is not None else shared_planner()
            outcome.plan = planner.plan(outcome.flow, task.scene_points(),
                                        base=simworld.pose_to_matrix(task.robot_base()),
                                        rng=np.random.default_rng(seed), log=log)
            outcome.planning_seconds = time.perf_counter() - start
        except PlanningFailure as e:
            if record is not None:
                recorder = Recorder(task.reference_camera(*video_size), fps=15.0)
                recorder.capture(world)
                write_mp4(record, recorder.video(), fps=15.0)
            return stop(e.stage, f"planning ({e.stage}): {e}")
        except InputError:
            raise
        except Exception as e:  # the planner broke (not: found no plan)
            return stop("plan", f"plan: {type(e).__name__}: {e}")
        if plan_path is not None:
            outcome.plan.save(plan_path)
        begin("execute")
        recorder = Recorder(task.reference_camera(*video_size), fps=15.0) if record is not None else None
        try:
            execute(world, task.load_robot(), outcome.plan, task.bodies(), execute_config,
                    on_step=(lambda t: recorder.maybe_capture(world, t)) if recorder is not None else None)
        except Exception as e:  # the arm stopped part-way: the task judges what it left
            stop("execute", f"execute: {type(e).__name__}: {e}", metric=False)
            verdict()
            outcome.success = False
            return outcome
        finally:
            if recorder is not None and recorder.frames:
                write_mp4(record, recorder.video(), fps=15.0)
        verdict()
        outcome.failure_stage = None if outcome.success else "execute"
        if not outcome.success:
            outcome.failure = f"execute: {outcome.verdict}"
        end()
        return outcome
    finally:
        world.close()
