"""Encoders of the Wan prior: the prompts through UMT5 (`encode_text`, once at load) and
rendered videos through the VAE with gradient (`encode_video`, chunk by chunk with gradient
checkpointing, so an 832x464x41 render fits).

diffusers is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan

__all__ = ["encode_text", "encode_video"]


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


def _encoder_chunk(encoder, chunk: Tensor, *cache):
    """One causal chunk through the VAE encoder: (chunk, cache in) -> (out, cache out)."""
    feat = list(cache)
    out = encoder(chunk, feat_cache=feat, feat_idx=[0])
    return (out, *feat)


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
    last frames of each causal convolution) stay in memory.

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
    cache: list = [None] * sum(isinstance(m, WanCausalConv3d) for m in vae.encoder.modules())
    outs = []
    use_checkpoint = checkpoint and torch.is_grad_enabled() and pixels.requires_grad
    for i in range(1 + (frames - 1) // 4):
        chunk = x[:, :, :1] if i == 0 else x[:, :, 1 + 4 * (i - 1) : 1 + 4 * i]
        if use_checkpoint:
            out, *cache = recompute(_encoder_chunk, vae.encoder, chunk, *cache, use_reentrant=False)
        else:
            out, *cache = _encoder_chunk(vae.encoder, chunk, *cache)
        outs.append(out)
    h = vae.quant_conv(torch.cat(outs, dim=2))
    mean = h[:, : vae.config.z_dim]
    mu, inv_std = _latent_stats(vae, mean)
    return (mean - mu) * inv_std

