"""PyBullet simulation (layer 1, DESIGN.md §6): worlds, the task suite, plan execution.

Modules:
    world    -- `World` (an explicit PyBullet client), the table, the Panda, poses, bounded
                stepping and settling.
    render   -- TinyRenderer images from a `chord_robot.camera.Camera`, `Recorder`, MP4s.
    execute  -- `execute(world, panda, plan, bodies)`: joint-space tracking of a `Plan` with
                gripper commands; returns an `ExecutionReport`.
    assets   -- procedural URDFs and meshes (laptop, desk lamp, banana, plate, cloth).
    tasks    -- `TASKS`: close-laptop, lower-lamp, pick-banana, fold-fabric.
    scene    -- a user's scan (`chord_robot.scene.Scene`) as PyBullet bodies.

Imports numpy, pybullet, trimesh, imageio and the `chord_robot` contracts only; never
planning, flowgen or torch. Importing this package imports nothing heavy.
"""
