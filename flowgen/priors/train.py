"""Train a small video prior of the Wan 2.2 I2V architecture on short clips (issue #9).

The model is the 14B prior's architecture at toy size, so that the distillation code path is
exercised end to end by a model that actually knows some motions:

- ``AutoencoderKLWan`` (causal 3D VAE) with two down-sampling stages by default: 4x in space and
  in time, so a 9-frame 32x32 clip becomes 3 latent frames of 8x8 (``vae_downsample`` 2: one
  stage, 5 latent frames of 16x16). Trained first, on single frames (``vae_image_steps``), then
  on windows of the clips (reconstruction + a small KL term); its latent mean and standard
  deviation per channel are measured on the clips and written to its config
  (``latents_mean``/``latents_std``), the normalisation every Wan user applies.
- A UMT5 text encoder built from a config (random, frozen) with a word-level tokenizer over the
  prompts' words (`flowgen.priors.train_text`): it only has to tell the prompts apart; the
  transformer learns what they mean.
- ``WanTransformer3DModel`` with the I2V A14B input layout: noisy latents, mask channels (1 on
  the first latent frame; one per frame of a latent frame, 4 with a 4x-in-time VAE) and the latents
  of [first frame, black frames...], 2 z + 4 channels (2 z + 2 with a 2x VAE), as
  `WanImageToVideoPipeline.prepare_latents` builds them. Trained by rectified flow: z_tau =
  (1 - tau) z + tau eps, target eps - z, tau from the same shifted density the scheduler samples
  with; the text is dropped (replaced by the empty prompt or Wan's negative prompt) at
  ``drop_text`` so classifier-free guidance works. An exponential moving average of its weights is
  what is saved.

`save_prior` writes a directory laid out like ``Wan-AI/Wan2.2-I2V-A14B-Diffusers`` through
``WanImageToVideoPipeline.save_pretrained``; the one trained transformer is saved as both
experts (``transformer`` and ``transformer_2``), so `flowgen.priors.wan.load_wan_prior` and
diffusers' pipeline load it exactly as they load the 14B model. How well a trained prior
reconstructs and samples is measured by `flowgen.priors.train_checks`.

Everything is a pure function of the clips, the config and its seed (one torch.Generator per
stage); progress goes to a callback.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from flowgen.priors.train_checks import changing_pixels, clip_tensor
from flowgen.priors.train_text import build_tokenizer, new_text_encoder, with_words
from flowgen.priors.wan.config import WAN_NEGATIVE_PROMPT
from flowgen.priors.wan.encode import encode_text

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

__all__ = ["TrainConfig", "TrainedPrior", "load_trained", "quick", "save_prior", "train_prior", "weighted_error"]

Progress = Callable[[str, int, int, float], None]
"""progress(stage, step, total, loss) after each step of a stage ("vae", "latents", "transformer")."""


_VAE_STAGES = {2: ([1, 2], [True]), 4: ([1, 2, 2], [True, True]), 8: ([1, 2, 4, 4], [False, True, True])}
"""AutoencoderKLWan's (dim_mult, temperal_downsample) per spatial factor (8: Wan 2.1's own)."""


@dataclass(frozen=True)
class TrainConfig:
    """Sizes and schedule of the small prior (defaults: the documented ~25 min CPU run)."""

    seed: int = 0
    """Seeds every random draw (initialisation, batches, noise)."""
    z_dim: int = 8
    """VAE latent channels."""
    vae_base_dim: int = 16
    """VAE width (channels of its first stage; x2 in the later ones)."""
    vae_downsample: int = 4
    """The VAE's spatial factor, 2, 4 or 8: one stage per halving, as Wan's layout. 4 and 8 halve
    time twice (4x, Wan's), 2 once (2x: 9 frames -> 5 latent frames). A 32 px clip's 8x8 latent
    at 4 keeps a ~20-pixel object poorly (docs/shipped-prior.md, session 22); 2 gives it 16x16."""
    vae_steps: int = 500
    """VAE optimisation steps on windows of ``vae_frames``."""
    vae_image_steps: int = 0
    """VAE steps on single frames (a clip's frame 0, 4 or 8) before ``vae_steps``: ~6x cheaper
    than a 9-frame window's, so many more of them teach the spatial layers (all but the time
    convolutions) - the first frame a model is conditioned on, and the small objects that a few
    hundred clip steps lose (docs/shipped-prior.md, session 23)."""
    vae_batch: int = 4
    """Clips per VAE step."""
    vae_frames: int = 5
    """Frames per VAE training window (1 + 4k; a window starts at a multiple of 4: the causal
    VAE encodes 1, then 4 at a time, so short windows teach it the whole clip at less cost)."""
    vae_lr: float = 1e-3
    """VAE Adam learning rate (cosine to 5% of it)."""
    kl_weight: float = 1e-5
    """Weight of the KL term against the mean squared reconstruction error."""
    vae_noise: float = 1.0
    """Scale of the posterior's noise in the VAE's training samples (1: a VAE's sample from its
    posterior; 0: the posterior's mean, a plain autoencoder)."""
    vae_motion_weight: float = 0.0
    """Extra weight, in the VAE's reconstruction error, of the pixels where something moves
    (`changing_pixels`): each counts 1 + this. A small object carried across the table covers a
    few percent of a 32 px frame, and an unweighted VAE blurs it into the table
    (docs/shipped-prior.md). 0: the plain mean squared error."""
    vae_first_frame_weight: float = 0.0
    """Extra weight, in the VAE's reconstruction error, of a clip's first frame (each of its
    pixels counts 1 + this): the frame an image-to-video model is conditioned on, which the
    causal VAE encodes alone and reconstructs worst (docs/shipped-prior.md, session 22). 0: the
    plain mean squared error. (No effect on the single-frame steps: one frame, one weight.)"""
    text_dim: int = 32
    """UMT5 width (d_model), the transformer's text_dim."""
    heads: int = 4
    """Transformer attention heads."""
    head_dim: int = 32
    """Channels per head."""
    layers: int = 4
    """Transformer blocks."""
    ffn_dim: int = 256
    """Transformer feed-forward width."""
    steps: int = 3500
    """Transformer optimisation steps."""
    batch: int = 16
    """Clips per transformer step."""
    lr: float = 5e-4
    """Transformer AdamW learning rate (linear warm-up over 200 steps, cosine to 5%)."""
    ema: float = 0.998
    """Decay of the moving average of the transformer weights that is saved."""
    drop_text: float = 0.15
    """Probability that a clip's prompt is replaced by an unconditional one (for guidance)."""
    flow_shift: float = 3.0
    """Shift of the noise-level density, for training and the saved scheduler."""
    max_sequence_length: int = 512
    """Text tokens (Wan's 512: the padding takes part in cross-attention, so train as used)."""
    boundary_ratio: float = 0.9
    """Written to model_index.json like the A14B model's (both experts are the same model)."""

    def __post_init__(self) -> None:
        if min(self.steps, self.vae_batch, self.batch) < 1 or min(self.vae_steps, self.vae_image_steps) < 0:
            raise ValueError("steps and batch sizes must be >= 1 (vae_steps and vae_image_steps >= 0: "
                             "0 and 0 keep a fine-tuned VAE)")
        if self.vae_noise < 0.0:
            raise ValueError(f"vae_noise must be >= 0, got {self.vae_noise}")
        if self.vae_downsample not in _VAE_STAGES:
            raise ValueError(f"vae_downsample must be one of {sorted(_VAE_STAGES)}, got {self.vae_downsample}")
        if self.vae_frames < 1 or (self.vae_frames - 1) % 4:
            raise ValueError(f"vae_frames must be 1 + 4k, got {self.vae_frames}")
        if self.vae_motion_weight < 0.0 or self.vae_first_frame_weight < 0.0:
            raise ValueError(f"vae_motion_weight and vae_first_frame_weight must be >= 0, got "
                             f"{self.vae_motion_weight}, {self.vae_first_frame_weight}")
        if not 0.0 <= self.drop_text < 1.0:
            raise ValueError(f"drop_text must be in [0, 1), got {self.drop_text}")


def quick(seed: int = 0) -> TrainConfig:
    """A few steps of a tiny model (tests): seconds, not minutes."""
    return TrainConfig(seed=seed, vae_base_dim=8, z_dim=4, vae_steps=6, vae_batch=2, heads=2, head_dim=8,
                       layers=1, ffn_dim=32, steps=30, batch=8, lr=2e-3, ema=0.9, max_sequence_length=16)


@dataclass
class TrainedPrior:
    """The trained parts, ready for `save_prior`.

    Attributes:
        vae, transformer (its weight average), text_encoder, tokenizer: the components.
        config: the training config.
        prompts: the prompts trained on.
        log: per stage, the loss curve (one value per step) and the seconds it took.
    """

    vae: AutoencoderKLWan
    transformer: WanTransformer3DModel
    text_encoder: torch.nn.Module
    tokenizer: object
    config: TrainConfig
    prompts: tuple[str, ...]
    log: dict


# --------------------------------------------------------------------------- components


def _vae(config: TrainConfig) -> AutoencoderKLWan:
    from diffusers import AutoencoderKLWan

    z = config.z_dim
    dim_mult, halve_time = _VAE_STAGES[config.vae_downsample]
    return AutoencoderKLWan(base_dim=config.vae_base_dim, z_dim=z, dim_mult=dim_mult, num_res_blocks=1,
                            temperal_downsample=halve_time, latents_mean=[0.0] * z, latents_std=[1.0] * z,
                            scale_factor_spatial=config.vae_downsample,
                            scale_factor_temporal=_temporal_factor(config))


def _temporal_factor(config: TrainConfig) -> int:
    """Frames per latent frame after the first: the VAE's time compression."""
    return 2 ** sum(_VAE_STAGES[config.vae_downsample][1])


def _transformer(config: TrainConfig) -> WanTransformer3DModel:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=config.heads,
                                 attention_head_dim=config.head_dim,
                                 in_channels=2 * config.z_dim + _temporal_factor(config),
                                 out_channels=config.z_dim, text_dim=config.text_dim, freq_dim=64,
                                 ffn_dim=config.ffn_dim, num_layers=config.layers, cross_attn_norm=True,
                                 qk_norm="rms_norm_across_heads", rope_max_seq_len=64)


def _cosine(step: int, total: int, warmup: int = 0) -> float:
    """Learning-rate factor: linear warm-up, then cosine from 1 to 0.05."""
    if step < warmup:
        return (step + 1) / warmup
    p = (step - warmup) / max(total - warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p))


