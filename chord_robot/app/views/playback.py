"""The time axis shared by plan videos and the viewer: which plan step and which flow frame a
moment shows, and how flows and plans are told apart on disk.

*Time.* A video samples the plan's time axis uniformly: frame i shows the plan at
``min(i / fps, duration)``, so there are ``ceil(duration * fps) + 1`` frames (`video_times`)
and the last one shows the end of the plan. The arm's configuration at a time is the curve
every executor follows (`chord_robot.trajectory.follow`), not straight lines between steps.
The gripper opening is interpolated linearly between steps.

*Flow alignment.* The plan's manipulate segment [k, l] is aligned with the flow's frames
(DESIGN.md §3): step k shows flow frame 0 and step l the last frame, proportionally in
between (`flow_phase`); before the segment the objects rest at frame 0, after it at the last
frame. Fractional frames interpolate positions linearly between the two nearest frames.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from chord_robot.errors import InputError
from chord_robot.flow import SCHEMA as FLOW_SCHEMA
from chord_robot.flow import ObjectFlow, ObjectMotion
from chord_robot.plans import SCHEMA as PLAN_SCHEMA
from chord_robot.plans import Plan
from chord_robot.trajectory import follow, plan_motions

PALETTE = np.array(
    [
        [0.12, 0.47, 0.71],
        [1.00, 0.50, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ]
)
"""Object colours (RGB in [0, 1]), assigned in sorted name order; static objects are grey."""
STATIC_COLOR = np.array([0.62, 0.62, 0.60])


def store_schema(path: str | os.PathLike[str]) -> str | None:
    """The ``schema`` attribute of a zarr v3 store, or None if ``path`` is not one."""
    import zarr

    if not Path(path).is_dir():
        return None
    try:
        return zarr.open_group(str(path), mode="r", zarr_format=3).attrs.get("schema")
    except Exception:  # noqa: BLE001 -- zarr raises several types for a non-store directory
        return None


def is_plan_store(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a PLAN.zarr (schema chord-robot/plan), False for anything else."""
    return store_schema(path) == PLAN_SCHEMA


def load_flow_or_plan(path: str | os.PathLike[str]) -> ObjectFlow | Plan:
    """Load a FLOW.zarr or a PLAN.zarr, whichever ``path`` is; InputError otherwise."""
    schema = store_schema(path)
    if schema == PLAN_SCHEMA:
        return Plan.load(path)
    if schema == FLOW_SCHEMA:
        return ObjectFlow.load(path)
    if not Path(path).exists():
        raise InputError(f"{path} does not exist")
    raise InputError(
        f"{path} is neither a FLOW.zarr nor a PLAN.zarr (schema {schema!r}); make one with "
        "`chord-robot flow` or `chord-robot plan`"
    )


# --------------------------------------------------------------------------- time


def video_times(duration: float, fps: float) -> np.ndarray:
    """(T,) the times of a video's frames: ``min(i / fps, duration)`` for
    i = 0 .. ceil(duration * fps), so the last frame shows the end."""
    if not (fps > 0) or not math.isfinite(fps):
        raise InputError(f"fps must be a positive number, got {fps}")
    n = math.ceil(duration * fps - 1e-9) + 1
    return np.minimum(np.arange(n) / fps, duration)


def plan_states(plan: Plan, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arm joints and gripper command of a plan at given times.

    Args:
        times: (F,) seconds of plan time.
    Returns:
        joints (F, dof) on the curve executors follow; gripper (F,) in [0, 1], 1 = open.
    """
    times = np.asarray(times, dtype=np.float64)
    assert times.ndim == 1, times.shape
    q, _ = follow(plan_motions(plan.times, plan.joints, plan.gripper), plan.joints[0], times)
    return q, np.interp(times, plan.times, plan.gripper)


def flow_phase(plan: Plan, num_flow_frames: int, times: np.ndarray) -> np.ndarray:
    """(F,) fractional flow frame in [0, T-1] shown at each plan time (see module docstring)."""
    step = np.interp(np.asarray(times, dtype=np.float64), plan.times, np.arange(plan.num_steps))
    k, l = plan.segments["manipulate"]
    if l <= k or num_flow_frames < 2:
        return np.where(step >= l, num_flow_frames - 1.0, 0.0)
    return np.clip((step - k) / (l - k), 0.0, 1.0) * (num_flow_frames - 1)


def motion_at(trajectories: np.ndarray, phase: float) -> np.ndarray:
    """(N, 3) positions at a fractional frame of ``trajectories`` (T, N, 3), linear in between."""
    t = trajectories.shape[0]
    phase = float(np.clip(phase, 0, t - 1))
    a = math.floor(phase)
    b = min(a + 1, t - 1)
    w = phase - a
    if w < 1e-9:
        return trajectories[a]
    return (1 - w) * trajectories[a] + w * trajectories[b]


def object_colors(flow: ObjectFlow) -> dict[str, np.ndarray]:
    """(3,) RGB in [0, 1] per object: palette colours by sorted name, grey for static objects."""
    out, i = {}, 0
    for name in sorted(flow.objects):
        if flow.objects[name].static:
            out[name] = STATIC_COLOR
        else:
            out[name] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def subsample(motion: ObjectMotion, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """(N',) sorted indices of at most ``max_points`` of the object's points (all if fewer)."""
    n = len(motion.points)
    if n <= max_points:
        return np.arange(n)
    return np.sort(rng.choice(n, max_points, replace=False))


# --------------------------------------------------------------------------- drawing
