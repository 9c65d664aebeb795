"""Pictures and videos of scenes, flows and plans (layer 2).

    preview      -- top and side views of a scan's objects (`chord-robot scene --preview`).
    videos       -- a flow's points rendered frame by frame (`chord-robot render FLOW`).
    playback     -- the time axis a plan video and the viewer share: plan step and flow frame at a time.
    plan_render  -- the robot executing a plan, the flow's points drawn over it (`chord-robot render PLAN`).
    viewer       -- the interactive viser viewer (`chord-robot view`).
"""
