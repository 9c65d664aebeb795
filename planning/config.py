"""What a plan is asked for: `PlanConfig`, its presets, and the step layout it implies.

One frozen dataclass gathers every component's config (region, grasp, push, pinch, placement,
IK, trajectory optimisation, timing) and the planner's own acceptance thresholds; presets are
functions returning one (`PRESETS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from chord_robot.errors import ConfigError, quote
from planning.grasps import GraspConfig
from planning.hinge import HingeConfig
from planning.kinematics import IKConfig
from planning.layout import StepLayout
from planning.pinch import PinchConfig
from planning.placement import PlacementConfig
from planning.push import PushConfig
from planning.region import RegionConfig
from planning.robot import RobotSpec, panda
from planning.timing import TimingConfig
from planning.trajopt import TrajOptConfig

Mode = Literal["grasp", "push", "auto"]
"""How the object is moved: grasped, pushed, or "auto" (grasp if a reachable grasp exists,
else push)."""

MODES: tuple[str, ...] = get_args(Mode)


def check_mode(mode: str) -> None:
    """ConfigError (field ``mode``) unless ``mode`` is one of `MODES`."""
    if mode not in MODES:
        raise ConfigError("mode", f"{{field}} must be one of {', '.join(MODES)}, got {quote(mode)}")


@dataclass(frozen=True)
class PlanConfig:
    """Everything `plan_from_flow` needs besides the flow and the scene."""

    robot: RobotSpec = field(default_factory=panda)
    """Robot to plan for."""
    mode: Mode = "auto"
    """"grasp", "push", or "auto" (grasp if a reachable grasp exists, else push)."""
    region: RegionConfig = field(default_factory=RegionConfig)
    """Object, moving part and carried points."""
    hinge: HingeConfig = field(default_factory=HingeConfig)
    """Whether and how a grip on a hinged link follows a hinge (`planning.hinge`)."""
    grasp: GraspConfig = field(default_factory=GraspConfig)
    """Antipodal grasp sampling."""
    push: PushConfig = field(default_factory=PushConfig)
    """Push contact sampling."""
    pinch: PinchConfig = field(default_factory=PinchConfig)
    """Pinches of sheets (proposed with the grasps)."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """Automatic base placement."""
    ik: IKConfig = field(default_factory=IKConfig)
    """IK that initialises the optimiser and tests reachability."""
    trajopt: TrajOptConfig = field(default_factory=TrajOptConfig)
    """Trajectory optimisation weights."""
    timing: TimingConfig = field(default_factory=TimingConfig)
    """Time parametrisation."""
    start_joints: tuple[float, ...] | None = None
    """Start configuration of the arm; None for the robot's home."""
    approach_free: int = 4
    """Free steps between the start and the pre-grasp."""
    insert_steps: int = 4
    """Steps from the pre-grasp to the grasp."""
    retreat_steps: int = 6
    """Steps of the retreat after the motion."""
    retreat_distance: float = 0.1
    """How far the TCP backs off along its z after the motion, metres."""
    candidates: int = 32
    """Best grasp proposals tested for reachability along the whole motion (in rank order:
    the search stops at the first reachable one; when none is, every one and its twin is
    solved for, per base pose and mode)."""
    reach_weight: float = 2.0
    """Score weight of how naturally the hand points away from the shoulder over the motion."""
    bend_weight: float = 3.0
    """Score lost per millimetre of the flow's bending around a grasp (`planning.region.local_bending`
    within ``bend_radius``): rigid grips go where the part moves as one, away from joints."""
    bend_radius: float = 0.05
    """Radius of the neighbourhood whose bending is measured, metres."""
    still_clearance: float = 0.02
    """A grip's hand (palm and fingers, `planning.grasps.gripper_boxes`), carried with the
    grasped part, keeps this far from the points of its object that stay still, metres
    (`CandidateSearch.meets_still_part`): the fingers between a closing lid and its base meet
    the base before the lid closes, and the grip then shoves the object. Covers the
    centimetre a generated flow's hinge may sit off the object's."""
    bases: int = 4
    """Automatic base candidates tried."""
    seeds: int = 8
    """IK seeds for the first target (the start configuration and random ones)."""
    ik_tolerance: float = 0.004
    """A candidate is reachable if IK meets every step's targets within this RMS, metres,
    beyond the flow's own non-rigidity: at a flow frame, the RMS distance of the carried
    points to their best rigid fit (`rigid_residual`, a few mm on a generated flow) is the
    least any TCP pose can reach, so only the IK error in excess of it counts."""
    ik_table_tolerance: float = 0.02
    """...and its IK path keeps the robot's body no deeper than this in the table, metres (the
    optimiser lifts shallower dips using the arm's redundancy)..."""
    approach_overlap: float = 0.01
    """...and its free approach, from the start to the pre-grasp, overlaps the scene's points
    by no more than this with the robot's covering spheres (which are 1-2 cm larger than the
    links), metres; the optimised approach is held to the same. Within a base pose, approaches
    that overlap at all are tried after every clean one: a push's approach 3-8 mm into a laptop's
    lid ran into it and shoved the laptop 55-64 mm (docs/planning-notes.md, session 25)."""
    hand_overlap: float = 0.002
    """While it moves the object and retreats, the hand's own boxes (palm and fingers, closed on
    the object, open after the release; `planning.clearance.hand_clearance`) may reach this far
    into the rest of the scene, metres (its points are 5 mm apart); the arm's spheres keep to
    ``approach_overlap``."""
    lift_clearance: float = 0.005
    """When a carried object's hand would meet the rest of the scene (beyond ``hand_overlap``),
    its path is raised where the hand comes within this of it and solved again
    (`FlowPlanner._lift_over`), metres..."""
    max_lift: float = 0.04
    """...by at most this much, metres (more: the flow goes through the object, not over its
    edge, and the plan is refused)."""
    approach_hold: float = 100.0
    """How much harder than other steps a free approach step is pulled to its IK solution
    when the optimised approach strayed into the scene."""
    max_alignment_error: float = 0.01
    """Largest mean flow alignment error of an accepted plan, metres."""
    max_pose_error: float = 0.01
    """Largest RMS error of approach/retreat pose targets of an accepted plan, metres."""
    max_table_penetration: float = 0.003
    """Largest depth the robot's body (collision hulls, hand boxes) may reach into the table,
    metres."""
    solves: int = 3
    """Reachable candidates whose trajectory is optimised before giving up, best first."""

    def __post_init__(self) -> None:
        check_mode(self.mode)

    def layout(self, frames: int) -> StepLayout:
        """The optimisation steps for a flow of ``frames`` frames."""
        return StepLayout(frames, self.approach_free, self.insert_steps, self.retreat_steps)


def default_config(**overrides: object) -> PlanConfig:
    """The default preset (Panda, auto mode, 256 carried points)."""
    return replace(PlanConfig(), **overrides)


def fast_config(**overrides: object) -> PlanConfig:
    """Fewer samples and candidates: for tests and quick previews."""
    base = PlanConfig(
        grasp=GraspConfig(samples=80, approaches=8),
        push=PushConfig(samples=80),
        candidates=4,
        bases=2,
    )
    return replace(base, **overrides)


PRESETS: dict[str, Callable[..., PlanConfig]] = {"default": default_config, "fast": fast_config}
"""Presets by name."""
