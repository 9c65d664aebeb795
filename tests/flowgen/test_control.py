"""Control points: inside the object, near-surface count on target, parts as groups."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import trimesh

from flowgen.control import (
    ControlConfig,
    farthest_point_kmeans,
    mesh_field,
    neighbour_scales,
    object_controls,
    point_cloud_field,
    point_groups,
)

CONFIG = ControlConfig(target_surface_points=3000, num_controls=(24, 96))


def box() -> trimesh.Trimesh:
    return trimesh.creation.box((0.3, 0.2, 0.1))


def torus() -> trimesh.Trimesh:
    return trimesh.creation.torus(major_radius=0.12, minor_radius=0.03)


def laptop() -> trimesh.Trimesh:
    """A base and an upright lid, 1 cm apart: two parts."""
    base = trimesh.creation.box((0.3, 0.2, 0.02))
    lid = trimesh.creation.box((0.3, 0.02, 0.2)).apply_translation((0.0, 0.12, 0.1))
    return trimesh.util.concatenate([base, lid])


@pytest.mark.parametrize("make", [box, torus], ids=["box", "torus"])
@pytest.mark.parametrize("target", [3000, 7500])
def test_controls_inside_and_surface_count_on_target(make, target):
    mesh = make()
    config = ControlConfig(target_surface_points=target, num_controls=(24, 96))
    controls = object_controls(mesh, config)
    assert abs(len(controls.surface_points) - target) <= 0.1 * target
    phi, _ = mesh_field(mesh).evaluate(controls.surface_points.astype(np.float64))
    assert np.abs(phi).max() < controls.band + 1e-6
    for level, count in zip(controls.levels, (24, 96)):
        assert level.centres.shape == (count, 3) and level.scales.shape == (count,)
        assert mesh.contains(level.centres).all()  # trimesh's own inside test
        assert (mesh_field(mesh).evaluate(level.centres.astype(np.float64))[0] <= 0).all()
        assert (level.scales > 0).all() and (level.group == 0).all()
    assert controls.num_parts == 1


def test_box_voxel_size_matches_band_geometry():
    """|S| ~ 2 * band * area / s^2 for a box (two layers of centres per face)."""
    mesh = box()
    controls = object_controls(mesh, CONFIG)
    predicted = 2 * mesh.area / controls.voxel_size**2
    assert abs(len(controls.surface_points) / predicted - 1) < 0.15


def test_scales_are_mean_distance_to_three_nearest():
    centres = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3], [10, 10, 10]], dtype=float)
    scales = neighbour_scales(centres, 3)
    assert scales[0] == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    assert scales[1] == pytest.approx((1 + np.sqrt(5) + np.sqrt(10)) / 3)


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    truth = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    points = np.concatenate([c + 0.01 * rng.standard_normal((200, 3)) for c in truth])
    centres = farthest_point_kmeans(points, 4, iterations=20, seed=0)
    order = np.argsort(((centres[:, None] - truth[None]) ** 2).sum(-1), axis=0)[0]
    np.testing.assert_allclose(centres[order], truth, atol=0.005)


def test_separate_parts_get_their_own_groups():
    mesh = laptop()
    controls = object_controls(mesh, CONFIG)
    assert controls.num_parts == 2
    for level in controls.levels:
        assert set(np.unique(level.group)) == {0, 1}
        lid = level.centres[:, 1] > 0.105  # the lid's slab is y in [0.11, 0.13]
        assert len(np.unique(level.group[lid])) == 1 and len(np.unique(level.group[~lid])) == 1
        assert level.group[lid][0] != level.group[~lid][0]
    # Points on the mesh get the group of their own part, also near the gap.
    probe = np.array([[0.0, 0.1, 0.0], [0.0, 0.111, 0.02], [0.0, 0.0, 0.0], [0.0, 0.12, 0.15]])
    groups = point_groups(controls, probe, mesh)
    assert groups[0] == groups[2] and groups[1] == groups[3] and groups[0] != groups[1]
    assert set(np.unique(controls.surface_group)) == {0, 1}


def test_vertices_split_at_seams_still_form_one_part_per_solid():
    """A textured or flat-shaded mesh duplicates vertices along seams (here: every face has
    its own); the parts are still the two solids, and face ids keep the caller's order."""
    mesh = laptop()
    split = trimesh.Trimesh(mesh.vertices[mesh.faces].reshape(-1, 3), np.arange(3 * len(mesh.faces)).reshape(-1, 3),
                            process=False)
    pieces = trimesh.graph.connected_component_labels(split.face_adjacency, node_count=len(split.faces))
    assert pieces.max() + 1 == len(mesh.faces)  # unwelded, every face is its own piece
    field = mesh_field(split)
    assert field.num_parts == 2
    lid = split.triangles_center[:, 1] > 0.105
    assert len(np.unique(field.face_group[lid])) == 1 and len(np.unique(field.face_group[~lid])) == 1
    assert field.face_group[lid][0] != field.face_group[~lid][0]


