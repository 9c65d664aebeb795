"""Which grasp proposals get the (expensive) IK test along the motion, and in what order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from planning.grasps import Grasp


def motion_reach_score(ee: np.ndarray, shoulder: np.ndarray, reach: float) -> float:
    """How naturally an arm at ``shoulder`` (3,) holds the TCP poses ``ee`` (T, 4, 4).

    The worst cosine between the approach axis and the direction out from the shoulder, minus
    a penalty per metre beyond ``reach``: a hand that has to turn back towards the robot at
    some point of the motion scores low.
    """
    out = ee[:, :3, 3] - shoulder
    dist = np.linalg.norm(out, axis=1)
    cos = np.einsum("ti,ti->t", ee[:, :3, 2], out / dist[:, None])
    return float(cos.min() - 10.0 * np.maximum(dist - reach, 0.0).max())


def diverse(
    ranked: list[Grasp], count: int, distance: float = 0.03, angle_deg: float = 45.0
) -> list[Grasp]:
    """Up to ``count`` grasps from ``ranked`` (best first), spread out.

    Each pick differs from every earlier one by ``distance`` metres in contact centre or
    ``angle_deg`` in approach direction; when no such grasp is left, the best remaining ones
    fill up. One unreachable family of near-identical grasps cannot use up the IK budget.
    """
    cos_max = np.cos(np.deg2rad(angle_deg))
    picked: list[int] = []
    for i, g in enumerate(ranked):
        if len(picked) == count:
            break
        c, z = g.contacts.mean(0), g.pose[:3, 2]
        if all(
            np.linalg.norm(c - ranked[k].contacts.mean(0)) > distance
            or z @ ranked[k].pose[:3, 2] < cos_max
            for k in picked
        ):
            picked.append(i)
    rest = [i for i in range(len(ranked)) if i not in picked]
    return [ranked[i] for i in picked + rest[: count - len(picked)]]


def twin(grasp: Grasp) -> Grasp:
    """The same grasp with the hand turned 180 degrees about its approach axis (the fingers
    swap; the wrist's last joint differs by pi, which its limits may or may not allow)."""
    return replace(grasp, pose=grasp.pose @ np.diag([-1.0, -1.0, 1.0, 1.0]))
