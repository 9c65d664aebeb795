"""Spherical harmonics of 3DGS scans: evaluated per camera in every render, on both rasterisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chord_robot.camera import Camera
from chord_robot.ply import write_ply
from chord_robot.scene import SH_C0
from flowgen.sh import sh_basis, sh_degree, sh_turn, view_colors

C1 = 0.4886025119029199


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_the_basis_matches_gsplats_reference(degree):
    from gsplat.cuda._torch_impl import _spherical_harmonics

    gen = torch.Generator().manual_seed(degree)
    k = (degree + 1) ** 2
    dirs = torch.randn(200, 3, generator=gen, dtype=torch.float64)
    coeffs = torch.randn(200, k, 3, generator=gen, dtype=torch.float64)
    reference = _spherical_harmonics(degree, dirs, coeffs)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    ours = SH_C0 * coeffs[:, 0] + torch.einsum("nk,nkc->nc", sh_basis(degree, unit), coeffs[:, 1:])
    assert torch.allclose(ours, reference, atol=1e-10), (ours - reference).abs().max()
    assert sh_degree(k - 1) == degree


def test_sh_degree_refuses_counts_that_are_no_degree():
    with pytest.raises(ValueError, match="not a degree"):
        sh_degree(5)


def test_turned_coefficients_describe_the_turned_function():
    gen = torch.Generator().manual_seed(3)
    frame = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64)).Q
    frame = frame * torch.sign(torch.det(frame))  # a rotation
    c_file = torch.randn(15, 3, generator=gen, dtype=torch.float64)
    d = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=-1, keepdim=True)
    scene = sh_basis(3, d) @ (sh_turn(frame, 3) @ c_file)
    file = sh_basis(3, d @ frame) @ c_file  # Y(frame^T d)
    assert torch.allclose(scene, file, atol=1e-9), (scene - file).abs().max()


def test_colours_follow_the_gaussians_rotation():
    rest = torch.zeros(1, 3, 3)
    rest[0, 2, 0] = 1.0  # red depends on -C1 x (x of the direction in the rest frame)
    base, mean, eye = torch.full((1, 3), 0.5), torch.zeros(1, 3), torch.tensor([2.0, 0.0, 0.0])
    # seen from +x the direction is -x: red 0.5 + C1
    assert view_colors(base, rest, mean, eye)[0].tolist() == pytest.approx([0.5 + C1, 0.5, 0.5])
    # the Gaussian turned 180 degrees about z: the camera now sees its other side
    half_turn = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    assert view_colors(base, rest, mean, eye, half_turn)[0].tolist() == pytest.approx([0.5 - C1, 0.5, 0.5], abs=1e-6)


def _scan_with_sh(path, coefficient: int):
    """A ball of 300 opaque 3DGS Gaussians (radius 10 cm) at the origin, grey, with one
    degree-1 coefficient of red 0.6 (f_rest_0, 1, 2: the -C1 y, C1 z, -C1 x terms of red, the
    channel-major layout); degree 3, the other coefficients zero."""
    n = 300
    rng = np.random.default_rng(0)
    p = rng.normal(size=(n, 3))
    p = (0.1 * p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)
    props = {"x": p[:, 0], "y": p[:, 1], "z": p[:, 2]}
    props.update({f"f_dc_{i}": np.zeros(n, np.float32) for i in range(3)})
    rest = np.zeros((n, 45), np.float32)
    rest[:, coefficient] = 0.6  # channel-major: red's coefficients are f_rest_0..14
    props.update({f"f_rest_{i}": rest[:, i] for i in range(45)})
    props["opacity"] = np.full(n, 8.0, np.float32)
    props.update({f"scale_{i}": np.full(n, math.log(0.02), np.float32) for i in range(3)})
    props.update({f"rot_{i}": np.full(n, 1.0 if i == 0 else 0.0, np.float32) for i in range(4)})
    props["segment"] = np.zeros(n, np.int32)
    write_ply(path, props)
    path.with_suffix(".labels.json").write_text('{"0": "ball"}')


@pytest.mark.parametrize("backend", ["fast", "reference",
                                     pytest.param("gsplat", marks=pytest.mark.skipif(
                                         not torch.cuda.is_available(), reason="gsplat needs CUDA"))])
@pytest.mark.parametrize("up, coefficient, axis", [
    ("z", 2, 0),  # -C1 x: brighter seen from +x
    ("y", 1, 1),  # a y-up file turned +90 deg about x: its +z is the scene's -y, so its C1 z term is brighter from +y
])
def test_a_3dgs_scan_shows_its_view_dependent_colour_in_renders(tmp_path, backend, up, coefficient, axis):
    from chord_robot import load_scan
    from flowgen.gaussians import from_object
    from flowgen.splats import Splats, render_splats

    _scan_with_sh(tmp_path / "scan.ply", coefficient)
    scene = load_scan(tmp_path / "scan.ply", up=up)
    g = from_object(scene.objects["ball"], 1000, np.random.default_rng(0))
    assert g.sh_rest is not None and g.sh_rest.shape == (300, 15, 3)
    device = "cuda" if backend == "gsplat" else "cpu"
    half = Splats(g.means, g.quats, g.log_scales.exp(), torch.sigmoid(g.opacity_logits), g.colors)
    # joined with Gaussians without SH (a static object, say: zero-padded)
    joined = Splats.join([Splats(g.means, g.quats, g.log_scales.exp(), torch.sigmoid(g.opacity_logits), g.colors,
                                 g.sh_rest), Splats(*(x[:0] for x in vars(half).values() if x is not None))])
    splats = Splats(*(None if x is None else x.to(device) for x in vars(joined).values()))
    centre = {}
    for side in (1.0, -1.0):
        camera = Camera.look_at(side * np.eye(3)[axis], np.zeros(3), 32, 32, fov_y_deg=30.0)
        image = render_splats(splats, camera, backend=backend)
        centre[side] = image.features[16, 16, :3].cpu() / image.alpha[16, 16].cpu()
    # seen from the bright side: red 0.5 + 0.6 C1 (0.793); from the other: 0.5 - 0.6 C1 (0.207)
    assert centre[1.0].tolist() == pytest.approx([0.5 + 0.6 * C1, 0.5, 0.5], abs=2e-3)
    assert centre[-1.0].tolist() == pytest.approx([0.5 - 0.6 * C1, 0.5, 0.5], abs=2e-3)


def test_a_scan_with_a_wrong_count_of_sh_coefficients_is_refused(tmp_path):
    from chord_robot import load_scan
    from chord_robot.errors import ScanError

    props = {k: np.zeros(2, np.float32) for k in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                                                  "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                                                  "rot_3", "f_rest_0", "f_rest_1")}
    write_ply(tmp_path / "bad.ply", props)
    with pytest.raises(ScanError, match="2 f_rest_"):
        load_scan(tmp_path / "bad.ply")


def test_the_flow_models_renders_evaluate_a_moving_objects_sh_per_camera(tmp_path):
    import dataclasses

    from chord_robot import synth
    from chord_robot.app.scenes import load_scene
    from flowgen.model import build_model
    from flowgen.objective import _pose, render_views
    from flowgen.priors.video import View

    from .conftest import tiny_config

    scene = load_scene(synth.write_scan(tmp_path, "gaussians-ply-labelled", synth.tabletop(0), num_points=6000))
    model = build_model(scene, tiny_config())
    obj = model.moving[0]
    sh = torch.zeros(obj.rest.num, 3, 3)
    sh[:, 2, 0] = 0.2  # red's -C1 x term: +0.098 seen from +x, -0.098 from -x
    lit = dataclasses.replace(model, moving=[dataclasses.replace(obj, rest=dataclasses.replace(obj.rest, sh_rest=sh)),
                                             *model.moving[1:]])
    centre = obj.rest.means.mean(0).double().numpy()
    frames = torch.tensor([0, 1])
    red = {}
    for side in (1.0, -1.0):
        camera = Camera.look_at(centre + side * np.array([0.5, 0.0, 0.0]), centre, 32, 32, fov_y_deg=20.0)
        views = [View(0, camera, frames, None)]
        (_, plain, *_), = render_views(model, views, _pose(model, frames, False), {0: 0, 1: 1})
        (_, seen, *_), = render_views(lit, views, _pose(lit, frames, False), {0: 0, 1: 1})
        red[side] = (seen - plain)[:, 16, 16].detach()
    # frames 0 and 1 (the model at rest: identity motion); the centre pixel is mostly the
    # object's, so red moves by up to 0.2 C1 = 0.0977 times its share of the pixel (measured:
    # +0.0973 from +x, -0.0921 from -x, at both frames), green and blue not at all
    for frame in (0, 1):
        assert 0.09 < red[1.0][frame, 0] <= 0.0978 and -0.0978 <= red[-1.0][frame, 0] < -0.09, red
        assert red[1.0][frame, 1:].abs().max() < 1e-6 and red[-1.0][frame, 1:].abs().max() < 1e-6, red
