"""Loading the Wan 2.2 prior from local weights (`load_wan_prior`): the checks that the
directory holds the model asked for, the prompts embedded and the text encoder freed, the VAE
kept, the experts left to load on first use (`flowgen.priors.wan.prior.WanPrior`)."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import torch

from chord_robot.errors import WeightsError
from flowgen.priors.sds import Embeddings
from flowgen.priors.tau import noise_levels
from flowgen.priors.wan.config import PRESETS, VARIANTS, Variant, WanConfig
from flowgen.priors.wan.encode import channels_last, encode_text, fast_channel_norms
from flowgen.priors.wan.linear_vae import fit_linear_encoder
from flowgen.priors.wan.prior import WanPrior
from flowgen.priors.wan.weights import (
    ExpertSlot,
    Log,
    default_device,
    device_map,
    read_json,
    resolve_model_dir,
)

__all__ = ["load_wan_prior"]


def load_wan_prior(model_dir: str | Path | None, variant: Variant = "i2v-a14b",
                   device: str | torch.device | None = None, dtype: torch.dtype | None = None, *,
                   prompt: str, config: WanConfig | None = None,
                   cache_dir: str | Path | None = None, log: Log | None = None) -> WanPrior:
    """Load the Wan prior from local weights: embed the prompts, free the text encoder, keep the
    VAE; the experts load on first use.

    Args:
        model_dir: diffusers directory of the weights, or None for the Hugging Face cache.
        variant: "i2v-a14b" or "ti2v-5b".
        device: default CUDA when available, else CPU.
        dtype: default bfloat16 on CUDA, float32 on CPU.
        prompt: the task text (the motion to generate).
        config: settings; default the variant's preset.
        cache_dir: Hugging Face hub cache to look in when ``model_dir`` is None.
        log: receives one-line messages (what is resident where).
    Raises:
        WeightsError: the weights are not there (the message says where they are expected).
    """
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    if variant not in VARIANTS:
        raise ValueError(f"unknown Wan variant {variant!r}; one of {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    config = config if config is not None else PRESETS[variant]()
    if config.variant != variant:
        raise ValueError(f"config is for {config.variant!r}, asked to load {variant!r}")
    log = log or (lambda message: None)
    root = resolve_model_dir(model_dir, variant, cache_dir)
    device = default_device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)

    index = read_json(root / "model_index.json")
    if bool(index.get("expand_timesteps") or False) != spec.expand_timesteps:
        raise WeightsError(f"{root} does not hold {spec.label} (its model_index.json has "
                           f"expand_timesteps={index.get('expand_timesteps')}); load it from {spec.repo_id}'s weights")
    if index.get("boundary_ratio") not in (None, config.boundary_ratio):
        log(f"Wan: note: {root} suggests boundary_ratio {index['boundary_ratio']}, using "
            f"{config.boundary_ratio}")
    transformer_config = read_json(root / spec.experts[0] / "config.json")
    vae_config = read_json(root / "vae" / "config.json")
    z_dim = vae_config.get("z_dim", 16)
    # I2V: the latents, a mask channel per frame of a latent frame, the condition's latents
    want = z_dim if spec.expand_timesteps else 2 * z_dim + int(vae_config.get("scale_factor_temporal", 4))
    if transformer_config.get("in_channels") != want:
        raise WeightsError(f"{root} does not hold {spec.label}: its transformer takes "
                           f"{transformer_config.get('in_channels')} channels, expected {want}")
    if transformer_config.get("image_dim") is not None:
        raise WeightsError(f"{root} holds a Wan 2.1 image-to-video model (it needs a CLIP image "
                           f"encoder); this prior drives {spec.label} ({spec.repo_id})")
    scheduler = read_json(root / "scheduler" / "scheduler_config.json")
    shift = config.shift or float(scheduler.get("flow_shift", scheduler.get("shift", 5.0)))

    try:
        tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
        text_encoder = UMT5EncoderModel.from_pretrained(root / "text_encoder", dtype=dtype,
                                                        **device_map(device))
        text_encoder = (text_encoder if device.type == "cuda" else text_encoder.to(device)).eval()
        texts = encode_text(tokenizer, text_encoder, [prompt, config.negative_prompt],
                            config.max_sequence_length, device).to(dtype)
        del text_encoder
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        log(f"Wan: prompt and negative prompt embedded ({texts.shape[1]} tokens); text encoder freed")
        vae_dtype = torch.float32 if config.vae_float32 else dtype
        vae = AutoencoderKLWan.from_pretrained(root / "vae", torch_dtype=vae_dtype)
    except (OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"cannot load {spec.label} from {root}: {e}") from None
    vae = vae.to(device).eval().requires_grad_(False)
    if device.type == "cpu":
        fast_channel_norms(vae.encoder)
        channels_last(vae.encoder)
    log(f"Wan: VAE on {device} ({vae_dtype}); experts load on first use from {root}")
    prior = WanPrior(
        config=config,
        spec=spec,
        root=root,
        vae=vae,
        embeddings=Embeddings(texts[:1], texts[1:]),
        levels=noise_levels(config.tau_weight, shift),
        num_train_timesteps=int(scheduler.get("num_train_timesteps", 1000)),
        patch_size=tuple(transformer_config.get("patch_size", (1, 2, 2))),
        device=device,
        dtype=dtype,
        experts=ExpertSlot(root, device, dtype, log),
        log=log,
    )
    if config.vae_gradient == "full":
        return prior
    linear = fit_linear_encoder(prior.encode_pixels, prior.vae.config.scale_factor_spatial, prior.temporal_factor,
                                config.background).to(device)
    log(f"Wan: VAE gradient linear (the encoder's averaged Jacobian; on held-out videos its pull-back "
        f"has cosine {linear.cosine:.2f} with the exact one, gain {linear.gain:.2f})")
    return dataclasses.replace(prior, linear=linear)
