"""The compact TCP chain against PyRoki's forward kinematics (the reference), the IK, the
robot's published limits, and the spheres that keep the arm above the table."""

from __future__ import annotations

import jax.numpy as jnp
import jaxlie
import numpy as np
import pytest

from chord_robot import geometry
from chord_robot.robots import PANDA_LIMITS
from planning.kinematics import (
    PathIK,
    body_points,
    chain_frames,
    marker_points,
    robot_body_points,
    tcp_chain,
    tcp_fk,
)


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
    hand = geometry.pose_to_matrix(links[kin.links.names.index("panda_hand")])
    tcp = model.tcp_pose(model.home)
    offset = geometry.invert(hand) @ tcp
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
    target = geometry.transform_points(poses, local)
    ik = PathIK(tcp_chain(model), model.lower, model.upper)
    q, err = ik.solve(model.home[None], model.home, local, target, np.ones((12, 4)))
    assert err.max() < 1e-4
    assert np.abs(model.tcp_pose(q)[:, :3, 3] - poses[:, :3, 3]).max() < 1e-4
    assert model.within_limits(q)


def test_chain_frames_match_pyroki_link_poses(planner):
    model = planner.model
    chain = tcp_chain(model)
    kin = model.kinematics
    q = np.random.default_rng(3).uniform(model.lower, model.upper, model.dof)
    ours = np.asarray(chain_frames(chain, jnp.asarray(q, jnp.float32)))
    links = np.asarray(jaxlie.SE3(kin.forward_kinematics(jnp.asarray(q, jnp.float32))).as_matrix())
    reference = [links[kin.links.names.index(name)] for name in chain.links]
    reference.append(links[model.tcp_index])
    assert chain.links == tuple(f"panda_link{i}" for i in range(1, 8))
    assert np.abs(ours - np.stack(reference)).max() < 1e-5


def test_model_has_franka_s_published_limits_not_the_urdf_s(planner):
    model, lim = planner.model, PANDA_LIMITS.arrays()
    for name in ("lower", "upper", "velocity", "acceleration", "jerk"):
        np.testing.assert_array_equal(getattr(model, name), lim[name])
    # pyroki's own limits (its limit costs, default configuration) agree
    np.testing.assert_allclose(np.asarray(model.kinematics.joints.lower_limits), lim["lower"])
    np.testing.assert_allclose(np.asarray(model.kinematics.joints.upper_limits), lim["upper"])
    np.testing.assert_allclose(np.asarray(model.kinematics.joints.velocity_limits), lim["velocity"])
    assert model.upper[1] == 1.7628  # the URDF says 1.8326


def test_spheres_cover_every_collision_mesh_vertex_of_their_links(planner):
    import os

    import trimesh
    import yourdfpy

    from chord_robot.robots import resolve_urdf

    spec = planner.model.spec
    path = resolve_urdf(spec.urdf)
    urdf = yourdfpy.URDF.load(path, load_meshes=False)
    for link in sorted({s[0] for s in spec.spheres}):
        spheres = [(np.asarray(c), r) for name, c, r in spec.spheres if name == link]
        for col in urdf.link_map[link].collisions:
            mesh_path = col.geometry.mesh.filename.replace("package://", "")
            mesh = trimesh.load(os.path.join(os.path.dirname(path), mesh_path), force="mesh")
            verts = trimesh.transform_points(
                mesh.vertices, col.origin if col.origin is not None else np.eye(4)
            )
            inside = np.zeros(len(verts), dtype=bool)
            for c, r in spheres:
                inside |= np.linalg.norm(verts - c, axis=1) <= r
            assert inside.all(), (link, int((~inside).sum()))


def test_body_points_follow_the_hand_and_the_arm(planner):
    model = planner.model
    chain = tcp_chain(model)
    body = robot_body_points(chain, model)
    pts = np.asarray(body_points(chain, body, jnp.asarray(model.home, jnp.float32)))
    tcp = model.tcp_pose(model.home)
    hand = body.frame == len(chain.links)
    local = geometry.transform_points(geometry.invert(tcp), pts[hand])
    np.testing.assert_allclose(local, body.local[hand], atol=1e-5)
    # the fingertips reach 8 mm past the TCP (the lowest points when it points down)
    assert local[:, 2].max() == pytest.approx(0.008, abs=1e-5)


def test_hull_points_find_the_lowest_point_of_each_link(planner):
    # The table term keeps these points above the table: for any orientation of a link, the
    # lowest of them must be (nearly) as low as its whole collision mesh.
    import os

    import trimesh
    import yourdfpy

    from chord_robot.robots import resolve_urdf

    model = planner.model
    path = resolve_urdf(model.spec.urdf)
    urdf = yourdfpy.URDF.load(path, load_meshes=False)
    rng = np.random.default_rng(4)
    rotations = [geometry.rotation_about(rng.normal(size=3), a) for a in rng.uniform(0, np.pi, 50)]
    for link, pts in model.hulls.items():
        col = urdf.link_map[link].collisions[0]
        mesh_path = col.geometry.mesh.filename.replace("package://", "")
        mesh = trimesh.load(os.path.join(os.path.dirname(path), mesh_path), force="mesh")
        verts = np.asarray(mesh.vertices)
        for r in rotations:
            assert (pts @ r.T)[:, 2].min() - (verts @ r.T)[:, 2].min() < 0.01, link
