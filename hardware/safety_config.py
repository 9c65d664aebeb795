"""The safety layer's limits and tolerances (`SafetyConfig`) and how far a site may set them.

A config can only make the layer stricter than the built-in limits: each scalar field lies in
its `SAFETY_BOUNDS` range, whose loose end is the built-in default, and the workspace box lies
inside the built-in one. The checks that use these values are `hardware.safety`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot.errors import ConfigError, quote


@dataclass(frozen=True)
class SafetyConfig:
    """Limits and tolerances of the safety layer. Lengths are metres in the robot base frame."""

    max_speed: float = 1.0
    """Largest speed scale accepted (a site may lower it, e.g. to 0.5 for a first run)."""
    limit_fraction: float = 1.0
    """Fraction of the published velocity, acceleration and jerk limits a trajectory may use."""
    position_margin: float = 0.0
    """Distance kept from each joint's position limits, rad."""
    workspace_lower: tuple[float, float, float] = (-0.3, -0.8, -0.1)  # = WORKSPACE_LOWER
    """Lower corner of the box the checked points must stay in."""
    workspace_upper: tuple[float, float, float] = (1.0, 0.8, 1.3)  # = WORKSPACE_UPPER
    """Upper corner of that box."""
    table_z: float = 0.0
    """Height of the table plane (the base usually stands on it: 0)."""
    table_clearance: float = 0.005
    """Every checked point stays at least this far above the table."""
    start_tolerance: float = 0.01
    """Largest joint distance (max abs, rad) between the arm and the plan's first step. Small,
    because streaming backends (UR servoJ, xArm servo mode) command the plan's first sample
    as the arm's next position."""
    base_tolerance: float = 0.01
    """Largest distance between the plan's robot base and the registered one."""
    base_angle_tolerance: float = 0.035
    """Largest rotation between them, rad (2 degrees)."""
    tcp_tolerance: float = 0.01
    """Largest distance between the plan's end-effector positions and forward kinematics."""
    rest_tolerance: float = 1e-3
    """The gripper may only act between steps whose joints differ by less than this, rad."""
    max_duration: float = 600.0
    """Longest accepted (scaled) trajectory, seconds."""
    check_dt: float = 0.004
    """Time resolution of the checks, seconds (knots and knot midpoints are always checked)."""
    path_tolerance: float = 0.001
    """Largest joint-space distance (rad) between the path a controller will run (when the
    backend can say, e.g. franky's re-planned waypoints) and the checked curve."""

    def __post_init__(self) -> None:
        """A config can only make the layer stricter: every field inside `SAFETY_BOUNDS` (the
        built-in value is its loose end), the workspace box inside the built-in one, the
        table plane inside that box's height. Anything else is a ConfigError naming the field
        and its allowed range (exit 2)."""
        for name, (lo, hi, lo_open) in SAFETY_BOUNDS.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
            if not number or (value <= lo if lo_open else value < lo) or value > hi:
                raise ConfigError(name, f"{{field}} = {quote(value)} is outside its allowed range "
                                  f"{'(' if lo_open else '['}{lo:g}, {hi:g}]: a config can only tighten "
                                  "the built-in safety limits")
        lower, upper = np.asarray(self.workspace_lower, float), np.asarray(self.workspace_upper, float)
        for name, box in (("workspace_lower", lower), ("workspace_upper", upper)):
            if box.shape != (3,) or not np.isfinite(box).all():
                raise ConfigError(name, f"{{field}} must be three finite numbers (x, y, z), got {quote(box.tolist())}")
        if (lower < WORKSPACE_LOWER).any() or (upper > WORKSPACE_UPPER).any() or not (lower < upper).all():
            raise ConfigError("workspace_lower", f"the workspace box {lower.tolist()} .. {upper.tolist()} must lie "
                              f"inside the built-in {list(WORKSPACE_LOWER)} .. {list(WORKSPACE_UPPER)} with lower "
                              "< upper: a config can only shrink it")
        if not (lower[2] <= self.table_z < upper[2]):
            raise ConfigError("table_z", f"{{field}} = {quote(self.table_z)} must lie in the workspace's height "
                              f"range [{lower[2]:g}, {upper[2]:g})")


WORKSPACE_LOWER = (-0.3, -0.8, -0.1)
"""The built-in workspace box's lower corner, metres (a config may only raise it)."""
WORKSPACE_UPPER = (1.0, 0.8, 1.3)
"""...and its upper corner (a config may only lower it)."""

SAFETY_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "max_speed": (0.0, 1.0, True),
    "limit_fraction": (0.0, 1.0, True),
    "position_margin": (0.0, 0.5, False),
    "table_clearance": (0.005, 0.2, False),
    "start_tolerance": (0.0, 0.01, True),
    "base_tolerance": (0.0, 0.01, True),
    "base_angle_tolerance": (0.0, 0.035, True),
    "tcp_tolerance": (0.0, 0.01, True),
    "rest_tolerance": (0.0, 1e-3, True),
    "max_duration": (0.0, 600.0, True),
    "check_dt": (0.0, 0.004, True),
    "path_tolerance": (0.0, 0.001, True),
}
"""Allowed range of each scalar `SafetyConfig` field: (low, high, low end open). The built-in
default is the loose end of every range (a site can lower a speed or a tolerance, raise a
clearance or a margin)."""
