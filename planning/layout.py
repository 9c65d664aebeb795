"""The step layout of one manipulation, its targets, and its assembly into a timed Plan.

Optimisation steps (S = A + T + R)::

    0                 start configuration
    1 .. F            free approach steps (joint-space path to the pre-grasp)
    F+1 .. A-1        insertion: pre-grasp -> grasp, straight along the TCP's z
    A .. A+T-1        manipulate: one step per flow frame, grasp at A
    A+T .. S-1        retreat: back along the TCP's z

In the Plan the grasp and the last manipulate step are repeated, so the gripper can close
(open) at rest between segments: approach [0, A], manipulate [A+1, A+T], retreat [A+T+1, S+1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chord_robot import geometry
from chord_robot.plans import Plan
from planning.grasps import Grasp
from planning.kinematics import marker_points
from planning.region import CarriedPoints
from planning.robot import RobotModel
from planning.timing import TimingConfig, time_segment


@dataclass(frozen=True)
class StepLayout:
    """How many steps each part of the motion gets.

    Attributes:
        frames: T, the flow's frame count (one manipulate step per frame).
        approach_free: F, free steps between the start and the pre-grasp.
        insert_steps: steps from the pre-grasp to the grasp.
        retreat_steps: R, steps of the retreat.
    """

    frames: int
    approach_free: int
    insert_steps: int
    retreat_steps: int

    @property
    def grasp(self) -> int:
        """A: index of the grasp step (manipulate frame 0)."""
        return 1 + self.approach_free + self.insert_steps

    @property
    def first_target(self) -> int:
        """Index of the pre-grasp, the first step with a pose target."""
        return 1 + self.approach_free

    @property
    def size(self) -> int:
        """N: number of optimisation steps."""
        return self.grasp + self.frames + self.retreat_steps

    @property
    def manipulate(self) -> slice:
        return slice(self.grasp, self.grasp + self.frames)

    def smoothness_mask(self) -> np.ndarray:
        """(S - 2,) smoothness multipliers of the triples centred at steps 1..S-2: zero at the
        grasp and at the release, where the arm stops for the gripper anyway."""
        mask = np.ones(self.size - 2)
        mask[[self.grasp - 1, self.grasp + self.frames - 2]] = 0.0
        return mask

    def plan_segments(self, steps: np.ndarray) -> list[np.ndarray]:
        """Approach, manipulate and retreat parts of per-step values (S, ...), the grasp and
        the release repeated."""
        a, t = self.grasp, self.frames
        return [steps[: a + 1], steps[a : a + t], steps[a + t - 1 :]]


def back_off(pose: np.ndarray, distance: float) -> np.ndarray:
    """``pose`` (4, 4) moved back along its own z by ``distance``."""
    out = pose.copy()
    out[:3, 3] -= distance * pose[:3, 2]
    return out


def step_targets(
    layout: StepLayout,
    grasp: np.ndarray,
    ee: np.ndarray,
    carried: CarriedPoints,
    approach: float,
    retreat: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attached points of every step, world frame.

    Args:
        grasp: (4, 4) TCP pose at the grasp.
        ee: (T, 4, 4) TCP poses the rigid attachment predicts over the flow.
        carried: the grasped region, N points.
        approach: pre-grasp distance back along the TCP's z, metres.
        retreat: retreat distance back along the final TCP's z, metres.
    Returns:
        (S, N, 3) points in the TCP frame, (S, N, 3) their targets, (S, N) weights.
    """
    a, t, r = layout.grasp, layout.frames, layout.retreat_steps
    assert ee.shape == (t, 4, 4), ee.shape
    n, p = layout.size, len(carried.weights)
    local, target, weights = np.zeros((n, p, 3)), np.zeros((n, p, 3)), np.zeros((n, p))
    poses = {}
    for k in range(layout.insert_steps):  # pre-grasp (full offset) -> just before the grasp
        poses[layout.first_target + k] = back_off(grasp, approach * (1 - k / layout.insert_steps))
    for k in range(1, r + 1):
        poses[a + t - 1 + k] = back_off(ee[-1], retreat * k / r)
    markers = marker_points()
    for i, pose in poses.items():
        local[i, :4] = markers
        target[i, :4] = geometry.transform_points(pose, markers)
        weights[i, :4] = 1.0
    local[a : a + t] = geometry.transform_points(geometry.invert(grasp), carried.points)
    target[a : a + t] = carried.trajectories
    weights[a : a + t] = carried.weights
    return local, target, weights


def pose_error(
    layout: StepLayout, ee: np.ndarray, local: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> float:
    """Largest RMS marker error (metres) of the approach and retreat pose targets.

    Args:
        ee: (S, 4, 4) TCP poses, in the frame of ``target``.
        local, target, weights: the steps' attached points (see `step_targets`).
    """
    worst = 0.0
    outside = [*range(layout.grasp), *range(layout.grasp + layout.frames, layout.size)]
    for i in outside:
        w = weights[i]
        if w.sum() == 0:
            continue
        d = np.linalg.norm(geometry.transform_points(ee[i], local[i]) - target[i], axis=1)
        worst = max(worst, float(np.sqrt((w * d**2).sum() / w.sum())))
    return worst


def assemble_plan(
    layout: StepLayout,
    model: RobotModel,
    timing: TimingConfig,
    name: str,
    grasp: Grasp,
    base: np.ndarray,
    q: np.ndarray,
    ee: np.ndarray,
) -> Plan:
    """Time the three segments rest to rest, with a gripper pause between them, into a Plan.

    The times keep the plan's curve (`chord_robot.trajectory`, what sim and arms follow)
    within the robot's limits x ``timing.speed`` (`planning.timing.time_segment`).

    Args:
        q: (S, dof) joints within the limits.
        ee: (S, 4, 4) TCP poses, world frame.
        base: (4, 4) robot base pose, world frame.
    """
    assert q.shape == (layout.size, model.dof) and ee.shape == (layout.size, 4, 4)
    parts = layout.plan_segments(q)
    timed = [time_segment(s, model.velocity, model.acceleration, model.jerk, timing) for s in parts]
    times, offset = [], 0.0
    for seg in timed:
        times.append(seg.times + offset)
        offset = times[-1][-1] + timing.gripper_time
    lengths = [len(s) for s in parts]
    bounds = np.cumsum([0, *lengths])
    names = ("approach", "manipulate", "retreat")
    segments = {k: [int(bounds[i]), int(bounds[i + 1] - 1)] for i, k in enumerate(names)}
    free = 1.0 if grasp.mode == "grasp" else 0.0  # a push keeps the fingers closed throughout
    gripper = np.concatenate(
        [np.full(lengths[0], free), np.zeros(lengths[1]), np.full(lengths[2], free)]
    )
    return Plan(
        robot=model.spec.name,
        robot_urdf=model.spec.urdf,
        object=name,
        mode=grasp.mode,
        grasp_pose=geometry.matrix_to_pose(grasp.pose),
        grasp_width=grasp.width,
        ee_poses=geometry.matrix_to_pose(np.concatenate(layout.plan_segments(ee))),
        joints=np.concatenate(parts),
        times=np.concatenate(times),
        gripper=gripper,
        segments=segments,
        dt=float(np.mean(np.diff(times[1]))),
        costs={
            "peak_velocity_ratio": max(s.peak_velocity for s in timed),
            "peak_acceleration_ratio": max(s.peak_acceleration for s in timed),
            "peak_jerk_ratio": max(s.peak_jerk for s in timed),
            "timing_stretch": max(s.stretch for s in timed),
        },
        joint_names=model.joint_names,
        robot_base=geometry.matrix_to_pose(base),
    )
