"""Tests of flowgen.raster: fast CPU rasteriser vs the plain reference, gradients, known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from flowgen.raster import project, render
from flowgen.raster.fast import rasterize_fast
from flowgen.raster.fast_project import project_fast
from flowgen.raster.reference import rasterize_reference
from tests.flowgen.raster.scenes import F64, assert_close_rel, look_at_viewmat, random_scene

GRAD_INPUTS = ("means", "quats", "scales", "opacities", "features", "background")


def count_culled_and_clipped(scene: dict) -> tuple[int, int]:
    """Gaussians behind the near plane, and visible ones whose screen box crosses the border."""
    names = ("means", "quats", "scales", "opacities", "viewmat", "K", "width", "height")
    proj = project(*(scene[k] for k in names))
    behind = int((proj.depths < 0.01).sum())
    m, r = proj.means2d.detach(), proj.radii
    visible = (r > 0).all(-1)
    size = torch.tensor([scene["width"], scene["height"]], dtype=m.dtype)
    crossing = ((m - r < 0) | (m + r > size)).any(-1) & visible
    return behind, int(crossing.sum())


def render_and_grads(scene: dict, backend: str, seed: int = 7) -> tuple[dict, dict]:
    """Render, backpropagate a random linear loss of colour, alpha and depth."""
    for name in GRAD_INPUTS:
        scene[name].grad = None
    out = render(**scene, backend=backend)
    g = torch.Generator().manual_seed(seed)
    loss = sum(
        (image * torch.randn(image.shape, generator=g, dtype=F64).to(image)).sum()
        for image in (out.color, out.alpha, out.depth)
    )
    loss.backward()
    images = {"color": out.color.detach(), "alpha": out.alpha.detach(), "depth": out.depth.detach()}
    grads = {name: scene[name].grad for name in GRAD_INPUTS}
    return images, {
        k: torch.zeros_like(scene[k]) if v is None else v.clone() for k, v in grads.items()
    }


@pytest.mark.parametrize(
    ("n", "width", "height"), [(1, 8, 6), (40, 23, 17), (300, 64, 48), (1500, 97, 61)]
)
def test_fast_matches_reference_float64(n: int, width: int, height: int) -> None:
    scene = random_scene(n, width, height, seed=n)
    fast_images, fast_grads = render_and_grads(scene, "fast")
    ref_images, ref_grads = render_and_grads(scene, "reference")
    assert ref_images["alpha"].max() > 0.2  # the scene is not empty
    if n >= 40:
        behind, clipped = count_culled_and_clipped(scene)
        assert behind > 0 and clipped > 0  # the cases the culling and clipping must handle
    for name, expected in ref_images.items():
        assert_close_rel(fast_images[name], expected, 1e-10, name)
    for name, expected in ref_grads.items():
        assert expected.abs().max() > 0, name
        assert_close_rel(fast_grads[name], expected, 1e-9, f"d/d{name}")


def test_fast_matches_reference_float32() -> None:
    scene = random_scene(2000, 112, 72, seed=3, dtype=torch.float32)
    fast_images, fast_grads = render_and_grads(scene, "fast")
    ref_images, ref_grads = render_and_grads(scene, "reference")
    for name, expected in ref_images.items():
        torch.testing.assert_close(fast_images[name], expected, atol=1e-5, rtol=0)
    for name, expected in ref_grads.items():
        assert_close_rel(fast_grads[name], expected, 1e-4, f"d/d{name}")


def test_screen_box_pairs_lose_nothing() -> None:
    """The reference over every pixel x Gaussian pair equals it over screen-box pairs only."""
    scene = random_scene(60, 24, 18, seed=11)
    names = ("means", "quats", "scales", "opacities", "viewmat", "K", "width", "height")
    proj = project(*(scene[k] for k in names))
    opacities, features = scene["opacities"], scene["features"]
    args = (proj.means2d, proj.conics, opacities, features, proj.depths, proj.radii)
    box_image, box_alpha = rasterize_reference(*args, 24, 18, pairs="box")
    all_image, all_alpha = rasterize_reference(*args, 24, 18, pairs="all")
    assert box_alpha.max() > 0.5
    torch.testing.assert_close(box_image, all_image, atol=1e-14, rtol=0)
    torch.testing.assert_close(box_alpha, all_alpha, atol=1e-14, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_projection_matches_torch_projection(dtype: torch.dtype) -> None:
    """numba projection vs the torch one (autograd): values and vector-Jacobian products."""
    scene = random_scene(500, 64, 48, seed=9, dtype=dtype)
    names = ("means", "quats", "scales", "opacities")
    results = []
    for fn in (project, project_fast):
        leaves = {k: scene[k].detach().clone().requires_grad_() for k in names}
        proj = fn(*leaves.values(), scene["viewmat"], scene["K"], 64, 48)
        visible = (proj.radii > 0).all(-1)
        g = torch.Generator().manual_seed(1)
        # the rasterisers give culled Gaussians no screen-space gradient; mimic that
        outputs = (proj.means2d, proj.conics, proj.depths)
        masks = (visible[:, None], visible[:, None], torch.ones_like(visible))
        loss = sum(
            (t * torch.randn(t.shape, generator=g, dtype=F64).to(dtype) * mask).sum()
            for t, mask in zip(outputs, masks, strict=True)
        )
        loss.backward()
        results.append((proj, visible, [leaves[k].grad for k in names[:3]]))
    (ref, visible, ref_grads), (fast, _, fast_grads) = results
    assert torch.equal(ref.radii, fast.radii)
    assert 100 < int(visible.sum()) < 500
    rel = 1e-12 if dtype == F64 else 0.0  # float32: both round the same float64 values
    assert_close_rel(fast.means2d[visible], ref.means2d[visible], rel, "means2d")
    assert_close_rel(fast.conics[visible], ref.conics[visible], rel, "conics")
    assert_close_rel(fast.depths, ref.depths, rel, "depths")
    for name, r, f in zip(names, ref_grads, fast_grads):
        assert_close_rel(f, r, 1e-10 if dtype == F64 else 1e-6, f"d/d{name}")


def test_gradcheck_fast_projection() -> None:
    """Hand-written backward of the numba projection vs finite differences (float64)."""
    g = torch.Generator().manual_seed(3)
    cam = torch.tensor([[0.0, 0.0, 1.0], [0.3, -0.2, 1.5], [-0.4, 0.1, 0.8], [0.2, 0.3, 2.0]])
    eye, target, up = torch.tensor(
        [[0.1, -0.2, -1.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=F64
    )
    view = look_at_viewmat(eye, target, up)
    means = ((cam.double() - view[:3, 3]) @ view[:3, :3]).requires_grad_()
    quats = torch.randn(4, 4, generator=g, dtype=F64).requires_grad_()
    scales = (0.02 + 0.05 * torch.rand(4, 3, generator=g, dtype=F64)).requires_grad_()
    opacities = torch.full((4,), 0.7, dtype=F64)
    K = torch.tensor([[60.0, 0.0, 31.0], [0.0, 55.0, 23.0], [0.0, 0.0, 1.0]], dtype=F64)

    def fn(m: Tensor, q: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        proj = project_fast(m, q, s, opacities, view, K, 64, 48)
        return proj.means2d, proj.conics, proj.depths

    assert bool((project_fast(means, quats, scales, opacities, view, K, 64, 48).radii > 0).all())
    assert torch.autograd.gradcheck(fn, (means, quats, scales), eps=1e-6, atol=1e-7)


def test_camera_gradients_match_between_backends() -> None:
    """With a camera that needs gradients, the fast backend projects with torch and agrees."""
    scene = random_scene(200, 40, 30, seed=6)
    grads = []
    for backend in ("fast", "reference"):
        view = scene["viewmat"].clone().requires_grad_()
        out = render(**dict(scene, viewmat=view), backend=backend)
        (out.color.sum() + out.depth.sum()).backward()
        grads.append(view.grad)
    assert grads[1].abs().max() > 0
    assert_close_rel(grads[0], grads[1], 1e-10, "d/dviewmat")


def test_gradcheck_fast_rasteriser() -> None:
    """Hand-written backward of the fast 2D rasteriser vs finite differences (float64)."""
    g = torch.Generator().manual_seed(0)
    n, width, height = 5, 9, 7
    means2d = (
        torch.rand(n, 2, generator=g, dtype=F64) * torch.tensor([width, height])
    ).requires_grad_()
    axes = torch.rand(n, 2, generator=g, dtype=F64) * 2 + 1.0  # sigma 1..3 px
    angle = torch.rand(n, generator=g, dtype=F64) * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    ia, ib = 1 / axes[:, 0] ** 2, 1 / axes[:, 1] ** 2  # conic = R diag(1/s^2) R^T
    conics = torch.stack(
        [cos**2 * ia + sin**2 * ib, cos * sin * (ia - ib), sin**2 * ia + cos**2 * ib], -1
    )
    conics = conics.requires_grad_()
    opacities = (0.3 + 0.6 * torch.rand(n, generator=g, dtype=F64)).requires_grad_()
    colors = torch.rand(n, 3, generator=g, dtype=F64).requires_grad_()
    depths = torch.rand(n, generator=g, dtype=F64) + 1
    radii = torch.full((n, 2), 20, dtype=torch.int32)  # whole image: boxes never clip

    def fn(m: Tensor, c: Tensor, o: Tensor, col: Tensor) -> tuple[Tensor, Tensor]:
        return rasterize_fast(m, c, o, col, depths, radii, width, height)

    assert fn(means2d, conics, opacities, colors)[1].max() > 0.5
    assert torch.autograd.gradcheck(fn, (means2d, conics, opacities, colors), eps=1e-6, atol=1e-7)


def test_gradcheck_render_fast() -> None:
    """End to end: numba projection + fast rasteriser vs finite differences."""
    scene = random_scene(4, 10, 8, seed=5)
    scene["means"] = scene["means"].detach()
    # pull every Gaussian into view, 1-3 px wide, so the tiny image sees all of them
    view, K = scene["viewmat"], scene["K"]
    cam = torch.tensor(
        [[0.0, 0.0, 1.0], [0.3, -0.2, 1.2], [-0.35, 0.15, 0.9], [0.1, 0.3, 1.5]], dtype=F64
    )
    scene["means"] = ((cam - view[:3, 3]) @ view[:3, :3]).requires_grad_()
    scene["scales"] = (
        torch.full((4, 3), 0.15, dtype=F64) * torch.tensor([1.0, 0.6, 1.4])
    ).requires_grad_()
    names = GRAD_INPUTS
    fixed = {k: v for k, v in scene.items() if k not in names}

    def fn(*tensors: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = render(**dict(zip(names, tensors)), **fixed, backend="fast")
        return out.color, out.alpha, out.depth

    assert fn(*(scene[k] for k in names))[1].max() > 0.5
    assert K[0, 0] * 0.15 * 0.6 / 1.5 > 0.5  # the Gaussians are wider than half a pixel
    assert torch.autograd.gradcheck(fn, tuple(scene[k] for k in names), eps=1e-7, atol=1e-6)


def single_camera(width: int = 21, height: int = 15, f: float = 100.0) -> tuple[Tensor, Tensor]:
    """Identity camera_from_world and a K whose principal point is pixel (10, 7)'s centre."""
    K = torch.tensor([[f, 0.0, 10.5], [0.0, f, 7.5], [0.0, 0.0, 1.0]], dtype=F64)
    return torch.eye(4, dtype=F64), K


