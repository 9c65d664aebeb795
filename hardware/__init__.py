"""Driving real arms safely (layer 1, DESIGN.md §7).

Modules, in reading order:
    robots      -- `RobotSpec` table (Panda, UR5e, xArm 6/7): the shared description of
                   `chord_robot.robots` (URDF, base and TCP links, joints, published limits)
                   plus the points the safety layer checks.
    kinematics  -- forward kinematics from a URDF (yourdfpy parses; numpy composes, batched).
    frames      -- the scan-to-robot registration (`parse_transform`); poses and transforms
                   are `chord_robot.geometry`'s.
    arm         -- the `Arm` protocol, `ArmInfo`/`ArmState`/`GripperCommand`/`Progress`,
                   and `session` (always stops and disconnects).
    safety_config -- `SafetyConfig`: the limits and tolerances, which a config may only tighten.
    safety      -- the checks (limits, workspace, table, gripper, base, TCP, start) and
                   `Refusal`.
    runner      -- `prepare` (plan -> checked program) and `run` (execute, stop on faults).
    config      -- the execute TOML config file.
    backends    -- franka (franky-control), ur (ur-rtde), xarm (xarm-python-sdk); each SDK is
                   imported only inside its backend. The PyBullet backend lives in
                   `chord_robot.app.sim_arm` (layer 2), since this package never imports `sim`.

The curve an arm follows through a plan's waypoints (`JointTrajectory`) is the layer-0
contract `chord_robot.trajectory`, which planning verifies its plans on and sim tracks.

Shapes: S samples of a curve (or configurations), N checked points, T plan steps, dof joints.
Imports numpy, scipy, yourdfpy and the `chord_robot` contracts only. How far the real-arm
backends have been tested: docs/hardware-notes.md.
"""
