"""Driving real arms safely (layer 1, DESIGN.md §7).

Modules:
    robots      -- `RobotLimits`/`RobotSpec` table (Panda, UR5e, xArm 6/7) with sources.
    kinematics  -- forward kinematics from a URDF (yourdfpy parses; numpy composes, batched).
    frames      -- poses and the scan-to-robot registration (`parse_transform`).
    trajectory  -- `JointTrajectory`: the smooth, speed-scaled curve an arm follows.
    arm         -- the `Arm` protocol, `ArmInfo`/`ArmState`/`GripperCommand`/`Progress`,
                   and `session` (always stops and disconnects).
    safety      -- the checks (limits, workspace, table, gripper, base, TCP, start) and
                   `Refusal`.
    runner      -- `prepare` (plan -> checked program) and `run` (execute, stop on faults).
    config      -- the execute TOML config file.
    backends    -- franka (franky-control), ur (ur-rtde), xarm (xarm-python-sdk); each SDK is
                   imported only inside its backend. The PyBullet backend lives in
                   `chord_robot.sim_arm` (layer 2), since this package never imports `sim`.

Imports numpy, scipy, yourdfpy and the `chord_robot` contracts only. None of the real-arm
backends has been run against a physical arm yet.
"""