def gaussians(
    means: list[list[float]], scale: float, opacities: list[float], features: list[list[float]]
) -> dict:
    """Isotropic Gaussians as `render` keyword arguments (float64)."""
    n = len(means)
    return {
        "means": torch.tensor(means, dtype=F64),
        "quats": torch.tensor([[2.0, 0.0, 0.0, 0.0]] * n, dtype=F64),  # unnormalised identity
        "scales": torch.full((n, 3), scale, dtype=F64),
        "opacities": torch.tensor(opacities, dtype=F64),
        "features": torch.tensor(features, dtype=F64),
    }


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_single_gaussian_known_answer(backend: str) -> None:
    """One isotropic Gaussian on the optical axis: peak, fall-off and depth are analytic."""
    view, K = single_camera()
    z, s, opacity = 2.0, 0.01, 0.8
    g = gaussians([[0.0, 0.0, z]], s, [opacity], [[0.25, 0.5, 1.0]])
    out = render(**g, viewmat=view, K=K, width=21, height=15, backend=backend)
    var = (100.0 * s / z) ** 2 + 0.3  # EWA footprint + eps2d low-pass, px^2
    assert out.alpha[7, 10].item() == pytest.approx(opacity, abs=1e-12)
    assert out.depth[7, 10].item() == pytest.approx(opacity * z, abs=1e-12)
    torch.testing.assert_close(
        out.color[7, 10], opacity * torch.tensor([0.25, 0.5, 1.0], dtype=F64)
    )
    assert out.alpha[7, 11].item() == pytest.approx(opacity * math.exp(-0.5 / var), abs=1e-12)
    assert out.alpha[9, 9].item() == pytest.approx(opacity * math.exp(-0.5 * 5 / var), abs=1e-12)
    assert out.alpha[0, 0].item() == 0.0  # far outside: below 1/255, skipped


