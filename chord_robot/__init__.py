"""chord-robot: robot manipulation from generated 3D object flow (the CHORD method).

The chain in four calls (`chord_robot.app.api`)::

    import chord_robot

    scene = chord_robot.load_scan("scan.ply")                     # -> Scene
    flow = chord_robot.generate_flow(scene, "close the laptop lid",
                                     video="video.mp4", camera="camera.json")  # -> ObjectFlow
    plan = chord_robot.plan(scene, flow)                          # -> Plan
    result = chord_robot.simulate(scene, plan)                    # -> SimResult

Reading order of the package:
    Layer 0, the data contracts every package imports (numpy, scipy, trimesh, zarr only):
        errors      -- typed errors and their exit codes (2 bad input, 1 the task failed).
        atomic      -- files written whole or not at all; zarrio -- zarr store helpers.
        scene       -- `Scene`, `SceneObject`: named objects of a scan, metres, z up.
        ply, scan   -- reading scans in every format, labels, manifests, units.
        camera      -- `Camera` (OpenCV convention) and its JSON.
        flow        -- `ObjectFlow`: points and trajectories per object (T, N, 3), control points.
        plans       -- `Plan`: grasp, end-effector poses, joints, times, gripper.
        trajectory  -- the curve every executor follows through a plan's waypoints.
        robots      -- robots' published limits.
        synth       -- synthetic scans with known answers (tests, examples).
    Layer 2, `chord_robot.app`: the CLI, flow runs, the trial runner, demo, eval, views.

Axes are named the same everywhere: T frames, N points, K control points, P parts, V views,
H W pixels. The functions below import the application only when called, so importing a
contract stays light (`python -m chord_robot.app.layers` checks it).
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# torch's OpenMP workers spin for up to ~1 ms after each parallel op before they sleep (GNU
# OpenMP's default spin count, 300000), taking the cores from the project's own worker threads
# (the rasteriser's frames, ARAP) that run between torch ops: a shipped-prior iteration ~6%
# slower on 2 cores (docs/performance.md, session 17). Read when torch loads, so set here, before
# any module imports torch; a value in the environment is kept.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def load_scan(path, **kwargs):
    """A scan as a scene of named objects; see `chord_robot.app.api.load_scan`."""
    from chord_robot.app import api

    return api.load_scan(path, **kwargs)


def generate_flow(scene, task, **kwargs):
    """How the scene's objects move for ``task``; see `chord_robot.app.api.generate_flow`."""
    from chord_robot.app import api

    return api.generate_flow(scene, task, **kwargs)


def plan(scene, flow, **kwargs):
    """A grasp and a trajectory that follows ``flow``; see `chord_robot.app.api.plan`."""
    from chord_robot.app import api

    return api.plan(scene, flow, **kwargs)


def simulate(scene, plan, **kwargs):
    """``plan`` executed in PyBullet on ``scene``; see `chord_robot.app.api.simulate`."""
    from chord_robot.app import api

    return api.simulate(scene, plan, **kwargs)


__all__ = ["__version__", "generate_flow", "load_scan", "plan", "simulate"]
