"""The simulated task suite (DESIGN.md §6): one module per task, registered here by name.

Modules (reading order):
    motion       -- oracle-flow building blocks: `Link`, surface sampling, the motions of rigid
                    links and of the static table.
    base         -- the `Task` protocol and `TaskBase`, the scaffolding every task shares
                    (constructor, reset seed, robot, scene queries, reference video), time
                    scaling and kinematic playback.
    close_laptop -- `CloseLaptop`: push an open laptop lid shut.
    lower_lamp   -- `LowerLamp`: tilt a desk lamp's arm and head down.
    pick_banana  -- `PickBanana`: put a banana on a plate.
    fold_fabric  -- `FoldFabric`: fold a soft cloth corner to corner.
    flow_inputs  -- what the ``video`` flow source fits: a task's scan, oracle video, camera
                    and background.

Each task class is built with a `sim.world.World` and follows `sim.tasks.base.Task`:
``reset(seed)``, ``oracle_flow()``, ``play_oracle()``, ``render_reference_video()``,
``scene_points()``, ``robot_base()``, ``evaluate() -> (success, metric)``.
"""

from __future__ import annotations

from chord_robot.errors import InputError
from sim.tasks.base import Task, TaskBase
from sim.tasks.close_laptop import CloseLaptop
from sim.tasks.fold_fabric import FoldFabric
from sim.tasks.lower_lamp import LowerLamp
from sim.tasks.pick_banana import PickBanana
from sim.world import World

TASKS: dict[str, type[TaskBase]] = {
    "close-laptop": CloseLaptop,
    "lower-lamp": LowerLamp,
    "pick-banana": PickBanana,
    "fold-fabric": FoldFabric,
}
"""Task name -> class (the paper's real-robot tasks, Table 1, plus fold-fabric)."""

PAPER_SUITE = ("close-laptop", "lower-lamp", "pick-banana", "fold-fabric")


def make(name: str, world: World, asset_root: str | None = None) -> Task:
    """Build the task called ``name`` in ``world`` with its default config."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name](world, asset_root=asset_root)


__all__ = ["PAPER_SUITE", "TASKS", "Task", "TaskBase", "make"]
