"""Encoders of the Wan prior: the prompts through UMT5 (`encode_text`, once at load) and
rendered videos through the VAE with gradient (`encode_video`: chunk by chunk with gradient
checkpointing, so an 832x464x41 render fits; a small video without checkpointing in one pass).

diffusers is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan

__all__ = ["channels_last", "decode_video", "encode_text", "encode_video"]


def encode_text(tokenizer, text_encoder, texts: list[str], max_length: int,
                device: torch.device) -> Tensor:
    """(B, max_length, D) UMT5 embeddings, as `WanPipeline._get_t5_prompt_embeds` makes them:
    cleaned text, padded to ``max_length``, the padding positions zeroed."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import prompt_clean

    inputs = tokenizer([prompt_clean(t) for t in texts], padding="max_length", max_length=max_length,
                       truncation=True, add_special_tokens=True, return_attention_mask=True,
                       return_tensors="pt")
    ids, mask = inputs.input_ids, inputs.attention_mask
    lengths = mask.gt(0).sum(dim=1).long()
    with torch.no_grad():
        hidden = text_encoder(ids.to(device), mask.to(device)).last_hidden_state
    keep = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths.to(hidden.device)[:, None]
    return torch.where(keep[..., None], hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device))


WHOLE_MAX = 1 << 26
"""Largest first activation (elements: batch x base width x frames x pixels) encoded in one pass
when no checkpointing is asked for; larger videos go chunk by chunk (as 832x464x41 must)."""


def _encoder_chunk(encoder, chunk: Tensor, *cache):
    """One causal chunk through the VAE encoder: (chunk, cache in) -> (out, cache out)."""
    feat = list(cache)
    out = encoder(chunk, feat_cache=feat, feat_idx=[0])
    return (out, *feat)


def _downsample3d(resample, x: Tensor) -> Tensor:
    """A ``downsample3d`` `WanResample` over a whole video: its 2D resample per frame, then its
    strided causal time convolution over all frames after the first, the first kept as it is
    (what its feature cache does chunk by chunk: frame 0 alone, then windows 0-2, 2-4, ...)."""
    b, c, t, h, w = x.shape
    x = resample.resample(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
    x = x.view(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)
    if t == 1:
        return x
    return torch.cat([x[:, :, :1], resample.time_conv(x)], dim=2)


def _one_pass(vae: AutoencoderKLWan) -> bool:
    """Whether `_encoder_whole` equals the chunked encode for this VAE: the non-residual
    encoder, no attention among its down blocks (diffusers' chunked pass cannot run those
    either) and at most two temporal downsamplings (chunks of 4 frames)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanAttentionBlock

    return (not vae.config.is_residual and sum(vae.config.temperal_downsample) <= 2
            and not any(isinstance(m, WanAttentionBlock) for m in vae.encoder.down_blocks))


def _encoder_whole(encoder, x: Tensor) -> Tensor:
    """The VAE encoder over a whole video in one pass, without chunks or feature caches.

    Every layer of the (non-residual) Wan encoder is causal in time or per frame, so one pass
    with each causal convolution's zero padding equals the chunked pass with its caches (to
    float rounding: a convolution over more frames may sum in another order); only the
    temporal downsampling needs its own form (`_downsample3d`). Fewer, larger tensor ops: on
    a CPU at 32x32x9 the chunked pass is dominated by per-op overhead.
    """
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanResample

    x = encoder.conv_in(x)
    for layer in encoder.down_blocks:
        if isinstance(layer, WanResample) and layer.mode == "downsample3d":
            x = _downsample3d(layer, x)
        else:
            x = layer(x)
    x = encoder.mid_block(x)
    return encoder.conv_out(encoder.nonlinearity(encoder.norm_out(x)))


class ChannelRMSNorm(torch.nn.Module):
    """diffusers' ``WanRMS_norm`` over channels (dim 1) of float32 activations, the norm taken
    as the square root of a sum of squares: ``x / max(|x|, 1e-12) * sqrt(C) * gamma + bias``
    as ``F.normalize`` computes it, to float rounding. On a CPU torch's vector norm over the
    channel axis of a (B, C, T, H, W) activation is the slow path: 1.6 ms against 0.08 ms for
    the sum at 2x16x9x32x32 (forward and backward 3.4 against 1.3 ms), and the shipped prior's
    encoder runs ~20 such norms an iteration. Shares the original's parameters."""

    def __init__(self, norm: torch.nn.Module) -> None:
        super().__init__()
        self.original = [norm]  # kept out of the module tree: for other dtypes
        self.scale, self.gamma, self.bias = norm.scale, norm.gamma, norm.bias

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.float32:
            return self.original[0](x)
        # clamped before the root: the same values, and a finite gradient where a vector is zero
        return x / x.square().sum(1, keepdim=True).clamp_min(1e-24).sqrt() * self.scale * self.gamma + self.bias


