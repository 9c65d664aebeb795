"""Gaussians of a mesh refined by fitting to multi-view renders of the mesh (DESIGN.md §4).

Surface sampling (`flowgen.gaussians.from_object`) places flat discs with the mesh's colours,
but sampled discs overlap, leave gaps and spill over edges, so the rendered object is not the
mesh: the far side shows through the gaps in speckles of its colours, colours blend across
patch borders and silhouettes grow. Here the discs' colours, opacities and scales are fitted so
that flowgen's rasteriser reproduces renders of the mesh by an independent ray caster
(`flowgen.mesh_render`) from cameras all around the object: L1 (+ optional D-SSIM) on colour and
L1 on alpha, a fixed number of Adam steps sized for the preset's time per object.

Positions stay: moving the means would change the parts' contact pairs, and offsets along
the surface did not help (docs/flowgen-notes.md). The step count, not a wall-clock limit,
bounds the fit, so a model is rebuilt identically when a run resumes; ``time_budget`` is a
guard for a slow machine, off in the presets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from chord_robot.camera import Camera
from chord_robot.scene import SceneObject
from flowgen.gaussians import Gaussians

__all__ = ["MeshFit", "MeshFitConfig", "MeshViews", "fit_to_mesh", "mesh_views", "psnr", "render_gaussians",
           "render_gaussians_views", "view_scores"]


@dataclass(frozen=True)
class MeshFitConfig:
    """Fitting mesh-sampled Gaussians to renders of the mesh."""

    enabled: bool = True
    """Refine Gaussians of mesh objects (False keeps the sampled discs as they are)."""
    views: int = 16
    """Training cameras around the object (Fibonacci sphere)."""
    image_size: int = 96
    """Side of the square training images, pixels."""
    iterations: int = 80
    """Adam steps at most."""
    time_budget: float | None = None
    """Seconds per object at most, or None (deterministic: only ``iterations`` bounds the fit;
    with a limit, a resumed run may rebuild different Gaussians)."""
    views_per_iteration: int = 2
    """Cameras rendered per step."""
    samples: int = 2
    """Rays per pixel side in the mesh renders (anti-aliasing)."""
    lr_color: float = 0.05
    """Adam learning rate of the colour logits."""
    lr_opacity: float = 0.05
    """Adam learning rate of the opacity logits."""
    lr_scale: float = 0.01
    """Adam learning rate of the log-scales."""
    ssim: float = 0.0
    """Share of D-SSIM in the colour loss, the rest L1."""
    alpha: float = 1.0
    """Weight of the L1 loss between rendered and mesh alpha (silhouette)."""

    def __post_init__(self) -> None:
        if self.views < 1 or self.image_size < 8 or self.views_per_iteration < 1 or self.samples < 1:
            raise ValueError("views, views_per_iteration and samples must be >= 1, image_size >= 8")
        if self.iterations < 0 or (self.time_budget is not None and self.time_budget < 0):
            raise ValueError("iterations and time_budget must be >= 0")


def paper_mesh_fit() -> MeshFitConfig:
    """More views, pixels and steps for the paper preset's 100k Gaussians per object (the fit runs on
    the CPU: measured 90 s per object here, 8 s of it the mesh renders)."""
    return MeshFitConfig(views=32, image_size=192, iterations=150, views_per_iteration=2)


@dataclass(frozen=True)
class MeshViews:
    """Renders of a mesh from several cameras, as tensors.

    Attributes:
        cameras: the V cameras.
        color: (V, H, W, 3) premultiplied colour.
        alpha: (V, H, W) coverage.
    """

    cameras: tuple[Camera, ...]
    color: Tensor
    alpha: Tensor


@dataclass(frozen=True)
class MeshFit:
    """What a fit did.

    Attributes:
        iterations: Adam steps taken.
        seconds: wall time including the mesh renders.
        loss_first: training loss of the first step.
        loss_last: training loss of the last step.
    """

    iterations: int
    seconds: float
    loss_first: float
    loss_last: float


def mesh_views(obj: SceneObject, count: int, size: int, samples: int = 2, phase: float = 0.0) -> MeshViews:
    """Render mesh object ``obj`` from ``count`` cameras on a sphere around it.

    ``phase`` turns the camera spiral (`flowgen.mesh_render.orbit_cameras`): tests hold views out
    with another phase.
    """
    from flowgen.mesh_render import mesh_target, orbit_cameras, render_mesh

    assert obj.kind == "mesh" and obj.faces is not None, obj.kind
    target = mesh_target(obj)
    radius = max(float(np.linalg.norm(obj.extent)) / 2, 1e-3)
    cameras = orbit_cameras(obj.center, radius, count, size, phase=phase)
    images = [render_mesh(target, cam, samples) for cam in cameras]
    color = torch.as_tensor(np.stack([im.color for im in images]), dtype=torch.float32)
    alpha = torch.as_tensor(np.stack([im.alpha for im in images]), dtype=torch.float32)
    return MeshViews(tuple(cameras), color, alpha)


def render_gaussians(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                     camera: Camera) -> tuple[Tensor, Tensor]:
    """Colour (H, W, 3) and alpha (H, W) of Gaussians from ``camera`` (black background)."""
    from flowgen.raster import render
    from flowgen.splats import camera_tensors

    viewmat, K = camera_tensors(camera, means.dtype)
    out = render(means, quats, scales, opacities, colors, viewmat, K, camera.width, camera.height)
    return out.color, out.alpha


def render_gaussians_views(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                           cameras: list[Camera]) -> tuple[Tensor, Tensor]:
    """Colour (V, H, W, 3) and alpha (V, H, W) of Gaussians from V cameras of one size (black
    background): on a CPU in one call, a view per worker thread (`flowgen.raster.frames`);
    elsewhere view by view."""
    if means.device.type != "cpu" or len({(c.width, c.height) for c in cameras}) != 1:
        renders = [render_gaussians(means, quats, scales, opacities, colors, cam) for cam in cameras]
        return torch.stack([r[0] for r in renders]), torch.stack([r[1] for r in renders])
    from flowgen.raster.frames import render_frames
    from flowgen.splats import camera_tensors

    pairs = [camera_tensors(cam, means.dtype) for cam in cameras]
    views = len(cameras)
    out = render_frames(means.expand(views, *means.shape), quats.expand(views, *quats.shape), scales, opacities,
                        colors.expand(views, *colors.shape), torch.stack([p[0] for p in pairs]),
                        torch.stack([p[1] for p in pairs]), cameras[0].width, cameras[0].height)
    return out.color, out.alpha


def fit_to_mesh(gaussians: Gaussians, obj: SceneObject, config: MeshFitConfig,
                seed: int = 0) -> tuple[Gaussians, MeshFit]:
    """Refine mesh-sampled ``gaussians`` of ``obj`` to reproduce renders of the mesh.

    Args:
        gaussians: sampled on ``obj``'s surface (`flowgen.gaussians.from_object`).
        obj: the mesh object.
        config: views, budget and learning rates.
        seed: seed of the per-step view draws.

    Returns:
        (Gaussians, MeshFit): the refined Gaussians (colours, opacities and scales changed;
        means, rotations, normals and parts kept) and what the fit did.
    """
    from flowgen.losses import photometric

    start = time.perf_counter()
    views = mesh_views(obj, config.views, config.image_size, config.samples)
    c = gaussians.colors.clamp(0.02, 0.98)
    color_logit = torch.nn.Parameter(torch.log(c / (1 - c)))
    opacity_logit = torch.nn.Parameter(gaussians.opacity_logits.clone())
    log_scales = torch.nn.Parameter(gaussians.log_scales.clone())
    groups = [
        {"params": [color_logit], "lr": config.lr_color},
        {"params": [opacity_logit], "lr": config.lr_opacity},
        {"params": [log_scales], "lr": config.lr_scale},
    ]
    optimiser = torch.optim.Adam(groups)

    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    step = 0
    budget = float("inf") if config.time_budget is None else config.time_budget
    while step < config.iterations and time.perf_counter() - start < budget:
        chosen = torch.randperm(len(views.cameras), generator=gen)[: config.views_per_iteration].tolist()
        optimiser.zero_grad()
        color, alpha = render_gaussians_views(gaussians.means, gaussians.quats, log_scales.exp(),
                                              torch.sigmoid(opacity_logit), torch.sigmoid(color_logit),
                                              [views.cameras[v] for v in chosen])
        loss = photometric(color, views.color[chosen], config.ssim)
        loss = loss + config.alpha * (alpha - views.alpha[chosen]).abs().mean()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        step += 1
    report = MeshFit(step, time.perf_counter() - start, losses[0] if losses else float("nan"),
                     losses[-1] if losses else float("nan"))
    if step == 0:
        return gaussians, report
    with torch.no_grad():
        refined = replace(gaussians, log_scales=log_scales.detach().clone(),
                          opacity_logits=opacity_logit.detach().clone(),
                          colors=torch.sigmoid(color_logit).detach().clone())
    return refined, report


def psnr(image: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = float((image - target).square().mean())
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))


def view_scores(gaussians: Gaussians, views: MeshViews) -> tuple[float, float]:
    """(PSNR in dB over all views, mean silhouette IoU) of ``gaussians`` against mesh ``views``.

    Silhouettes are alpha > 0.5 in both renders.
    """
    with torch.no_grad():
        out = [render_gaussians(gaussians.means, gaussians.quats, gaussians.log_scales.exp(),
                                torch.sigmoid(gaussians.opacity_logits), gaussians.colors, cam)
               for cam in views.cameras]
    color = torch.stack([o[0] for o in out])
    alpha = torch.stack([o[1] for o in out])
    ours, theirs = alpha > 0.5, views.alpha > 0.5
    iou = ((ours & theirs).sum((1, 2)).float() / (ours | theirs).sum((1, 2)).clamp_min(1).float()).mean()
    return psnr(color, views.color), float(iou)
