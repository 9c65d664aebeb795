"""`flowgen.raster.frames.render_frames` (a worker thread per frame) against `render` frame by
frame and camera by camera."""

from __future__ import annotations

import pytest
import torch

from flowgen.raster import render
from tests.flowgen.raster.scenes import F64, assert_close_rel, random_scene


@pytest.mark.parametrize(("dtype", "stacked"), [(torch.float32, False), (F64, False), (torch.float32, True)])
def test_frames_in_one_pass_match_frame_by_frame(dtype: torch.dtype, stacked: bool) -> None:
    """`render_frames` (a worker thread per frame) against `render(backend="fast")` per frame:
    the same images bit for bit, the same gradients to rounding (the projection's upstream
    gradient stays float64 between the kernels), and bit for bit the same on 1 and 2 threads;
    scales and opacities shared by the frames or given per frame (``stacked``, as
    `render_splats_frames` passes them)."""
    from flowgen.raster.frames import render_frames

    scene = random_scene(600, 37, 29, seed=31, dtype=dtype)
    g = torch.Generator().manual_seed(32)
    frames = 3
    moved = scene["means"].detach() + 0.02 * torch.randn(frames, 600, 3, generator=g, dtype=F64).to(dtype)
    turned = scene["quats"].detach() + 0.1 * torch.randn(frames, 600, 4, generator=g, dtype=F64).to(dtype)
    feats = scene["features"].detach() + 0.1 * torch.randn(frames, 600, 4, generator=g, dtype=F64).to(dtype)
    camera = (scene["viewmat"], scene["K"], scene["width"], scene["height"])
    weights = [torch.randn(frames, 29, 37, *c, generator=g, dtype=F64).to(dtype) for c in ((4,), (), ())]

    def run(batched: bool, threads: int):
        shared = [scene["scales"].detach(), scene["opacities"].detach()]
        if stacked:
            shared = [x[None].repeat(frames, *([1] * x.ndim)) for x in shared]
        leaves = [x.clone().requires_grad_(True) for x in (moved, turned, *shared, feats)]
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            if batched:
                out = render_frames(*leaves, *camera)
                images = (out.color, out.alpha, out.depth)
            else:
                outs = [render(leaves[0][f], leaves[1][f], leaves[2][f] if stacked else leaves[2],
                               leaves[3][f] if stacked else leaves[3], leaves[4][f], *camera, backend="fast")
                        for f in range(frames)]
                images = tuple(torch.stack([getattr(o, k) for o in outs]) for k in ("color", "alpha", "depth"))
            sum((i * w).sum() for i, w in zip(images, weights)).backward()
        finally:
            torch.set_num_threads(before)
        return [i.detach() for i in images], [x.grad for x in leaves]

    (want_images, want_grads), (images, grads), (images_two, grads_two) = run(False, 1), run(True, 1), run(True, 2)
    assert want_images[1].max() > 0.5  # something is drawn
    for got, want in zip(images, want_images):
        assert torch.equal(got, want)
    rel = 1e-5 if dtype == torch.float32 else 1e-12
    for name, got, want in zip(("means", "quats", "scales", "opacities", "features"), grads, want_grads):
        assert want.abs().max() > 0, name
        assert_close_rel(got, want, rel, name)
    for a, b in zip(images + grads, images_two + grads_two):
        assert torch.equal(a, b)


def test_frames_with_a_camera_each_match_per_view_renders() -> None:
    """`render_frames` with a view matrix and intrinsics per frame (the mesh fit's several views
    of one set of Gaussians in one call) against `render(backend="fast")` per camera: the same
    images bit for bit, the same gradients to rounding."""
    from flowgen.raster.frames import render_frames

    scene = random_scene(500, 33, 27, seed=41, dtype=torch.float32)
    views = 3
    viewmats = scene["viewmat"][None].repeat(views, 1, 1)
    viewmats[1, :3, 3] += torch.tensor([0.05, -0.03, 0.1])
    viewmats[2, :3, 3] += torch.tensor([-0.04, 0.02, -0.05])
    Ks = scene["K"][None].repeat(views, 1, 1)
    Ks[2, :2, :2] *= 1.2
    g = torch.Generator().manual_seed(42)
    weights = [torch.randn(views, 27, 33, *c, generator=g) for c in ((4,), (), ())]
    size = (scene["width"], scene["height"])

    def run(batched: bool):
        leaves = [scene[k].detach().clone().requires_grad_(True)
                  for k in ("means", "quats", "scales", "opacities", "features")]
        means, quats, scales, opacities, features = leaves
        if batched:
            out = render_frames(means.expand(views, -1, -1), quats.expand(views, -1, -1), scales, opacities,
                                features.expand(views, -1, -1), viewmats, Ks, *size)
            images = (out.color, out.alpha, out.depth)
        else:
            outs = [render(*leaves, viewmats[v], Ks[v], *size, backend="fast") for v in range(views)]
            images = tuple(torch.stack([getattr(o, k) for o in outs]) for k in ("color", "alpha", "depth"))
        sum((i * w).sum() for i, w in zip(images, weights)).backward()
        return [i.detach() for i in images], [x.grad for x in leaves]

    (want_images, want_grads), (images, grads) = run(False), run(True)
    assert not torch.equal(want_images[1][0], want_images[1][2])  # the cameras see different images
    for got, want in zip(images, want_images):
        assert torch.equal(got, want)
    for name, got, want in zip(("means", "quats", "scales", "opacities", "features"), grads, want_grads):
        assert want.abs().max() > 0, name
        assert_close_rel(got, want, 1e-5, name)
