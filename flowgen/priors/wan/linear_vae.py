"""A linear stand-in for the VAE encoder's backward: the cheaper gradient path (issue #19 item 7).

The paper's limitation (§6): much of a run is spent backpropagating the SDS gradient through
the VAE encoder, and since the objective is motion rather than appearance, full VAE gradients
may not be needed. With ``WanConfig.vae_gradient = "linear"`` the encoder still makes the
latents the transformer judges (exactly, without a graph), but the latent gradient g is pulled
back into pixels by the transpose of a fixed linear map, ``gain * A^T g``, instead of the
encoder's Jacobian at the render, ``J(x)^T g``.

A is the encoder's Jacobian averaged over videos, in the encoder's layout (causal in time: the
first frame encoded alone, then each group of ``t`` frames to one latent frame; ``s`` pixels to
one latent pixel), with kernels 2s pixels wide:

    dz[:, 0] ~ conv2d(dx[0], W0, stride s),    dz[:, i] ~ conv3d(dx[1 + t(i-1) : 1 + t i], W1, stride (t, s, s)).

It is estimated from vector-Jacobian products with random latent vectors g of independent
signs (E[g g^T] = I): for a
latent entry l, E[g_l (J^T g)] is J's row l, so averaging g_l times the pixel window of
``J^T g`` around l over entries, draws and videos (`fit_videos`, coloured and textured shapes
moving over a backdrop, a pure function of the seed) gives W0 and W1 (`fit_linear_encoder`,
once when the prior loads: about 2 s on the shipped prior). ``gain`` makes the pulled-back
gradient as large as the exact one on average for random latent vectors (on real SDS gradients
it comes out smaller: 0.47-0.82 of the exact one on the shipped prior); the cosine between the
two on held-out videos is kept for the log (`LinearEncoder.cosine`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LinearEncoder", "fit_linear_encoder", "fit_videos"]


@dataclass(frozen=True)
class LinearEncoder:
    """The encoder's averaged Jacobian as convolutions (see the module docstring).

    Attributes:
        first: (C, 3, k, k) weights of the first latent frame (k = 2 s).
        rest: (C, 3, t, k, k) weights of each later latent frame.
        spatial, temporal: the encoder's factors s and t.
        gain: scales the pull-back so that its norm matches the exact one on average (random
            latent vectors, held-out videos).
        cosine: mean cosine between the pull-back and the exact one (random latent vectors,
            held-out videos).
    """

    first: Tensor
    rest: Tensor
    spatial: int
    temporal: int
    gain: float = 1.0
    cosine: float = float("nan")

    def apply(self, video: Tensor) -> Tensor:
        """A x: (B, T, H, W, 3) pixels -> (B, C, 1 + (T - 1) / t, H / s, W / s)."""
        assert video.ndim == 5 and video.shape[-1] == 3 and (video.shape[1] - 1) % self.temporal == 0, video.shape
        x = video.permute(0, 4, 1, 2, 3).to(self.first.dtype)  # (B, 3, T, H, W)
        p = self.spatial // 2
        z0 = F.conv2d(x[:, :, 0], self.first, stride=self.spatial, padding=p)[:, :, None]
        if x.shape[2] == 1:
            return z0
        zr = F.conv3d(x[:, :, 1:], self.rest, stride=(self.temporal, self.spatial, self.spatial), padding=(0, p, p))
        return torch.cat([z0, zr], dim=2)

    def pullback(self, grad: Tensor, like: Tensor) -> Tensor:
        """``gain * A^T grad``: the latent gradient (B, C, T_lat, h, w) as a gradient on the
        pixels, shaped, typed and placed as ``like`` (B, T, H, W, 3)."""
        x = torch.zeros(like.shape, dtype=self.first.dtype, device=self.first.device, requires_grad=True)
        with torch.enable_grad():
            z = self.apply(x)
            assert z.shape == grad.shape, (z.shape, grad.shape)
            (gx,) = torch.autograd.grad(z, x, grad.to(z.device, z.dtype))
        return (self.gain * gx).to(like.device, like.dtype)

    def to(self, device: torch.device | str) -> LinearEncoder:
        return LinearEncoder(self.first.to(device), self.rest.to(device), self.spatial, self.temporal, self.gain,
                             self.cosine)


def fit_videos(count: int, frames: int, size: int, background: tuple[float, float, float] | None,
               seed: int) -> np.ndarray:
    """(count, T, size, size, 3) float32 videos in [0, 1] to fit the map on: 1-4 shapes
    (rectangles and ellipses, plain, striped, checkered or noisy, each its own colours) moving
    and turning a little over a backdrop (``background``, or a random colour per video when
    None), plus faint pixel noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    videos = np.empty((count, frames, size, size, 3), np.float32)
    for n in range(count):
        backdrop = np.asarray(background if background is not None else rng.uniform(0, 1, 3), np.float32)
        shapes = []
        for _ in range(rng.integers(1, 5)):
            shapes.append({
                "centre": rng.uniform(0.15, 0.85, 2), "velocity": rng.normal(0, 0.015, 2),
                "half": rng.uniform(0.06, 0.3, 2), "angle": rng.uniform(0, np.pi), "spin": rng.normal(0, 0.05),
                "ellipse": rng.random() < 0.4, "colours": rng.uniform(0, 1, (2, 3)), "texture": rng.integers(0, 4),
                "period": rng.uniform(0.04, 0.2), "noise": rng.uniform(0, 1, (8, 8))})
        for t in range(frames):
            image = np.broadcast_to(backdrop, (size, size, 3)).copy()
            for s in shapes:
                cy, cx = s["centre"] + t * s["velocity"]
                a = s["angle"] + t * s["spin"]
                u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
                v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
                hu, hv = s["half"]
                inside = (u / hu) ** 2 + (v / hv) ** 2 <= 1 if s["ellipse"] else (abs(u) <= hu) & (abs(v) <= hv)
                if s["texture"] == 1:
                    mix = (np.floor(u / s["period"]) % 2).astype(np.float32)
                elif s["texture"] == 2:
                    mix = ((np.floor(u / s["period"]) + np.floor(v / s["period"])) % 2).astype(np.float32)
                elif s["texture"] == 3:
                    iu = np.clip(((u / hu + 1) * 3.5).astype(int), 0, 7)
                    iv = np.clip(((v / hv + 1) * 3.5).astype(int), 0, 7)
                    mix = s["noise"][iv, iu].astype(np.float32)
                else:
                    mix = np.zeros_like(u)
                colour = s["colours"][0] * (1 - mix[..., None]) + s["colours"][1] * mix[..., None]
                image[inside] = colour[inside]
            videos[n, t] = image
    videos += rng.normal(0, 0.01, videos.shape).astype(np.float32)
    return np.clip(videos, 0.0, 1.0)


