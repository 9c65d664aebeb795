"""The SDS prior of the optimisation loop: Wan 2.2 judges videos rendered from sampled cameras
(paper §3.2, Fig. 2; DESIGN.md §4).

Per motion iteration ``it`` the loop asks for ``V`` views; each is a camera drawn around the
moving objects (`flowgen.priors.cameras.sample_cameras`, a pure function of the seed and
``it``) rendering *every* frame 0 .. T-1 of the flow in colour. The loss of a view is Wan's
rectified-flow SDS on that video (`flowgen.priors.wan.WanPrior.sds`): the first rendered frame
(frame 0, the scan's rest pose) is the image condition, tau and the guidance scale follow the
annealed schedules of ``it``, and the gradient reaches the Fenwick stores through the VAE, the
renderer and the skinning. The regularisers (temporal 3D-flow, ARAP) are the loop's.

It implements `flowgen.objective.Prior`. The loop numbers views with a running count
``first = it * V`` (`flowgen.optimize`); a view's ``source`` is that count, from which its
iteration and its slot in the batch (the noise draw) follow, so nothing here keeps state
between iterations and a resumed run draws the same cameras and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowgen.priors.cameras import CameraSampling, sample_cameras
from flowgen.priors.video import View
from flowgen.priors.wan.prior import WanPrior

__all__ = ["SdsPrior", "over_backdrop"]


def over_backdrop(rgb: Tensor, alpha: Tensor, backdrop: tuple[float, float, float] | None) -> Tensor:
    """(T, H, W, 3) renders premultiplied over black, with ``backdrop`` (RGB in [0, 1]; None:
    black, as they are) showing where ``alpha`` (T, H, W) is below 1."""
    if backdrop is None:
        return rgb
    colour = torch.as_tensor(backdrop, dtype=rgb.dtype, device=rgb.device)
    return rgb + (1.0 - alpha.reshape(*rgb.shape[:-1], 1)) * colour


@dataclass(frozen=True)
class SdsPrior:
    """Score distillation from a loaded Wan prior, as the loop's `Prior`.

    Attributes:
        wan: the loaded Wan 2.2 prior (VAE, embeddings, experts).
        targets: (N, 3) world points the cameras frame (the moving objects at rest, and a
            pick's plate: `FlowInputs.framed`).
        num_frames: T, frames rendered per view (1 + 4k).
        width, height: render size (multiples of the model's spatial multiple).
        num_views: V, cameras per iteration.
        iterations: motion iterations of the run (the schedules' length).
        sampling: camera ranges.
        seed: the run's seed (cameras and noise).
    """

    wan: WanPrior
    targets: np.ndarray
    num_frames: int
    width: int
    height: int
    num_views: int
    iterations: int
    sampling: CameraSampling
    seed: int = 0

    def __post_init__(self) -> None:
        assert self.targets.ndim == 2 and self.targets.shape[1] == 3 and len(self.targets), self.targets.shape
        self.wan.check_size(self.num_frames, self.height, self.width)

    @property
    def num_sources(self) -> int:
        """Views per iteration (the loop's count of 'sources')."""
        return self.num_views

    def iteration_of(self, view: View) -> tuple[int, int]:
        """(motion iteration, slot in its batch) of a view made by :meth:`views`."""
        return divmod(view.source, self.num_views)

    def views(self, frames: list[Tensor], scale: float, first: int = 0) -> list[View]:
        """The ``V`` cameras of iteration ``first // V``, each rendering every frame.

        Args:
            frames: one entry per view (the loop's frame draws; SDS renders all T frames, so
                only their count is used).
            scale: image scale; must be 1 (the size is fixed by the model).
            first: the running view count, ``it * V``.
        """
        if scale != 1.0:
            raise ValueError("the SDS prior renders at the model's size only (lowres_fraction must be 0)")
        if len(frames) != self.num_views or first % self.num_views:
            raise ValueError(f"expected {self.num_views} views starting at a multiple of it, got "
                             f"{len(frames)} from {first}")
        it = first // self.num_views
        cameras = sample_cameras(self.targets, self.width, self.height, self.sampling, self.num_views,
                                 self.seed, it)
        every = torch.arange(self.num_frames)
        return [View(first + i, camera, every, None) for i, camera in enumerate(cameras)]

    def loss(self, view: View, rgb: Tensor, alpha: Tensor, scale: float) -> dict[str, Tensor]:
        """``sds``: the RF-SDS loss of the rendered video ``rgb`` (T, H, W, 3); its gradient
        is Wan's, pulled back through the VAE (its value is 0.5 ||g||^2, for the log)."""
        assert rgb.shape == (self.num_frames, self.height, self.width, 3), rgb.shape
        rgb = over_backdrop(rgb, alpha, self.wan.config.background)
        it, slot = self.iteration_of(view)
        result = self.wan.sds(rgb[None], None, it, self.iterations, self.seed, first_view=slot)
        return {"sds": result.loss}

    def still(self, view: View, scale: float) -> Tensor | None:
        """No still-pixel evidence: the prior has no video to compare with."""
        return None

    def release(self) -> None:
        """Free the device memory Wan holds (its expert and VAE)."""
        self.wan.release()

    def plan(self) -> str:
        """One line on the schedule and the expert switch of this run (for the log)."""
        text = (f"{self.wan.plan(self.iterations)}; {self.num_views} view(s) x {self.num_frames} frames "
                f"at {self.width}x{self.height} per iteration")
        if self.wan.config.sds_space == "image":
            start, end = (f * self.width for f in self.wan.config.image_blur)
            text += f"; the residual in pixels, against the decoded denoised estimate, blurred {start:.3g} -> {end:.3g} px"
        return text