def test_projection_places_gaussian_where_the_camera_says() -> None:
    """An off-axis Gaussian seen by a moved, rotated camera peaks at K [R|t] X."""
    view = look_at_viewmat(
        torch.tensor([0.5, -0.2, -1.0], dtype=F64),
        torch.tensor([0.0, 0.1, 1.0], dtype=F64),
        torch.tensor([0.0, -1.0, 0.0], dtype=F64),
    )
    _, K = single_camera(f=60.0)
    # camera-space point projecting to (u, v) = (15.5, 4.5), the centre of pixel (row 4, col 15)
    cam = torch.tensor([(15.5 - 10.5) / 60.0 * 4.0, (4.5 - 7.5) / 60.0 * 4.0, 4.0], dtype=F64)
    world = (cam - view[:3, 3]) @ view[:3, :3]
    g = gaussians([world.tolist()], 0.02, [0.9], [[1.0]])
    out = render(**g, viewmat=view, K=K, width=21, height=15, backend="fast")
    row, col = divmod(int(out.alpha.argmax()), 21)
    assert (row, col) == (4, 15)
    assert out.alpha[4, 15].item() == pytest.approx(0.9, abs=1e-9)
    assert out.depth[4, 15].item() == pytest.approx(0.9 * 4.0, abs=1e-9)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_front_to_back_order(backend: str) -> None:
    """Two Gaussians over the same pixel composite nearest first, whatever their index order."""
    view, K = single_camera()
    for flip in (False, True):
        means, op, col = [[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]], [0.6, 0.5], [[1.0, 0.0], [0.0, 1.0]]
        if flip:
            means, op, col = means[::-1], op[::-1], col[::-1]
        g = gaussians(means, 0.004, op, col)
        out = render(**g, viewmat=view, K=K, width=21, height=15, backend=backend)
        assert out.color[7, 10].tolist() == pytest.approx([0.6, 0.4 * 0.5], abs=1e-12)
        assert out.alpha[7, 10].item() == pytest.approx(1 - 0.4 * 0.5, abs=1e-12)
        assert out.depth[7, 10].item() == pytest.approx(0.6 * 1.0 + 0.2 * 2.0, abs=1e-12)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_alpha_clamp_and_early_stop(backend: str) -> None:
    """Opaque Gaussians: alpha clamps at 0.999 and the pixel stops before T would reach 1e-4."""
    view, K = single_camera()
    g = gaussians(
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.5], [0.0, 0.0, 2.0]],
        0.01,
        [1.0, 1.0, 1.0],
        [[1.0], [10.0], [100.0]],
    )
    out = render(**g, viewmat=view, K=K, width=21, height=15, backend=backend)
    # first: alpha 0.999, T 1e-3; second would give T = 1e-6 <= 1e-4: excluded, pixel done
    assert out.alpha[7, 10].item() == pytest.approx(0.999, abs=1e-12)
    assert out.color[7, 10, 0].item() == pytest.approx(0.999, abs=1e-12)
    assert out.depth[7, 10].item() == pytest.approx(0.999, abs=1e-12)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_culled_gaussians_render_background_with_zero_gradient(backend: str) -> None:
    """Behind the camera, inside the near plane, or off-screen: nothing drawn, finite zero grads."""
    view, K = single_camera()
    g = gaussians(
        [[0.0, 0.0, -1.0], [0.0, 0.0, 0.005], [5.0, 0.0, 1.0]], 0.01, [0.9] * 3, [[1.0, 1.0]] * 3
    )
    g = {k: v.requires_grad_() for k, v in g.items()}
    background = torch.tensor([0.3, -0.7], dtype=F64, requires_grad=True)
    out = render(
        **g, viewmat=view, K=K, width=21, height=15, background=background, backend=backend
    )
    assert out.alpha.abs().max().item() == 0.0
    assert out.depth.abs().max().item() == 0.0
    torch.testing.assert_close(out.color, background.detach().expand(15, 21, 2))
    (out.color.sum() + out.alpha.sum() + out.depth.sum()).backward()
    for name, tensor in g.items():
        assert tensor.grad is None or torch.all(tensor.grad == 0), name
    assert background.grad.tolist() == [21 * 15, 21 * 15]


