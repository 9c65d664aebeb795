"""The background of a video that came without one (`flowgen.priors.first_frame`): the hinged box
filmed by PyBullet's TinyRenderer, its scan's silhouette against the true foreground (the pixels
that differ from the rendered object-free view), and the background built from the first frame
against that view; through `load_guides` the foreground mask follows."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import ndimage

from chord_robot import synth
from chord_robot.app.scenes import load_scene
from chord_robot.camera import Camera, load_cameras
from flowgen.priors.first_frame import background_from_first_frame, silhouette, surfaces
from flowgen.priors.video_io import load_guides
from tests.flowgen.hinge_video import render_clip


@pytest.fixture(scope="module")
def hinge(tmp_path_factory):
    out = tmp_path_factory.mktemp("hinge")
    box = synth.hinged_box()
    scan = synth.write_hinged_box_scan(out, box)
    clip = render_clip(box, out)
    frames = iio.imread(clip.video, index=None)
    truth = iio.imread(clip.background)[..., :3]
    movable = [(o.points, o.faces) for o in load_scene(scan).objects.values() if not o.static]
    return clip, frames, truth, movable, load_cameras(clip.camera)[0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_scans_silhouette_is_the_foreground(hinge) -> None:
    _, frames, truth, movable, camera = hinge
    foreground = np.abs(frames[0].astype(int) - truth.astype(int)).max(-1) > 15
    assert _iou(silhouette(movable, camera), foreground) > 0.97  # 0.979 measured
    points_only = [(points, None) for points, _ in movable]  # a point cloud: discs, gaps closed
    assert _iou(silhouette(points_only, camera), foreground) > 0.94  # 0.953


def test_the_background_is_the_first_frame_around_the_objects(hinge) -> None:
    clip, frames, truth, movable, camera = hinge
    covered = silhouette(movable, camera)
    estimate = background_from_first_frame(frames[0], covered)
    error = np.abs(estimate.astype(int) - truth.astype(int)).max(-1)
    assert error.mean() < 2.0 and error[covered].mean() < 4.0  # of 255; 1.46 and 3.06 measured
    kept = ~ndimage.binary_dilation(covered, iterations=2)
    assert np.array_equal(estimate[kept], frames[0][kept])  # the visible background as filmed
    with pytest.raises(ValueError, match="cover the whole first frame"):
        background_from_first_frame(frames[0], np.ones_like(covered))

    guides = load_guides([clip.video], [clip.camera], 9, 64, movable=movable)
    given = load_guides([clip.video], [clip.camera], 9, 64, backgrounds=[clip.background])
    assert _iou(guides[0].mask > 0.5, given[0].mask > 0.5) > 0.9
    assert load_guides([clip.video], [clip.camera], 9, 64)[0].mask is None


def test_a_tables_edge_runs_on_behind_the_objects(tmp_path) -> None:
    """The checkerboard box of tests/flowgen/checker_hinge.py hides the table's back edge behind
    its open lid: filled from the nearest pixel the backdrop's white spills onto the table
    there; filled per surface (the scan's table drawn from the camera) it does not."""
    from tests.flowgen import checker_hinge

    clip = checker_hinge.write(tmp_path, frames=2)
    frame, truth = iio.imread(clip.video, index=0), iio.imread(clip.background)[..., :3]
    scene, camera = load_scene(clip.scan), load_cameras(clip.camera)[0]
    covered = silhouette([(o.points, o.faces) for o in scene.objects.values() if not o.static], camera)
    labels = surfaces([(o.points, o.faces) for o in scene.objects.values() if o.static], camera)
    assert set(np.unique(labels)) == {-1, 0}
    wrong = [int((np.abs(background_from_first_frame(frame, covered, lab).astype(int) - truth).max(-1) > 15).sum())
             for lab in (None, labels)]
    assert wrong[0] > 1000 and wrong[1] < 120, wrong  # 1464 and 64 pixels measured


def test_points_behind_the_camera_and_off_the_image_are_ignored() -> None:
    camera = Camera.look_at(np.array([0.0, -1.0, 0.0]), np.zeros(3), 320, 240, fov_y_deg=40.0)
    behind = np.array([[0.0, -2.0, 0.0], [5.0, 0.0, 0.0]])
    assert not silhouette([(behind, None)], camera).any()
    square = np.array([[-0.1, 0.0, -0.1], [0.1, 0.0, -0.1], [0.1, 0.0, 0.1], [-0.1, 0.0, 0.1]])
    mask = silhouette([(square, np.array([[0, 1, 2], [0, 2, 3]]))], camera)
    side = 0.2 * camera.fy  # pixels across at 1 m
    assert side * side <= mask.sum() < side * side + 4 * side + 4  # the edges' pixels included


def test_a_triangle_through_the_camera_plane_is_clipped() -> None:
    """A table reaching behind the camera still covers the pixels of its part in front."""
    camera = Camera.look_at(np.array([0.0, -0.3, 0.3]), np.array([0.0, 0.3, 0.0]), 64, 48, fov_y_deg=60.0)
    table = np.array([[-2.0, -2.0, 0.0], [2.0, -2.0, 0.0], [2.0, 2.0, 0.0], [-2.0, 2.0, 0.0]])
    mask = silhouette([(table, np.array([[0, 1, 2], [0, 2, 3]]))], camera)
    dense = np.stack(np.meshgrid(np.linspace(-2, 2, 801), np.linspace(-2, 2, 801), [0.0]), -1).reshape(-1, 3)
    uv, z = camera.project(dense)
    seen = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 48)
    truth = np.zeros((48, 64), bool)
    truth[np.floor(uv[seen, 1]).astype(int), np.floor(uv[seen, 0]).astype(int)] = True
    assert truth.sum() > 1000 and _iou(mask, truth) > 0.97