def weighted_error(rec: Tensor, x: Tensor, weights: Tensor | None = None,
                   frame_weights: Tensor | None = None) -> Tensor:
    """Mean squared error of ``rec`` against ``x`` (B, 3, T, H, W), each pixel weighted by
    ``weights`` (B, H, W) and each frame by ``frame_weights`` (T,), normalised by the weights'
    mean: the plain mean with weights of one (or none)."""
    error, norm = (rec - x).square(), torch.ones(())
    if weights is not None:
        w = weights[:, None, None]
        error, norm = w * error, w.mean()
    if frame_weights is not None:  # independent of the pixels': the weights' mean is the product
        error, norm = frame_weights[:, None, None] * error, norm * frame_weights.mean()
    return error.mean() / norm


# --------------------------------------------------------------------------- stages


def _train_vae(videos: np.ndarray, config: TrainConfig, progress: Progress, deadline: float | None,
               init: AutoencoderKLWan | None = None) -> tuple[AutoencoderKLWan, list[float]]:
    """``config.vae_image_steps`` on single frames, then ``config.vae_steps`` on windows of
    ``config.vae_frames``; each phase draws and schedules as a run of its own (the same as two
    `train-prior` runs, the second ``--init`` the first)."""
    torch.manual_seed(config.seed)
    vae = (_vae(config) if init is None else copy.deepcopy(init).requires_grad_(True)).train()
    weights = None  # per clip, over all its frames (a window's static pixels may be weighted too)
    if config.vae_motion_weight:
        weights = torch.from_numpy(1.0 + config.vae_motion_weight * changing_pixels(videos)).float()
    total, losses = config.vae_image_steps + config.vae_steps, []
    for frames, steps in ((1, config.vae_image_steps), (config.vae_frames, config.vae_steps)):
        if steps and not (deadline is not None and time.monotonic() > deadline):
            done = len(losses)
            losses += _vae_phase(vae, videos, weights, frames, steps, config, deadline,
                                 lambda step, loss, done=done: progress("vae", done + step, total, loss))
    return vae.eval().requires_grad_(False), losses


