"""PyBullet simulation (layer 1, DESIGN.md §6): worlds, the task suite, plan execution.

Modules (reading order):
    world        -- `World` (an explicit PyBullet client), the table, the Panda, poses, bounded
                    stepping and settling.
    render       -- TinyRenderer images from a `chord_robot.camera.Camera`, `Recorder`, MP4s.
    assets/      -- procedural URDFs and meshes (laptop, desk lamp, banana, plate, cloth),
                    one module per family; its `__init__` has the map.
    tasks/       -- `TASKS`: close-laptop, lower-lamp, pick-banana, fold-fabric, on a shared
                    `TaskBase`; its `__init__` has the map.
    execute      -- `execute(world, panda, plan, bodies)`: joint-space tracking of a `Plan` with
                    gripper commands; returns an `ExecutionReport`.
    scene        -- a user's scan (`chord_robot.scene.Scene`) as PyBullet bodies.
    articulation -- measure a joint's turn (and the rest's stillness) in a flow of a laptop or lamp.
    clips        -- rendered clips of laptops and lamps moving as prompted: the small video
                    prior's training set.

Axes in shape comments: T frames, N points, K control points, P parts, V views, H W pixels
(M mesh vertices or soft-body nodes, F faces, B clips of a set).

Imports numpy, pybullet, trimesh, imageio and the `chord_robot` contracts only; never
planning, flowgen or torch. Importing this package imports nothing heavy. Lab notes behind
its settings are in docs/sim-notes.md.
"""