def test_interpenetrating_components_form_one_part():
    plate = trimesh.creation.box((0.3, 0.2, 0.02))
    knob = trimesh.creation.box((0.1, 0.1, 0.1)).apply_translation((0.0, 0.0, 0.04))
    controls = object_controls(trimesh.util.concatenate([plate, knob]), CONFIG)
    assert controls.num_parts == 1
    # a thin plate wholly inside a block (4 mm of its 20 cm: the probes sample every axis)
    block = trimesh.creation.box((0.3, 0.3, 0.1))
    sheet = trimesh.creation.box((0.2, 0.2, 0.004))
    assert mesh_field(trimesh.util.concatenate([block, sheet])).num_parts == 1


def test_a_post_on_its_disc_is_one_part_and_an_arm_dipping_into_it_is_another():
    """A lamp's base and arm as a scan has them: a post standing flush on a disc (one rigid
    part), an arm tilted 30 degrees on the post's top whose end sinks a sliver into the post
    (its joint: a part of its own)."""
    disc = trimesh.creation.cylinder(radius=0.06, height=0.025).apply_translation((0, 0, 0.0125))
    post = trimesh.creation.cylinder(radius=0.014, height=0.04).apply_translation((0, 0, 0.045))
    arm = trimesh.creation.cylinder(radius=0.01, height=0.25).apply_translation((0, 0, 0.125))
    arm.apply_transform(trimesh.transformations.rotation_matrix(np.radians(30), (0, 1, 0)))
    arm.apply_translation((0, 0, 0.065))
    field = mesh_field(trimesh.util.concatenate([disc, post, arm]))
    assert field.num_parts == 2
    faces = np.cumsum([0, len(disc.faces), len(post.faces), len(arm.faces)])
    groups = [set(field.face_group[a:b].tolist()) for a, b in itertools.pairwise(faces)]
    assert groups[0] == groups[1] and len(groups[0]) == 1 and groups[2].isdisjoint(groups[0])
    # A post standing a micrometre above its disc (a scan's seam) stands on it all the same.
    lifted = post.copy().apply_translation((0, 0, 1e-6))
    assert mesh_field(trimesh.util.concatenate([disc, lifted, arm])).num_parts == 2
    # The same arm sunk 3 cm into the post (a good share of both insides) is one piece with it.
    sunk = arm.copy().apply_translation((0, 0, -0.03))
    assert mesh_field(trimesh.util.concatenate([disc, post, sunk])).num_parts == 1


def test_a_closed_lid_lying_flush_on_its_base_stays_a_part_of_its_own():
    """Two slabs face to face over most of their extent touch but are not glued (the lid is a
    millimetre smaller a side: corners that coincide would weld the two boxes into one mesh)."""
    base = trimesh.creation.box((0.3, 0.2, 0.02)).apply_translation((0, 0, 0.01))
    lid = trimesh.creation.box((0.298, 0.198, 0.008)).apply_translation((0, 0, 0.024))
    field = mesh_field(trimesh.util.concatenate([base, lid]))
    assert field.num_parts == 2
    assert len(set(field.face_group[: len(base.faces)])) == 1
    assert field.face_group[0] != field.face_group[-1]


def test_point_cloud_without_normals():
    mesh = torus()
    points, _ = trimesh.sample.sample_surface_even(mesh, 8000, seed=0)
    controls = object_controls(point_cloud_field(points), CONFIG)
    assert abs(len(controls.surface_points) - 3000) <= 300
    for level in controls.levels:
        assert mesh.contains(level.centres).all()


def test_too_large_grid_is_refused_with_advice():
    huge = trimesh.creation.box((300.0, 200.0, 0.001))  # millimetres read as metres, flat
    with pytest.raises(ValueError, match="units"):
        object_controls(huge, ControlConfig(target_surface_points=10**7, max_grid_points=10**5))