def test_render_rejects_bad_inputs() -> None:
    view, K = single_camera()
    g = gaussians([[0.0, 0.0, 1.0]], 0.01, [0.5], [[1.0]])
    with pytest.raises(ValueError, match="backend"):
        render(**g, viewmat=view, K=K, width=21, height=15, backend="cuda")
    with pytest.raises(ValueError, match="CUDA"):
        render(**g, viewmat=view, K=K, width=21, height=15, backend="gsplat")
    with pytest.raises(ValueError, match="scales"):
        render(**dict(g, scales=g["scales"][:, :2]), viewmat=view, K=K, width=21, height=15)
    with pytest.raises(ValueError, match="dtype"):
        render(**dict(g, features=g["features"].float()), viewmat=view, K=K, width=21, height=15)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="gsplat's rasteriser needs CUDA")
def test_gsplat_matches_fast() -> None:
    """gsplat (CUDA, float32 transmittance, fast exp) against the fast CPU path.

    Rare pixels may differ by up to ~1/255 where the two round a threshold differently, so
    images are compared by mean and max error, gradients by relative L2 error.
    """
    scene = random_scene(2000, 96, 64, seed=2, dtype=torch.float32)
    fast_images, fast_grads = render_and_grads(scene, "fast")
    cuda = {
        k: v.detach().cuda().requires_grad_(v.requires_grad) if isinstance(v, Tensor) else v
        for k, v in scene.items()
    }
    gs_images, gs_grads = render_and_grads(cuda, "auto")
    for name, expected in fast_images.items():
        error = (gs_images[name].cpu() - expected).abs()
        assert error.mean() < 1e-5 and error.max() < 5e-3, name
    for name, expected in fast_grads.items():
        relative = (gs_grads[name].cpu() - expected).norm() / expected.norm()
        assert relative < 1e-3, name