def _rest_windows(grad: Tensor, t: int, k: int, stride: int) -> Tensor:
    """(B, 3, T, H, W) -> (B (T_lat - 1), 3 t k k, L): each later group of t frames' windows."""
    chunks = grad[:, :, 1:].unflatten(2, (-1, t)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1).flatten(1, 2)
    return F.unfold(chunks, k, padding=stride // 2, stride=stride)


def fit_linear_encoder(encode: Callable[[Tensor], Tensor], spatial: int, temporal: int,
                       background: tuple[float, float, float] | None, count: int = 32, draws: int = 2,
                       held_out: int = 8, seed: int = 20261204, batch: int = 8) -> LinearEncoder:
    """Estimate the averaged Jacobian of ``encode`` on `fit_videos` of 1 + 2 t frames at 8 s
    pixels (see the module docstring).

    Args:
        encode: (B, T, H, W, 3) pixels in [0, 1] -> normalised latents (B, C, T_lat, h, w),
            differentiable (the prior's VAE, `WanPrior.encode_pixels`).
        spatial, temporal: its factors s and t.
        background: the backdrop of the renders it will see (None: random colours).
        count, draws: fitting videos, and random latent vectors per video.
        held_out: videos on which the gain and the cosine are measured.
        seed: of the videos and the random vectors.
        batch: videos per encoder call.
    """
    s, t, k = spatial, temporal, 2 * spatial
    videos = torch.from_numpy(fit_videos(count + held_out, 1 + 2 * t, 8 * s, background, seed))
    gen = torch.Generator().manual_seed(seed)
    first, rest, n_first, n_rest = 0.0, 0.0, 0, 0
    for i in range(0, count, batch):
        leaf = videos[i:min(i + batch, count)].clone().requires_grad_(True)
        z = encode(leaf).float()
        for d in range(draws):
            g = (torch.randint(0, 2, z.shape, generator=gen) * 2.0 - 1.0).to(z.device)  # Rademacher: g_l^2 = 1
            (gx,) = torch.autograd.grad(z, leaf, g, retain_graph=d < draws - 1)
            gx, g = gx.float().cpu().permute(0, 4, 1, 2, 3), g.cpu()  # (B, 3, T, H, W)
            cols = F.unfold(gx[:, :, 0], k, padding=s // 2, stride=s)  # (B, 3 k k, L)
            first = first + torch.einsum("bfl,bcl->cf", cols, g[:, :, 0].flatten(2))
            n_first += cols.shape[0]
            cols = _rest_windows(gx, t, k, s)
            g_rest = g[:, :, 1:].permute(0, 2, 1, 3, 4).flatten(0, 1).flatten(2)  # (B (T_lat - 1), C, L)
            rest = rest + torch.einsum("bfl,bcl->cf", cols, g_rest)
            n_rest += cols.shape[0]
    c, size = z.shape[1], videos.shape[2]
    # windows at the border reach into the padding: each tap is averaged over the positions
    # where it sees a pixel
    taps = F.unfold(torch.ones(1, 1, size, size), k, padding=s // 2, stride=s).sum(dim=2)[0]  # (k k,)
    first = first.reshape(c, 3, k, k) / (n_first * taps.reshape(k, k))
    rest = rest.reshape(c, 3, t, k, k) / (n_rest * taps.reshape(k, k))
    encoder = LinearEncoder(first, rest, s, t)
    ratios, cosines = [], []
    for i in range(count, count + held_out):
        leaf = videos[i:i + 1].clone().requires_grad_(True)
        z = encode(leaf).float()
        g = torch.randn(z.shape, generator=gen).to(z.device)
        (exact,) = torch.autograd.grad(z, leaf, g)
        approx = encoder.pullback(g, leaf)
        ratios.append(float(exact.norm() / approx.norm()))
        cosines.append(float((exact * approx).sum() / (exact.norm() * approx.norm())))
    return LinearEncoder(encoder.first, encoder.rest, s, t, float(np.mean(ratios)), float(np.mean(cosines)))