def _vae_phase(vae: AutoencoderKLWan, videos: np.ndarray, weights: Tensor | None, frames: int, steps: int,
               config: TrainConfig, deadline: float | None, progress: Callable[[int, float], None]) -> list[float]:
    """``steps`` Adam steps on windows of ``frames`` frames starting at a multiple of 4 (the
    causal VAE's chunks): its own optimiser, cosine schedule and draws."""
    gen = torch.Generator().manual_seed(config.seed * 1000 + 1)
    opt = torch.optim.Adam(vae.parameters(), lr=config.vae_lr)
    first = torch.ones(frames)  # a window's frame weights when it starts at the clip's first frame
    first[0] += config.vae_first_frame_weight
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = config.vae_lr * _cosine(step, steps, 20)
        idx = torch.randint(len(videos), (config.vae_batch,), generator=gen).numpy()
        start = 4 * int(torch.randint((videos.shape[1] - frames) // 4 + 1, (1,), generator=gen))
        x = clip_tensor(videos[idx, start : start + frames])
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + config.vae_noise * posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        mse = (rec - x).square().mean()
        frame_weights = first if start == 0 and config.vae_first_frame_weight else None
        error = mse if weights is None and frame_weights is None else weighted_error(
            rec, x, None if weights is None else weights[idx], frame_weights)
        loss = error + config.kl_weight * posterior.kl().mean() / x[0].numel()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        losses.append(mse.item())
        progress(step + 1, losses[-1])
        if deadline is not None and time.monotonic() > deadline:
            break
    return losses


@torch.no_grad()
def _encode_all(vae: AutoencoderKLWan, videos: np.ndarray, progress: Progress, chunk: int = 16,
                measure: bool = True) -> tuple[Tensor, Tensor]:
    """Normalised latents of every clip and of its [first frame, black...] condition video;
    with ``measure``, first sets the VAE's latents_mean/std from the clips (else keeps them)."""
    raw, cond, total = [], [], len(videos)
    for i in range(0, total, chunk):
        x = clip_tensor(videos[i : i + chunk])
        raw.append(vae.encode(x).latent_dist.mode())
        first = torch.cat([x[:, :, :1], torch.zeros_like(x[:, :, 1:])], dim=2)
        cond.append(vae.encode(first).latent_dist.mode())
        progress("latents", min(i + chunk, total), total, 0.0)
    z, c = torch.cat(raw), torch.cat(cond)
    if measure:
        mean = z.mean(dim=(0, 2, 3, 4))
        std = z.std(dim=(0, 2, 3, 4)).clamp_min(1e-3)
        vae.register_to_config(latents_mean=[float(v) for v in mean], latents_std=[float(v) for v in std])
    mean, std = torch.tensor(vae.config.latents_mean), torch.tensor(vae.config.latents_std)
    view = (1, -1, 1, 1, 1)
    return (z - mean.view(view)) / std.view(view), (c - mean.view(view)) / std.view(view)


def _mask(n: int, latents: Tensor, temporal: int) -> Tensor:
    """(n, temporal, T_lat, h, w): the pipeline's mask channels, 1 on the first latent frame."""
    m = torch.zeros(n, temporal, *latents.shape[2:])
    m[:, :, 0] = 1.0
    return m


def _train_transformer(z0: Tensor, cond: Tensor, prompt_ids: np.ndarray, texts: Tensor, num_prompts: int,
                       config: TrainConfig, progress: Progress, deadline: float | None,
                       init: WanTransformer3DModel | None = None) -> tuple[WanTransformer3DModel, list[float]]:
    """``texts``: (num_prompts + 2, L, D) the prompts' embeddings, then the two unconditional ones;
    ``init``: weights to start from (fine-tuning) instead of a fresh model."""
    torch.manual_seed(config.seed + 7)
    model = (_transformer(config) if init is None else copy.deepcopy(init).requires_grad_(True)).train()
    average = copy.deepcopy(model).requires_grad_(False)
    temporal = model.config.in_channels - 2 * z0.shape[1]  # mask channels: the VAE's time factor
    gen = torch.Generator().manual_seed(config.seed * 1000 + 2)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    ids = torch.from_numpy(prompt_ids)
    losses = []
    for step in range(config.steps):
        for g in opt.param_groups:
            g["lr"] = config.lr * _cosine(step, config.steps, min(200, config.steps // 10 + 1))
        idx = torch.randint(len(z0), (config.batch,), generator=gen)
        z, c = z0[idx], cond[idx]
        u = torch.rand(config.batch, generator=gen)
        tau = config.flow_shift * u / (1 + (config.flow_shift - 1) * u)
        eps = torch.randn(z.shape, generator=gen)
        t = tau.view(-1, 1, 1, 1, 1)
        x = torch.cat([(1 - t) * z + t * eps, _mask(config.batch, z, temporal), c], dim=1)
        text = ids[idx].clone()
        drop = torch.rand(config.batch, generator=gen) < config.drop_text
        text[drop] = num_prompts + torch.randint(2, (int(drop.sum()),), generator=gen)
        v = model(hidden_states=x, timestep=tau * 1000.0, encoder_hidden_states=texts[text], return_dict=False)[0]
        loss = (v - (eps - z)).square().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(config.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for a, p in zip(average.parameters(), model.parameters(), strict=True):
                a.lerp_(p, 1 - decay)
        losses.append(loss.item())
        progress("transformer", step + 1, config.steps, losses[-1])
        if deadline is not None and time.monotonic() > deadline:
            break
    return average.eval(), losses


def train_prior(videos: np.ndarray, prompt_ids: np.ndarray, prompts: tuple[str, ...],
                config: TrainConfig | None = None, progress: Progress | None = None,
                minutes: float | None = None, init: TrainedPrior | None = None) -> TrainedPrior:
    """Train the VAE, then the transformer on the VAE's latents (see the module docstring).

    Args:
        videos: (N, T, H, W, 3) uint8 clips, T = 1 + 4k, H and W multiples of 16.
        prompt_ids: (N,) index into ``prompts`` of each clip's prompt.
        prompts: the prompt texts.
        config: sizes and schedule.
        progress: called after every step.
        minutes: a wall-clock cap: the VAE stage stops at 25% of it, the transformer stage at
            the end (the learning-rate schedules stay those of the configured steps). The run is
            a pure function of the seed only when the cap is not reached; ``log`` records the
            steps done.
        init: fine-tune this prior (`load_trained`): its tokenizer and text encoder are kept,
            its VAE is trained ``config.vae_image_steps`` + ``config.vae_steps`` more steps (0:
            kept with its normalisation; else the normalisation is measured again) and its
            transformer ``config.steps`` more;
            ``prompts`` must start with the ones it was trained on; the rest are new motions
            (the tokenizer and text encoder gain their words, `train_text.with_words`).
    """
    config = config or TrainConfig()
    progress = progress or (lambda stage, step, total, loss: None)
    assert videos.ndim == 5 and videos.shape[-1] == 3 and videos.dtype == np.uint8, (videos.shape, videos.dtype)
    assert (videos.shape[1] - 1) % 4 == 0 and videos.shape[1] >= config.vae_frames and videos.shape[2] % 16 == 0 and videos.shape[3] % 16 == 0, videos.shape
    assert prompt_ids.shape == (len(videos),) and prompt_ids.max() < len(prompts), prompt_ids.shape
    log: dict = {"clips": {"frames": int(videos.shape[1]), "height": int(videos.shape[2]), "width": int(videos.shape[3])}}
    start = time.perf_counter()
    now = time.monotonic()
    vae_deadline = None if minutes is None else now + 0.25 * 60.0 * minutes
    deadline = None if minutes is None else now + 60.0 * minutes
    unconditional = ["", WAN_NEGATIVE_PROMPT]
    if init is None and config.vae_steps + config.vae_image_steps < 1:
        raise ValueError("a new prior needs vae_steps or vae_image_steps >= 1 (0 only keeps the VAE of `init`)")
    if init is None:
        vae, vae_losses = _train_vae(videos, config, progress, vae_deadline)
        tokenizer = build_tokenizer(list(prompts) + unconditional)
        torch.manual_seed(config.seed + 3)
        text_encoder = new_text_encoder(config.text_dim, len(tokenizer))
    else:
        if tuple(prompts[: len(init.prompts)]) != tuple(init.prompts):
            raise ValueError(f"fine-tuning needs the prompts the prior knows first, {init.prompts}, got {prompts}")
        vae, vae_losses = init.vae, []
        tokenizer, text_encoder = with_words(init.tokenizer, init.text_encoder, prompts[len(init.prompts):],
                                             config.seed)
        if config.vae_steps + config.vae_image_steps > 0:
            vae, vae_losses = _train_vae(videos, config, progress, vae_deadline, init.vae)
        log["init"] = init.log
    log["vae"] = {"loss": vae_losses, "seconds": time.perf_counter() - start}
    if config.vae_image_steps:  # the single-frame steps done (the first losses; fewer at the deadline)
        log["vae"]["image_steps"] = min(len(vae_losses), config.vae_image_steps)
    start = time.perf_counter()
    z0, cond = _encode_all(vae, videos, progress, measure=bool(vae_losses))
    log["latents"] = {"seconds": time.perf_counter() - start, "shape": list(z0.shape)}

    texts = encode_text(tokenizer, text_encoder, list(prompts) + unconditional, config.max_sequence_length,
                        torch.device("cpu"))
    start = time.perf_counter()
    transformer, losses = _train_transformer(z0, cond, prompt_ids, texts, len(prompts), config, progress,
                                              deadline, None if init is None else init.transformer)
    log["transformer"] = {"loss": losses, "seconds": time.perf_counter() - start}
    return TrainedPrior(vae, transformer, text_encoder, tokenizer, config, tuple(prompts), log)


def save_prior(trained: TrainedPrior, out: str | Path) -> Path:
    """Write ``trained`` as a Wan 2.2 I2V A14B-style diffusers directory (atomically) and
    return it: model_index.json, transformer/, transformer_2/ (the same weights), vae/,
    text_encoder/, tokenizer/, scheduler/ (UniPC flow matching with the training shift), plus
    train_log.json (config, prompts, loss curves)."""
    import json

    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline

    from chord_robot.atomic import atomic_path

    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        flow_shift=trained.config.flow_shift)
    pipe = WanImageToVideoPipeline(tokenizer=trained.tokenizer, text_encoder=trained.text_encoder,
                                   vae=trained.vae, scheduler=scheduler, transformer=trained.transformer,
                                   transformer_2=copy.deepcopy(trained.transformer),
                                   boundary_ratio=trained.config.boundary_ratio)
    out = Path(out)
    with atomic_path(out) as tmp:
        pipe.save_pretrained(tmp)
        summary = {"config": asdict(trained.config), "prompts": list(trained.prompts), "log": trained.log}
        (tmp / "train_log.json").write_text(json.dumps(summary))
    return out


def load_trained(model_dir: str | Path) -> TrainedPrior:
    """A prior written by `save_prior`, back as a `TrainedPrior` (to fine-tune it)."""
    import json

    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    root = Path(model_dir)
    summary = json.loads((root / "train_log.json").read_text())
    return TrainedPrior(AutoencoderKLWan.from_pretrained(root / "vae").eval().requires_grad_(False),
                        WanTransformer3DModel.from_pretrained(root / "transformer"),
                        UMT5EncoderModel.from_pretrained(root / "text_encoder").eval(),
                        AutoTokenizer.from_pretrained(root / "tokenizer"), TrainConfig(**summary["config"]),
                        tuple(summary["prompts"]), summary["log"])
