"""Layer 2: the application that wires the layer-1 packages together (DESIGN.md §1).

Reading order:
    api         -- the Python API (`chord_robot.load_scan`, `generate_flow`, `plan`, `simulate`).
    cli         -- the `chord-robot` command line (typer); one module per command in `commands/`,
                   each a thin layer over the functions below.
    scenes      -- a scan as a scene of named objects (labels, else segmentation).
    flowconfig  -- a flow run's config: a preset plus the overrides, declared once (`FLOW_OVERRIDES`).
    flowrun     -- a flow run: checked inputs (`prepare_flow`) -> ObjectFlow (`run_flow` -> `FlowRun`).
    waninputs   -- the Wan prior's side of it: weights against size and device, a task read
                   against a `train-prior` model's sentences.
    trial       -- the one trial runner (reset -> flow -> plan -> execute -> evaluate).
    taskflows   -- the flow sources of sim tasks (oracle, a fit to the task's video).
    demo        -- `chord-robot demo` on the shipped example.
    evaluate    -- the simulated evaluation suite; `results` its JSON, tables and plots.
    sim_arm     -- the PyBullet arm behind `hardware`'s `Arm` protocol (`execute --robot sim`).
    views/      -- scene previews, flow videos, plan videos, the interactive viewer.
    layers      -- the import graph of the packages, checked against the layer rule.

Heavy libraries (torch, jax, pybullet, diffusers) are imported inside the functions that need
them, so importing this package and `chord-robot --help` stay instant.
"""
