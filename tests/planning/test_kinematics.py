"""The compact TCP chain against PyRoki's forward kinematics (the reference), and the IK."""

from __future__ import annotations

import jax.numpy as jnp
import jaxlie
import numpy as np

from planning import se3
from planning.kinematics import PathIK, marker_points, tcp_chain, tcp_fk


def test_chain_matches_pyroki_forward_kinematics(planner):
    model = planner.model
    rng = np.random.default_rng(1)
    qs = rng.uniform(model.lower, model.upper, size=(25, model.dof))
    chain = tcp_chain(model)
    ours = np.stack([np.asarray(tcp_fk(chain, jnp.asarray(q, jnp.float32))) for q in qs])
    reference = np.asarray(
        jaxlie.SE3(
            model.kinematics.forward_kinematics(jnp.asarray(qs, jnp.float32))[:, model.tcp_index]
        ).as_matrix()
    )
    assert np.abs(ours - reference).max() < 1e-5


def test_tcp_is_between_the_fingertips(planner):
    model = planner.model
    kin = model.kinematics
    links = np.asarray(kin.forward_kinematics(jnp.asarray(model.home, jnp.float32)))
    hand = se3.to_matrix(links[kin.links.names.index("panda_hand")])
    tcp = model.tcp_pose(model.home)
    offset = se3.inverse(hand) @ tcp
    assert np.allclose(offset[:3, 3], [0, 0, 0.105], atol=1e-5)
    assert np.allclose(offset[:3, :3], np.eye(3), atol=1e-5)
    # Home: the hand points down.
    assert tcp[2, 2] < -0.99


def test_path_ik_recovers_poses_of_a_known_joint_path(planner):
    model = planner.model
    rng = np.random.default_rng(2)
    q_true = model.home + np.linspace(0, 1, 12)[:, None] * rng.uniform(-0.4, 0.4, model.dof)
    poses = model.tcp_pose(q_true)
    markers = marker_points()
    local = np.broadcast_to(markers, (12, 4, 3)).copy()
    target = se3.apply(poses, local)
    ik = PathIK(tcp_chain(model), model.lower, model.upper)
    q, err = ik.solve(model.home[None], model.home, local, target, np.ones((12, 4)))
    assert err.max() < 1e-4
    assert np.abs(model.tcp_pose(q)[:, :3, 3] - poses[:, :3, 3]).max() < 1e-4
    assert model.within_limits(q)
