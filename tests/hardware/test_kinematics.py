"""The fast paths the safety layer relies on, held to plain references: forward kinematics
against yourdfpy's scene graph, registration parsing against known transforms. (The curve an
arm follows is tested with its contract, tests/chord_robot/test_trajectory.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from chord_robot.errors import InputError
from chord_robot.geometry import matrix_to_pose, pose_to_matrix
from hardware.frames import parse_transform
from hardware.kinematics import kinematics_for
from hardware.robots import PANDA, ROBOTS, XARM6


@pytest.mark.parametrize("spec", [PANDA, XARM6], ids=lambda s: s.name)
def test_forward_kinematics_matches_yourdfpy(spec):
    kin = kinematics_for(spec)
    rng = np.random.default_rng(0)
    lo, hi = np.asarray(spec.limits.lower), np.asarray(spec.limits.upper)
    q = rng.uniform(np.maximum(lo, -2.5), np.minimum(hi, 2.5), size=(4, spec.dof))
    links = sorted({p.link for p in spec.points} | {spec.tcp_link})
    fast = kin.link_poses(q, links)
    for i in range(len(q)):
        for link in links:
            np.testing.assert_allclose(
                fast[link][i], kin.reference_link_pose(q[i], link), atol=1e-9
            )


def test_panda_home_pose_is_franka_s():
    # Franka's controller reports O_T_EE = (0.307, 0, 0.487), pointing down, at this home pose,
    # for its default end effector 0.1034 m past the flange; our TCP is 0.105 m past it
    home = np.array([[0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4]])
    poses = kinematics_for(PANDA).link_poses(home, ["panda_link8", PANDA.tcp_link])
    flange, tcp = poses["panda_link8"][0], poses[PANDA.tcp_link][0]
    np.testing.assert_allclose(
        flange[:3, 3] + 0.1034 * flange[:3, 2], [0.307, 0.0, 0.487], atol=1.5e-3
    )
    np.testing.assert_allclose(tcp[:3, 2], [0.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(tcp[:3, 3], flange[:3, 3] + 0.105 * flange[:3, 2], atol=1e-9)


def test_parse_transform_accepts_the_documented_forms(tmp_path):
    pose = np.array([0.7071068, 0, 0, 0.7071068, 0.5, -0.2, 0.1])  # 90 deg about z
    m = pose_to_matrix(pose)
    np.testing.assert_allclose(
        parse_transform("0.5,-0.2,0.1,0.7071068,0,0,0.7071068"), m, atol=1e-6
    )
    (tmp_path / "a.json").write_text(json.dumps({"robot_from_scan": m.tolist()}))
    (tmp_path / "b.json").write_text(
        json.dumps({"pose": [0.5, -0.2, 0.1, 0.7071068, 0, 0, 0.7071068]})
    )
    (tmp_path / "c.txt").write_text("\n".join(" ".join(f"{v:.9f}" for v in row) for row in m))
    for name in ("a.json", "b.json", "c.txt"):
        np.testing.assert_allclose(parse_transform(tmp_path / name), m, atol=1e-6)
    np.testing.assert_allclose(matrix_to_pose(m), pose, atol=1e-6)
    with pytest.raises(InputError, match="7 numbers"):
        parse_transform("1,2,3")
    bad = m.copy()
    bad[:3, :3] *= 2
    (tmp_path / "d.json").write_text(json.dumps(bad.tolist()))
    with pytest.raises(InputError, match="not a rigid transform"):
        parse_transform(tmp_path / "d.json")


def test_every_robot_names_the_source_of_its_limits():
    for spec in ROBOTS.values():
        assert spec.limits.source and spec.limits.dof == spec.dof
        assert all(
            v > 0 for v in spec.limits.velocity + spec.limits.acceleration + spec.limits.jerk
        )
    # Franka's published values, not the URDF's
    assert PANDA.limits.upper[0] == 2.8973 and PANDA.limits.velocity[4] == 2.61
    assert PANDA.limits.acceleration == (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)
    assert PANDA.limits.jerk == (7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0)
