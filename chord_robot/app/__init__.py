"""Layer 2: the application that wires the layer-1 packages together (DESIGN.md §1).

Reading order:
    cli          -- the `chord-robot` command line (typer); one module per command in `commands/`.
    flowrun      -- a flow run: scan + task (+ videos or Wan weights) -> checked inputs -> ObjectFlow.
    trial        -- the one trial runner (reset -> flow -> plan -> execute -> evaluate) that demo
                    and eval share.
    demo         -- `chord-robot demo` on the shipped example.
    evaluate     -- the simulated evaluation suite; `results` its JSON, tables and plots.
    sim_arm      -- the PyBullet arm behind `hardware`'s `Arm` protocol (`execute --robot sim`).
    views/       -- viewer (viser), plan and flow videos, scene previews.
    layers       -- the import graph of the packages, checked against the layer rule.

Heavy libraries (torch, jax, pybullet, diffusers) are imported inside the functions that need
them, so importing this package and `chord-robot --help` stay instant.
"""
