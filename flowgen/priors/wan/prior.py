"""The Wan 2.2 prior: rectified-flow score distillation through diffusers components.

Per iteration (`wan_sds_loss`): tau and the guidance scale come from the schedule (pure
functions of the iteration, `flowgen.priors.tau`), the expert from tau; each of the V views
is encoded (graph kept), noised, its guided velocity taken without gradient, and the RF-SDS
gradient (`flowgen.priors.sds`) pulled back through the VAE into pixels at once, view by view, so
only one view's VAE graph is ever alive. The returned scalar's gradient with respect to the
rendered video is exactly that pull-back (its value is 0.5 ||g||^2 / V, for the log).

Because tau only decreases, the experts switch once: only the active expert is held on the
device (`ExpertSlot`); the other stays on disk and is loaded when tau crosses the boundary
(logged). See docs/wan-memory.md for what is resident when.

`flowgen.priors.wan.load.load_wan_prior` loads it: the prompts embedded once, the text encoder freed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from flowgen.priors.sds import (
    Embeddings,
    VelocityModel,
    blur_frames,
    blur_sigma,
    guided_velocity,
    rf_sds_gradient,
    surrogate_loss,
)
from flowgen.priors.tau import (
    NoiseLevels,
    cdf,
    density,
    guidance_at,
    switch_iteration,
    tau_at,
)
from flowgen.priors.wan.config import (
    UNIFORM_TAU_RANGE,
    WanConfig,
    WanVariant,
)
from flowgen.priors.wan.encode import (
    decode_video,
    encode_video,
)
from flowgen.priors.wan.linear_vae import LinearEncoder
from flowgen.priors.wan.weights import (
    ExpertSlot,
    Log,
    ModelShape,
)

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

__all__ = ["Condition", "SdsResult", "WanPrior", "wan_sds_loss"]


@dataclass(frozen=True)
class Condition:
    """The image condition of one view, built from its first rendered frame.

    Attributes:
        latents: I2V A14B: (1, t + C, T_lat, h, w) mask channels (t, the VAE's time factor: 4
            for Wan's) then the latents of [first frame, black frames...]; TI2V 5B: (1, C, 1, h, w)
            the first frame's latents.
        mask: TI2V 5B: (1, 1, T_lat, h, w), 0 on the first latent frame (kept clean, timestep 0)
            and 1 elsewhere; None for I2V A14B. T_lat = 1 + (T - 1) // t latent frames, h w
            latent pixels.
    """

    latents: Tensor
    mask: Tensor | None


@dataclass(frozen=True)
class SdsResult:
    """One iteration of the prior.

    Attributes:
        loss: scalar; its gradient with respect to the video is the RF-SDS gradient pulled
            back through the VAE (times grad_scale / V, and `WanPrior.tau_weight`); its value
            is that factor times the sum over views of 0.5 ||g||^2 (g the latent gradient).
            With ``sds_space`` "image", g is the blurred residual between the render and the
            decoded denoised estimate, and the gradient is its blur's adjoint (`WanConfig`).
        tau: the noise level.
        guidance: the guidance scale.
        expert: the transformer subfolder that ran.
        grad_rms: root mean square of g (before scaling).
    """

    loss: Tensor
    tau: float
    guidance: float
    expert: str
    grad_rms: float



@dataclass(frozen=True)
class WanPrior:
    """A loaded Wan 2.2 prior (see the module docstring); build it with `load_wan_prior`.

    Attributes:
        config: the settings.
        spec: which Wan model.
        root: its weights directory.
        vae: the VAE on the device (parameters frozen).
        embeddings: (1, L, D) prompt and negative-prompt embeddings, in the transformer dtype.
        levels: the tabulated noise-level density W.
        num_train_timesteps: the transformer's timestep scale (tau * this is its timestep).
        patch_size: the transformer's (t, h, w) patch.
        device, dtype: of the transformers.
        experts: the resident expert.
        linear: the encoder's averaged Jacobian when ``config.vae_gradient`` is "linear"
            (the gradient's pull-back then skips the encoder's backward), else None.
        log: one-line messages.
    """

    config: WanConfig
    spec: WanVariant
    root: Path
    vae: AutoencoderKLWan
    embeddings: Embeddings
    levels: NoiseLevels
    num_train_timesteps: int
    patch_size: tuple[int, int, int]
    device: torch.device
    dtype: torch.dtype
    experts: ExpertSlot
    linear: LinearEncoder | None = None
    log: Log = field(default=lambda message: None, repr=False)

    # -- sizes --------------------------------------------------------------------------------
    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame after the first: T must be 1 + this * k."""
        return int(self.vae.config.scale_factor_temporal)

    @property
    def spatial_multiple(self) -> int:
        """H and W must be multiples of this (VAE factor x transformer patch: 16 or 32)."""
        return int(self.vae.config.scale_factor_spatial) * self.patch_size[1]

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        """ConfigError unless a (T, H, W) video fits the model (`ModelShape.check`)."""
        ModelShape(self.spec, self.temporal_factor, self.spatial_multiple, {}).check(num_frames, height, width)

    # -- schedule -----------------------------------------------------------------------------
    def tau(self, it: int, total: int) -> float:
        """Noise level of iteration ``it`` of ``total``: annealed (`tau_at`) or, for the
        ``uniform`` schedule, a uniform draw in UNIFORM_TAU_RANGE seeded by ``it``."""
        if self.config.tau_schedule == "uniform":
            low, high = UNIFORM_TAU_RANGE
            return float(np.random.default_rng([20261122, it]).uniform(low, high))
        return tau_at(self.levels, it, total)

    def tau_weight(self, tau: float) -> float:
        """The gradient's weight at noise level ``tau``: 1 on the annealed schedule (its taus
        are already spread by W); on the ``uniform`` one, W(tau) over W's mean on
        UNIFORM_TAU_RANGE, so that, as in the paper's ablation, uniform draws weighted by W
        average to the gradient that draws from W give (the weight's mean over the range is 1)."""
        if self.config.tau_schedule != "uniform":
            return 1.0
        low, high = UNIFORM_TAU_RANGE
        mean = float(cdf(self.levels, high) - cdf(self.levels, low)) / (high - low)
        return float(density(self.levels, tau)) / mean

    def guidance(self, it: int, total: int) -> float:
        """Guidance scale of iteration ``it`` (linear from guidance_start to guidance_end)."""
        return guidance_at(self.config.guidance_start, self.config.guidance_end, it, total)

    def expert_name(self, tau: float) -> str:
        """``transformer`` at tau >= boundary_ratio (or for a single expert), else ``transformer_2``."""
        if len(self.spec.experts) == 1 or tau >= self.config.boundary_ratio:
            return self.spec.experts[0]
        return self.spec.experts[1]

    def plan(self, total: int) -> str:
        """One line saying which expert runs when over ``total`` iterations."""
        first, last = self.tau(0, total), self.tau(total - 1, total)
        if self.config.tau_schedule == "uniform":
            low, high = UNIFORM_TAU_RANGE
            text = (f"{self.spec.label}: tau uniform in [{low:g}, {high:g}] (ablation), the gradient weighted by "
                    f"{self.levels.weight} W(tau), guidance "
                    f"{self.config.guidance_start:g} -> {self.config.guidance_end:g}")
            if len(self.spec.experts) > 1:
                text += (f"; {self.spec.experts[0]} while tau >= {self.config.boundary_ratio:g}, else "
                         f"{self.spec.experts[1]} (the experts alternate: one resident at a time)")
            return text
        text = (f"{self.spec.label}: tau {first:.3f} -> {last:.4f} ({self.levels.weight} W, shift "
                f"{self.levels.shift:g}), guidance {self.config.guidance_start:g} -> "
                f"{self.config.guidance_end:g}")
        if len(self.spec.experts) > 1:
            k = switch_iteration(self.levels, total, self.config.boundary_ratio)
            when = "never" if k is None else f"at iteration {k}"
            text += (f"; {self.spec.experts[0]} while tau >= {self.config.boundary_ratio:g}, "
                     f"{self.spec.experts[1]} from then ({when}); one expert resident at a time")
        return text

    # -- model --------------------------------------------------------------------------------
    def condition(self, first_frame: Tensor, num_frames: int) -> Condition:
        """The image condition from a first rendered frame (H, W, 3) in [0, 1], as
        `WanImageToVideoPipeline.prepare_latents` builds it from the same image."""
        with torch.no_grad():
            pixels = self._condition_pixels(first_frame, num_frames)
            return self._condition(encode_video(self.vae, pixels, checkpoint=False).float(), num_frames)

    def _condition_pixels(self, first_frame: Tensor, num_frames: int) -> Tensor:
        """(1, 3, T', H, W) in [-1, 1], the VAE dtype: the video the condition encodes - the
        first frame alone (TI2V 5B) or followed by T - 1 black frames (I2V A14B)."""
        assert first_frame.ndim == 3 and first_frame.shape[-1] == 3, first_frame.shape
        h, w = first_frame.shape[:2]
        image = (first_frame.detach().to(self.device, torch.float32) * 2.0 - 1.0).permute(2, 0, 1)
        image = image[None, :, None]  # (1, 3, 1, H, W)
        if not self.spec.expand_timesteps:
            image = torch.cat([image, image.new_zeros(1, 3, num_frames - 1, h, w)], dim=2)
        return image.to(self.vae.dtype)

    def _condition(self, latents: Tensor, num_frames: int) -> Condition:
        """The condition from the latents (1, C, T_lat', h, w) of `_condition_pixels` (detached)."""
        latents = latents.detach().float()
        if self.spec.expand_timesteps:
            f = (num_frames - 1) // self.temporal_factor + 1
            mask = torch.ones(1, 1, f, *latents.shape[-2:], device=self.device)
            mask[:, :, 0] = 0
            return Condition(latents, mask)
        mask = torch.zeros(1, self.temporal_factor, *latents.shape[2:], device=self.device)
        mask[:, :, 0] = 1
        return Condition(torch.cat([mask, latents], dim=1), None)

    def encode_pixels(self, video: Tensor) -> Tensor:
        """(B, T, H, W, 3) pixels in [0, 1] -> the VAE's normalised latents (B, C, T_lat, h, w),
        differentiable (gradient checkpointing as configured)."""
        return encode_video(self.vae, self._pixels(video), self.config.vae_checkpointing)

    def _pixels(self, video: Tensor) -> Tensor:
        """(B, T, H, W, 3) in [0, 1] -> (B, 3, T, H, W) in [-1, 1], on the device in the VAE's dtype."""
        return (video.to(self.device, torch.float32) * 2.0 - 1.0).permute(0, 4, 1, 2, 3).to(self.vae.dtype)

    def _encode(self, video: Tensor, first_frame: Tensor) -> tuple[Tensor, Tensor, Condition]:
        """One view's render (T, H, W, 3) -> (its leaf, its latents with the graph to the leaf,
        the condition from ``first_frame``). With ``config.encode_together`` (I2V A14B) the
        condition's video and the render go through the VAE as one batch of two."""
        frames = video.shape[0]
        leaf = video.detach().to(self.device, torch.float32).requires_grad_(True)
        pixels = self._pixels(leaf[None])
        if not (self.config.encode_together and not self.spec.expand_timesteps):
            return leaf, encode_video(self.vae, pixels, self.config.vae_checkpointing), \
                self.condition(first_frame, frames)
        both = torch.cat([pixels, self._condition_pixels(first_frame, frames)])
        z = encode_video(self.vae, both, self.config.vae_checkpointing)
        return leaf, z[:1], self._condition(z[1:], frames)

    def velocity_model(self, expert: WanTransformer3DModel, condition: Condition) -> VelocityModel:
        """``model(z_tau, tau, embedding) -> v`` for `flowgen.priors.sds`, with the image
        condition and the timestep layout of the variant (as the pipeline's denoising loop)."""
        _, ph, pw = self.patch_size

        def model(z_tau: Tensor, tau: float, embedding: Tensor) -> Tensor:
            n = z_tau.shape[0]
            t = tau * self.num_train_timesteps
            if condition.mask is None:
                cond = condition.latents.expand(n, *condition.latents.shape[1:])
                x = torch.cat([z_tau.float(), cond], dim=1)
                timestep = torch.full((n,), t, device=self.device)
            else:
                m = condition.mask
                x = (1 - m) * condition.latents + m * z_tau.float()
                timestep = (m[0, 0][:, ::ph, ::pw] * t).flatten()[None].expand(n, -1)
            return expert(hidden_states=x.to(expert.dtype), timestep=timestep,
                          encoder_hidden_states=embedding, return_dict=False)[0]

        return model

    def velocity(self, z_tau: Tensor, tau: float, condition: Condition, scale: float) -> Tensor:
        """Guided velocity v_u + s (v_c - v_u) at (1, C, T_lat, h, w) ``z_tau``, with the expert of
        ``tau`` (what the pipeline's loop calls ``noise_pred`` at timestep tau * 1000)."""
        expert = self.experts.get(self.expert_name(tau))
        return guided_velocity(self.velocity_model(expert, condition), z_tau.to(self.device), tau,
                               self.embeddings, scale, self.config.batch_guidance)

    def _noise(self, shape: torch.Size, seed: int, it: int, view: int) -> Tensor:
        state = np.random.SeedSequence([seed, it, view, 0x5D5]).generate_state(1, dtype=np.uint64)[0]
        gen = torch.Generator(device=self.device).manual_seed(int(state) & ((1 << 63) - 1))
        return torch.randn(shape, generator=gen, device=self.device, dtype=torch.float32)

    def sds(self, video: Tensor, first_frames: Tensor | None, it: int, total: int,
            seed: int = 0, first_view: int = 0) -> SdsResult:
        """The RF-SDS step of iteration ``it`` of ``total`` (see `wan_sds_loss`); the views
        are numbered from ``first_view`` for the noise draws (a batch split into calls of one
        view each draws the same noise as one call)."""
        assert video.ndim == 5 and video.shape[-1] == 3, video.shape
        views, frames, height, width, _ = video.shape
        self.check_size(frames, height, width)
        first = video[:, 0] if first_frames is None else first_frames
        assert first.shape == (views, height, width, 3), (first.shape, video.shape)
        tau, scale = self.tau(it, total), self.guidance(it, total)
        name = self.expert_name(tau)
        expert = self.experts.get(name, f" at iteration {it} (tau {tau:.4f})")
        weight = self.config.grad_scale * self.tau_weight(tau) / views
        image = self.config.sds_space == "image"
        grads, value, sq, count = [], 0.0, 0.0, 0
        for v in range(views):
            with torch.set_grad_enabled(self.linear is None and not image):
                leaf, z, condition = self._encode(video[v], first[v])
                g = rf_sds_gradient(z, tau, self.embeddings, self.velocity_model(expert, condition),
                                    scale, self._noise(z.shape, seed, it, first_view + v),
                                    self.config.batch_guidance)
                if condition.mask is not None:
                    g = g * condition.mask
                if image:  # z - z_hat = tau g: the denoised estimate, decoded, is the render's target
                    target = decode_video(self.vae, z.detach().float() - tau * g)[0, :frames]
                    with torch.enable_grad():
                        x = leaf.detach().requires_grad_(True)
                        residual = self.image_residual(x, target.to(x.device), it, total)
                        (gx,) = torch.autograd.grad(residual, x, weight * residual.detach())
                    g = residual.detach()
                elif self.linear is None:
                    (gx,) = torch.autograd.grad(z, leaf, (weight * g).to(z.dtype))
                else:  # the averaged Jacobian's transpose instead of the encoder's backward
                    gx = self.linear.pullback(weight * g, leaf[None])[0]
            grads.append(gx.to(video.device, video.dtype))
            value += weight * 0.5 * float(g.square().sum())
            sq, count = sq + float(g.square().sum()), count + g.numel()
            del z, g, gx, leaf, condition
        loss = surrogate_loss(video, torch.stack(grads), value)
        return SdsResult(loss, tau, scale, name, (sq / max(count, 1)) ** 0.5)

    def image_residual(self, frames: Tensor, target: Tensor, it: int, total: int) -> Tensor:
        """The image space's residual at iteration ``it`` of ``total``: (F, H, W, 3) ``frames``
        less ``target``, both blurred by the Gaussian that narrows over the run (``image_blur``,
        fractions of the width)."""
        sigma = blur_sigma(*(f * frames.shape[-2] for f in self.config.image_blur), it, total)
        return blur_frames(frames, sigma) - blur_frames(target, sigma)

    def release(self) -> None:
        """Free the device memory the prior holds (expert and VAE)."""
        self.experts.release()
        self.vae.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def wan_sds_loss(prior: WanPrior, video: Tensor, first_frames: Tensor | None, iteration: int,
                 total: int, seed: int = 0) -> Tensor:
    """The RF-SDS loss of one iteration, for rendered videos.

    Args:
        prior: from `load_wan_prior`.
        video: (V, T, H, W, 3) renders in [0, 1], differentiable, one per camera; T = 4k + 1
            and H, W multiples of ``prior.spatial_multiple``.
        first_frames: (V, H, W, 3) each view's first-frame render (the image condition); None
            takes ``video[:, 0]``. Not differentiated.
        iteration: the motion iteration (0 .. total - 1); tau and the guidance follow from it.
        total: the number of motion iterations.
        seed: the run's seed (noise is a function of seed, iteration and view).
    Returns:
        Scalar whose gradient with respect to ``video`` is the RF-SDS gradient pushed back
        through the VAE (see `SdsResult`).
    """
    return prior.sds(video, first_frames, iteration, total, seed).loss
