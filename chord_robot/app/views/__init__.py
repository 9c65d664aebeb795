"""Pictures and videos of scenes, flows and plans (layer 2).

    preview      -- top and side views of a scan's objects (`chord-robot scene --preview`).
    plan_render  -- the robot executing a plan, drawn from the plan's joints (`chord-robot render PLAN`).
    viewer       -- the interactive viser viewer (`chord-robot view`).
"""
