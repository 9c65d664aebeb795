"""`flowgen.priors.wan.encode.ChannelRMSNorm`, the Wan VAE encoder's channel norm on a CPU,
against diffusers' `WanRMS_norm` (no model weights needed)."""

from __future__ import annotations

import torch


def test_channel_rms_norm_is_wans_with_finite_gradients_at_zero_vectors():
    """`encode.ChannelRMSNorm` against diffusers' `WanRMS_norm` on a (B, C, T, H, W) activation
    with some all-zero channel vectors: the same values and gradients (both clamp the norm, so
    a zero vector's gradient is the upstream one over the clamp), none NaN."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    from flowgen.priors.wan.encode import ChannelRMSNorm

    gen = torch.Generator().manual_seed(5)
    norm = WanRMS_norm(16, images=False)
    with torch.no_grad():
        norm.gamma.copy_(torch.rand(norm.gamma.shape, generator=gen) + 0.5)
    x = torch.randn(2, 16, 3, 4, 5, generator=gen)
    x[0, :, 1, 2, 3] = 0.0
    x[1, :, 0, 0, :] = 0.0
    weights = torch.randn(x.shape, generator=gen)
    outs = []
    for module in (norm, ChannelRMSNorm(norm)):
        leaf = x.clone().requires_grad_(True)
        y = module(leaf)
        (grad,) = torch.autograd.grad((y * weights).sum(), leaf)
        outs.append((y.detach(), grad))
    (want, want_grad), (got, grad) = outs
    assert torch.isfinite(grad).all() and grad[0, :, 1, 2, 3].abs().max() > 1e6  # 1 / clamp
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-5)
