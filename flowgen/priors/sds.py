"""Score distillation from a rectified-flow model (RF-SDS, supp. §B; DESIGN.md §4).

A rectified-flow model is trained on z_tau = (1 - tau) z + tau eps to predict the velocity
eps - z. Differentiating its training loss with respect to the clean latent z and dropping the
Jacobian of the model (as SDS does) gives the update direction

    grad_z = v_hat(z_tau; tau, y) - (eps - z),                                   (supp. eq. 3)

with v_hat the classifier-free-guided velocity v_u + s (v_c - v_u). The paper samples tau from
the training weight W itself, so no extra weight multiplies the gradient (eq. 16 -> W-RFSDS).

The same step can be taken in pixels (`flowgen.priors.wan.WanConfig.sds_space` "image"): the
model's denoised estimate z_hat = z_tau - tau v_hat = z - tau grad_z, decoded, is a target for the
render, and both are blurred by a Gaussian that narrows over the run (`blur_frames`,
`blur_sigma`) - the latent residual of an object drawn where the target does not draw it has no
component that moves it; the blurred one does (tests/flowgen/priors/test_sds.py).

Everything here is a pure function of tensors and a velocity model; nothing knows Wan. A model
is any callable ``model(z_tau, tau, embedding) -> velocity`` that works on a batch; the
embedding selects the condition (text embeddings for Wan; in the tests, the single data point
of an analytic flow whose exact velocity is (z_tau - target) / tau).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Embeddings",
    "VelocityModel",
    "blur_frames",
    "blur_sigma",
    "guided_velocity",
    "noisy_latents",
    "rf_sds_gradient",
    "surrogate_loss",
]

VelocityModel = Callable[[Tensor, float, Tensor], Tensor]
"""model(z_tau (B, ...), tau, embedding (B, ...)) -> velocity (B, ...), eps - z."""


@dataclass(frozen=True)
class Embeddings:
    """The condition of the velocity model and the one classifier-free guidance pushes from.

    Attributes:
        cond: (1, ...) the prompt's embedding.
        uncond: (1, ...) the negative prompt's, or None (no guidance).
    """

    cond: Tensor
    uncond: Tensor | None


def noisy_latents(latents: Tensor, noise: Tensor, tau: float) -> Tensor:
    """z_tau = (1 - tau) z + tau eps."""
    assert latents.shape == noise.shape, (latents.shape, noise.shape)
    return (1.0 - tau) * latents + tau * noise


def guided_velocity(model: VelocityModel, z_tau: Tensor, tau: float, embeddings: Embeddings,
                    scale: float, batch: bool = True) -> Tensor:
    """v_u + s (v_c - v_u) at ``z_tau`` (B, ...), without gradient through the model.

    Args:
        model: the velocity model.
        z_tau: (B, ...) noisy latents.
        tau: noise level in (0, 1).
        embeddings: the conditions, each (1, ...) and broadcast over the batch.
        scale: guidance scale s; with s == 1 or no negative embedding only v_c is computed.
        batch: evaluate the two branches as one batch of 2B (faster) instead of two calls.
    Returns:
        (B, ...) velocity in float32.
    """
    n = z_tau.shape[0]
    cond = embeddings.cond.expand(n, *embeddings.cond.shape[1:])
    with torch.no_grad():
        if embeddings.uncond is None or scale == 1.0:
            return model(z_tau, tau, cond).float()
        uncond = embeddings.uncond.expand(n, *embeddings.uncond.shape[1:])
        if batch:
            both = model(torch.cat((z_tau, z_tau)), tau, torch.cat((cond, uncond))).float()
            v_c, v_u = both[:n], both[n:]
        else:
            v_c = model(z_tau, tau, cond).float()
            v_u = model(z_tau, tau, uncond).float()
        return v_u + scale * (v_c - v_u)


def rf_sds_gradient(latents: Tensor, tau: float, embeddings: Embeddings, model: VelocityModel,
                    scale: float, noise: Tensor, batch: bool = True) -> Tensor:
    """The RF-SDS gradient v_hat(z_tau; tau, y) - (eps - z) with respect to the latents.

    Args:
        latents: (B, ...) clean latents z (any graph they carry is ignored).
        tau: noise level in (0, 1).
        embeddings: the prompt's and the negative prompt's embeddings.
        model: the velocity model (called without gradient).
        scale: classifier-free guidance scale.
        noise: (B, ...) eps ~ N(0, I), drawn by the caller (explicit seeds).
        batch: evaluate both guidance branches in one call.
    Returns:
        (B, ...) float32 gradient, detached.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    z = latents.detach().float()
    eps = noise.float()
    z_tau = noisy_latents(z, eps, tau).to(latents.dtype)
    v = guided_velocity(model, z_tau, tau, embeddings, scale, batch)
    return v - (eps - z)


def blur_frames(frames: Tensor, sigma: float) -> Tensor:
    """(..., H, W, C) images blurred by a Gaussian of ``sigma`` pixels (separable, edges
    replicated; differentiable). Below 0.3 px the images are returned as they are."""
    if sigma < 0.3:
        return frames
    radius = math.ceil(3.0 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=frames.dtype, device=frames.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    *lead, h, w, c = frames.shape
    x = frames.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(*lead, h, w, c)


def blur_sigma(start: float, end: float, it: int, total: int) -> float:
    """The blur of iteration ``it`` of ``total``: ``start`` at the first, ``end`` at the last,
    geometric in between (coarse to fine: each step shrinks it by the same factor); linear when
    either is 0 (no blur at that end)."""
    if total <= 1:
        return float(end)
    s = it / (total - 1)
    if start <= 0.0 or end <= 0.0:
        return float(start + (end - start) * s)
    return float(start * (end / start) ** s)


def surrogate_loss(x: Tensor, grad: Tensor, value: Tensor | float = 0.0) -> Tensor:
    """A scalar whose gradient with respect to ``x`` is exactly ``grad`` and whose value is
    ``value`` (detached; for logging).

    ``(x * grad).sum()`` has that gradient; its own value means nothing, so it is shifted to
    ``value``. The usual ``0.5 ||x - (x - grad).detach()||^2`` has the same gradient only up to
    the rounding of ``x - (x - grad)``.
    """
    assert x.shape == grad.shape, (x.shape, grad.shape)
    g = grad.detach().to(x.dtype)
    linear = (x * g).sum()
    value = torch.as_tensor(value, dtype=linear.dtype, device=linear.device)
    return linear - linear.detach() + value.detach()