def fast_channel_norms(module: torch.nn.Module) -> int:
    """Replace every channel-first ``WanRMS_norm`` inside ``module`` (a VAE encoder on a CPU)
    by a `ChannelRMSNorm`; returns how many."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    found = [(name, m) for name, m in module.named_modules() if isinstance(m, WanRMS_norm) and m.channel_first]
    for name, norm in found:
        parent_name, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, ChannelRMSNorm(norm))
    return len(found)


def channels_last(module: torch.nn.Module) -> int:
    """Store the weights of the 3D and 2D convolutions inside ``module`` (a VAE encoder on a
    CPU) channels-last, the layout oneDNN's CPU convolutions run fastest in at the shipped
    prior's size: the condition and the render encoded as one batch with the render's backward
    25.6 -> 22.5 ms (2 threads; the same values to float rounding). `encode_video` gives such
    an encoder channels-last videos (its latents come out channels-last too). Returns how many
    convolutions."""
    layouts = {torch.nn.Conv3d: torch.channels_last_3d, torch.nn.Conv2d: torch.channels_last}
    convolutions = [(m, layout) for m in module.modules() for kind, layout in layouts.items() if isinstance(m, kind)]
    for conv, layout in convolutions:
        conv.weight.data = conv.weight.data.contiguous(memory_format=layout)
    return len(convolutions)


def _channels_last(encoder) -> bool:
    """Whether `channels_last` moved ``encoder``'s weights."""
    weight = encoder.conv_in.weight
    return (weight.ndim == 5 and weight.is_contiguous(memory_format=torch.channels_last_3d)
            and not weight.is_contiguous())


def _latent_stats(vae, like: Tensor) -> tuple[Tensor, Tensor]:
    c = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, c, 1, 1, 1).to(like.device, like.dtype)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, c, 1, 1, 1).to(like.device, like.dtype)
    return mean, inv_std


def encode_video(vae: AutoencoderKLWan, pixels: Tensor, checkpoint: bool = True) -> Tensor:
    """Normalised latent means of videos, differentiable with respect to ``pixels``.

    The same computation as ``vae.encode(pixels).latent_dist.mode()`` (causal chunks of 1, 4,
    4, ... frames sharing a feature cache) followed by the pipeline's normalisation
    ``(z - latents_mean) / latents_std``; with ``checkpoint`` each chunk's activations are
    recomputed in the backward instead of stored, so only the chunk boundaries (the cached
    last frames of each causal convolution) stay in memory. Without checkpointing a video
    whose first activation has at most `WHOLE_MAX` elements goes through the (non-residual)
    encoder in one pass (`_encoder_whole`, the same values to float rounding; frames past the
    last whole chunk are dropped, as the chunks do): on a CPU at 32x32x9 the shipped prior's
    SDS step 65 -> 45 ms (docs/performance.md, session 16).

    Args:
        vae: the Wan VAE.
        pixels: (B, 3, T, H, W) in [-1, 1], T = 4k + 1.
        checkpoint: recompute chunks in the backward (when gradients are recorded).
    Returns:
        (B, z_dim, 1 + (T - 1) // 4, H / s, W / s) latents (s the VAE's spatial factor).
    """
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, patchify
    from torch.utils.checkpoint import checkpoint as recompute

    assert pixels.ndim == 5 and pixels.shape[1] == 3, pixels.shape
    x = pixels
    if vae.config.patch_size is not None:
        x = patchify(x, patch_size=vae.config.patch_size)
    frames = x.shape[2]
    use_checkpoint = checkpoint and torch.is_grad_enabled() and pixels.requires_grad
    if _channels_last(vae.encoder):
        x = x.contiguous(memory_format=torch.channels_last_3d)
    if not use_checkpoint and _one_pass(vae) and x[:, :1].numel() * vae.config.base_dim <= WHOLE_MAX:
        return _normalised(vae, _encoder_whole(vae.encoder, x[:, :, : 1 + 4 * ((frames - 1) // 4)]))
    cache: list = [None] * sum(isinstance(m, WanCausalConv3d) for m in vae.encoder.modules())
    outs = []
    for i in range(1 + (frames - 1) // 4):
        chunk = x[:, :, :1] if i == 0 else x[:, :, 1 + 4 * (i - 1) : 1 + 4 * i]
        if use_checkpoint:
            out, *cache = recompute(_encoder_chunk, vae.encoder, chunk, *cache, use_reentrant=False)
        else:
            out, *cache = _encoder_chunk(vae.encoder, chunk, *cache)
        outs.append(out)
    return _normalised(vae, torch.cat(outs, dim=2))


def decode_video(vae: AutoencoderKLWan, latents: Tensor) -> Tensor:
    """Normalised latents (B, z_dim, T_lat, h, w) -> (B, 1 + 4 (T_lat - 1), H, W, 3) pixels in
    [0, 1]: the pipeline's un-normalisation ``z * latents_std + latents_mean`` and the VAE's
    decoder (no gradient)."""
    assert latents.ndim == 5 and latents.shape[1] == vae.config.z_dim, latents.shape
    z = latents.float()
    mu, inv_std = _latent_stats(vae, z)
    with torch.no_grad():
        pixels = vae.decode((z / inv_std + mu).to(vae.dtype), return_dict=False)[0]
    return (pixels.float().clamp(-1.0, 1.0) * 0.5 + 0.5).permute(0, 2, 3, 4, 1)


def _normalised(vae: AutoencoderKLWan, encoded: Tensor) -> Tensor:
    """The encoder's output -> the pipeline's normalised latent means."""
    h = vae.quant_conv(encoded)
    mean = h[:, : vae.config.z_dim]
    mu, inv_std = _latent_stats(vae, mean)
    return (mean - mu) * inv_std

