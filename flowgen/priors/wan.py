"""The Wan 2.2 prior: rectified-flow score distillation from diffusers components (issue #7).

Components, not the pipeline's sampling loop (STYLE 5): ``AutoencoderKLWan`` (encoded with
gradient, chunk by chunk with gradient checkpointing), the UMT5 text encoder (the prompt and the
negative prompt embedded once at load, then the encoder is freed) and the transformers.

- **Wan 2.2 I2V A14B** (``i2v-a14b``, the paper's prior): two experts, ``transformer`` for
  tau >= boundary_ratio (0.9) and ``transformer_2`` below. The image condition is what
  `WanImageToVideoPipeline.prepare_latents` builds: the VAE latents of [first frame, black
  frames...] behind 4 mask channels (1 on the first latent frame), 16 + 4 + 16 = 36 channels.
- **Wan 2.2 TI2V 5B** (``ti2v-5b``, the smaller prior): one transformer, the 48-channel VAE
  (16x spatial), and the pipeline's ``expand_timesteps`` conditioning: the first latent frame
  *is* the first frame's latents, with timestep 0 on its tokens (per-token timesteps); the SDS
  gradient there is zero.

Per iteration (`wan_sds_loss`): tau and the guidance scale come from the schedule (pure
functions of the iteration, `flowgen.priors.schedule`), the expert from tau; each of the V views
is encoded (graph kept), noised, its guided velocity taken without gradient, and the RF-SDS
gradient (`flowgen.priors.sds`) pulled back through the VAE into pixels at once, view by view, so
only one view's VAE graph is ever alive. The returned scalar's gradient with respect to the
rendered video is exactly that pull-back (its value is 0.5 ||g||^2 / V, for the log).

Because tau only decreases, the experts switch once: only the active expert is held on the
device; the other stays on disk and is loaded when tau crosses the boundary (logged). See
docs/wan-memory.md for what is resident when.

Weights come from ``--model DIR`` (a diffusers directory like Wan-AI/Wan2.2-I2V-A14B-Diffusers)
or the local Hugging Face cache; nothing is downloaded. Missing weights raise
`chord_robot.errors.WeightsError` (exit 2) saying where they are expected.

diffusers and transformers are imported inside the functions that need them, so importing
this module (for `WanConfig` and its presets) is cheap.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from chord_robot.errors import InputError, WeightsError
from flowgen.priors.cameras import CameraSampling
from flowgen.priors.schedule import (
    NoiseLevels,
    TauWeight,
    guidance_at,
    noise_levels,
    switch_iteration,
    tau_at,
)
from flowgen.priors.sds import (
    Embeddings,
    VelocityModel,
    guided_velocity,
    rf_sds_gradient,
    surrogate_loss,
)

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

__all__ = [
    "PRESETS",
    "TAU_SCHEDULES",
    "UNIFORM_TAU_RANGE",
    "VARIANTS",
    "WAN_NEGATIVE_PROMPT",
    "Condition",
    "ExpertSlot",
    "ModelShape",
    "SdsResult",
    "Variant",
    "WanConfig",
    "WanPrior",
    "WanVariant",
    "encode_text",
    "encode_video",
    "i2v_a14b",
    "load_wan_prior",
    "model_shape",
    "resolve_model_dir",
    "ti2v_5b",
    "wan_sds_loss",
]

Variant = Literal["i2v-a14b", "ti2v-5b"]
Log = Callable[[str], None]

WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
"""Wan 2.2's default negative prompt (its ``sample_neg_prompt``; it names "static" and "still
picture", which is what SDS should push motion away from)."""


@dataclass(frozen=True)
class WanVariant:
    """What distinguishes the two Wan 2.2 models this prior drives.

    Attributes:
        name: the ``variant`` key.
        label: human name for messages.
        repo_id: the Hugging Face repository of its diffusers weights.
        experts: transformer subfolders, the high-noise one first.
        expand_timesteps: TI2V-style conditioning (first latent frame replaced, per-token
            timesteps) instead of mask + latent channels.
        fps: the frame rate the model generates at (the flow's frame rate).
    """

    name: str
    label: str
    repo_id: str
    experts: tuple[str, ...]
    expand_timesteps: bool
    fps: float


VARIANTS: dict[str, WanVariant] = {
    "i2v-a14b": WanVariant("i2v-a14b", "Wan 2.2 I2V A14B", "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
                           ("transformer", "transformer_2"), False, 16.0),
    "ti2v-5b": WanVariant("ti2v-5b", "Wan 2.2 TI2V 5B", "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
                          ("transformer",), True, 24.0),
}
"""Variant name -> its description (the registry)."""

_SHARED_PARTS = ("vae", "text_encoder", "tokenizer", "scheduler")


TAU_SCHEDULES = ("annealed", "uniform")
"""Ways of drawing the noise level per iteration (`WanConfig.tau_schedule`)."""
UNIFORM_TAU_RANGE = (0.02, 0.98)
"""The interval of the ``uniform`` tau schedule."""


@dataclass(frozen=True)
class WanConfig:
    """Settings of the Wan SDS prior (paper §3.2, supp. §A.1)."""

    variant: Variant = "i2v-a14b"
    """Which Wan 2.2 model: "i2v-a14b" (paper) or "ti2v-5b" (smaller)."""
    negative_prompt: str = WAN_NEGATIVE_PROMPT
    """The prompt classifier-free guidance pushes away from."""
    guidance_start: float = 25.0
    """Guidance scale at the first iteration (paper: 25)."""
    guidance_end: float = 12.0
    """Guidance scale at the last iteration, linear in between (paper: 12)."""
    boundary_ratio: float | None = 0.9
    """tau at and above which the high-noise expert runs (A14B: 0.9); None for one expert."""
    tau_weight: TauWeight = "shifted"
    """W(tau), the density the schedule spreads the noise levels by (see schedule.py)."""
    tau_schedule: str = "annealed"
    """How tau is drawn per iteration: "annealed" (the paper: decreasing through W(tau)'s
    quantiles, `schedule.tau_at`) or "uniform" (the paper's ablation: a seeded uniform draw in
    [0.02, 0.98] each iteration, a pure function of the iteration)."""
    shift: float | None = None
    """Flow shift of the ``shifted`` density; None reads the model's scheduler (5.0 for both)."""
    num_views: int = 4
    """V, cameras per iteration (paper: batch 4)."""
    cameras: CameraSampling = field(default_factory=CameraSampling)
    """Ranges of the per-iteration cameras."""
    max_sequence_length: int = 512
    """Text tokens embedded (Wan: 512; shorter prompts are zero-padded)."""
    vae_checkpointing: bool = True
    """Recompute the VAE encoder chunk by chunk in the backward (needed at 832x464x41)."""
    batch_guidance: bool = True
    """Run the conditional and unconditional branches as one batch of 2."""
    grad_scale: float = 1.0
    """Multiplies the SDS gradient (the regulariser weights are tuned for 1)."""
    vae_float32: bool = False
    """Keep the VAE in float32 even when the rest is bf16."""
    background: tuple[float, float, float] | None = None
    """RGB in [0, 1] composited behind the rendered scene where nothing is (alpha < 1); None
    keeps the renderer's black. A model trained on clips with a plain backdrop (the sim's
    TinyRenderer clears to white) should see the same behind the renders."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Wan variant {self.variant!r}; one of {', '.join(VARIANTS)}")
        if self.num_views < 1 or self.max_sequence_length < 1:
            raise ValueError("num_views and max_sequence_length must be >= 1")
        if self.tau_schedule not in TAU_SCHEDULES:
            raise ValueError(f"unknown tau schedule {self.tau_schedule!r}; one of {', '.join(TAU_SCHEDULES)}")
        if self.boundary_ratio is not None and not 0.0 < self.boundary_ratio <= 1.0:
            raise ValueError(f"boundary_ratio must be in (0, 1], got {self.boundary_ratio}")
        if len(VARIANTS[self.variant].experts) > 1 and self.boundary_ratio is None:
            raise ValueError(f"{self.variant} has two experts: boundary_ratio is required")


def i2v_a14b() -> WanConfig:
    """The paper's prior: Wan 2.2 I2V A14B, guidance 25 -> 12, boundary 0.9, 4 views."""
    return WanConfig()


def ti2v_5b() -> WanConfig:
    """The smaller prior: Wan 2.2 TI2V 5B (one expert), the paper's guidance schedule."""
    return WanConfig(variant="ti2v-5b", boundary_ratio=None)


PRESETS = {"i2v-a14b": i2v_a14b, "ti2v-5b": ti2v_5b}
"""Variant name -> function returning its WanConfig."""


# ---------------------------------------------------------------------------------------------
# Weights on disk


def _cache_root(cache_dir: str | Path | None) -> Path:
    from huggingface_hub import constants

    return Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)


def _missing_parts(root: Path, spec: WanVariant) -> list[str]:
    missing = [] if (root / "model_index.json").is_file() else ["model_index.json"]
    for part in _SHARED_PARTS + spec.experts:
        folder = root / part
        if part == "tokenizer":
            ok = folder.is_dir() and (any(folder.glob("tokenizer*")) or (folder / "spiece.model").is_file())
        elif part == "scheduler":
            ok = (folder / "scheduler_config.json").is_file()
        else:
            ok = (folder / "config.json").is_file() and any(
                p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json") for p in folder.iterdir())
        if not ok:
            missing.append(f"{part}/")
    return missing


def resolve_model_dir(model_dir: str | Path | None, variant: Variant,
                      cache_dir: str | Path | None = None) -> Path:
    """The diffusers directory of ``variant``'s weights, or WeightsError saying where to put them.

    Args:
        model_dir: a directory laid out like the Hugging Face repository (model_index.json,
            transformer/, [transformer_2/,] vae/, text_encoder/, tokenizer/, scheduler/), or
            None to look in the local Hugging Face cache (never downloads).
        variant: "i2v-a14b" or "ti2v-5b".
        cache_dir: the Hugging Face hub cache (default: HF_HUB_CACHE, ~/.cache/huggingface/hub).
    """
    spec = VARIANTS[variant]
    layout = ", ".join(["model_index.json", *(f"{p}/" for p in spec.experts + _SHARED_PARTS)])
    fetch = f"download them with `hf download {spec.repo_id} --local-dir DIR` and pass --model DIR"
    if model_dir is None:
        from huggingface_hub import snapshot_download

        cache = _cache_root(cache_dir)
        expected = cache / ("models--" + spec.repo_id.replace("/", "--"))
        try:
            root = Path(snapshot_download(spec.repo_id, cache_dir=cache, local_files_only=True))
        except (OSError, ValueError):  # LocalEntryNotFoundError (an OSError): not in the cache
            raise WeightsError(f"{spec.label} weights are not in the Hugging Face cache (expected "
                               f"{expected}); {fetch}") from None
    else:
        root = Path(model_dir).expanduser()
        if not root.is_dir():
            raise WeightsError(f"{spec.label} weights not found: {root} is not a directory; "
                               f"expected a diffusers directory with {layout}; {fetch}")
    missing = _missing_parts(root, spec)
    if missing:
        raise WeightsError(f"{spec.label} weights in {root} are incomplete: missing "
                           f"{', '.join(missing)} (expected {layout}); {fetch}")
    return root


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"cannot read {path}: {e}") from None


@dataclass(frozen=True)
class ModelShape:
    """What a Wan model directory says about the videos it takes, read from its JSON configs
    (no weights loaded): enough to check a run's size and estimate its cost before loading.

    Attributes:
        spec: the variant.
        temporal_factor: frames per latent frame after the first (T = 1 + this * k).
        spatial_multiple: H and W must be multiples of this (VAE factor x transformer patch).
        transformer: the first expert's config.json.
    """

    spec: WanVariant
    temporal_factor: int
    spatial_multiple: int
    transformer: dict

    def check(self, num_frames: int, height: int, width: int) -> None:
        """InputError unless a (T, H, W) video fits the model, naming sizes that do."""
        k, m = self.temporal_factor, self.spatial_multiple
        if num_frames < 1 or (num_frames - 1) % k:
            near = max(1, round((num_frames - 1) / k)) * k + 1
            raise InputError(f"{self.spec.label} needs 1 + {k}k frames (e.g. {near}, 21, 41), got "
                             f"{num_frames}; pass --frames {near}")
        if height % m or width % m or height < m or width < m:
            fit = f"{max(m, round(width / m) * m)}x{max(m, round(height / m) * m)}"
            raise InputError(f"{self.spec.label} needs width and height that are multiples of {m} "
                             f"(e.g. {fit} or 832x{464 if m == 16 else 480}), got {width}x{height}; "
                             f"pass --size {fit}")

    def fit_size(self, max_side: int, aspect: float = 464 / 832) -> tuple[int, int]:
        """(width, height) with the long side about ``max_side`` and height/width about
        ``aspect``, both rounded to the model's multiple (832x464 for A14B at 832)."""
        m = self.spatial_multiple
        return max(m, round(max_side / m) * m), max(m, round(max_side * aspect / m) * m)

    def sds_flops(self, num_frames: int, height: int, width: int, text_tokens: int) -> float:
        """Floating-point operations of the guided transformer for one view (both guidance
        branches, matrix products only): a lower bound on an SDS step's cost, which adds the
        VAE encode with gradient and the render."""
        c = self.transformer
        _, ph, pw = c.get("patch_size", (1, 2, 2))
        d = int(c["num_attention_heads"]) * int(c["attention_head_dim"])
        ffn, layers = int(c["ffn_dim"]), int(c["num_layers"])
        vae_factor = self.spatial_multiple // pw
        n = (1 + (num_frames - 1) // self.temporal_factor) * (height // vae_factor // ph) * (width // vae_factor // pw)
        per_token = 2 * (4 * d * d + 2 * d * d + 2 * d * ffn)  # self-attn qkvo, cross-attn qo, FFN
        attention = 4 * n * n * d + 4 * n * text_tokens * d + 2 * 2 * text_tokens * d * d
        return 2.0 * layers * (n * per_token + attention)


def model_shape(root: str | Path, variant: Variant) -> ModelShape:
    """The `ModelShape` of the weights in ``root`` (a directory `resolve_model_dir` accepted)."""
    spec = VARIANTS[variant]
    root = Path(root)
    vae = _read_json(root / "vae" / "config.json")
    transformer = _read_json(root / spec.experts[0] / "config.json")
    patch = transformer.get("patch_size", (1, 2, 2))
    default_spatial = 16 if spec.expand_timesteps else 8
    return ModelShape(spec, int(vae.get("scale_factor_temporal", 4)),
                      int(vae.get("scale_factor_spatial", default_spatial)) * int(patch[1]), transformer)


# ---------------------------------------------------------------------------------------------
# Encoders


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


# ---------------------------------------------------------------------------------------------
# The prior


@dataclass(frozen=True)
class Condition:
    """The image condition of one view, built from its first rendered frame.

    Attributes:
        latents: I2V A14B: (1, 4 + C, F, h, w) mask channels then the latents of
            [first frame, black frames...]; TI2V 5B: (1, C, 1, h, w) the first frame's latents.
        mask: TI2V 5B: (1, 1, F, h, w), 0 on the first latent frame (kept clean, timestep 0)
            and 1 elsewhere; None for I2V A14B.
    """

    latents: Tensor
    mask: Tensor | None


@dataclass(frozen=True)
class SdsResult:
    """One iteration of the prior.

    Attributes:
        loss: scalar; its gradient with respect to the video is the RF-SDS gradient pulled
            back through the VAE (times grad_scale / V); its value is grad_scale / V * sum over
            views of 0.5 ||g||^2 (g the latent gradient).
        tau: the noise level.
        guidance: the guidance scale.
        expert: the transformer subfolder that ran.
        grad_rms: root mean square of the latent gradient g (before scaling).
    """

    loss: Tensor
    tau: float
    guidance: float
    expert: str
    grad_rms: float


class ExpertSlot:
    """The transformer resident on the device: at most one expert at a time.

    The inactive expert is not kept anywhere: it is loaded from disk when first needed and
    the previous one is released first (device memory freed). With the annealed schedule
    that happens once per run (the switch from high- to low-noise expert).

    Attributes:
        root: the model directory.
        device, dtype: where and how experts are loaded.
        active: the resident expert's subfolder, or None.
        loads: every expert loaded, in order (tests and logs).
    """

    def __init__(self, root: Path, device: torch.device, dtype: torch.dtype, log: Log) -> None:
        self.root, self.device, self.dtype, self.log = root, device, dtype, log
        self.active: str | None = None
        self.module: WanTransformer3DModel | None = None
        self.loads: list[str] = []

    def get(self, name: str, reason: str = "") -> WanTransformer3DModel:
        """The expert ``name``, loading it (and releasing the resident one) if needed."""
        if name == self.active and self.module is not None:
            return self.module
        previous = self.active
        self.release()
        from diffusers import WanTransformer3DModel

        try:  # on CUDA straight to the device, without a host-RAM copy of the 27 GiB
            module = WanTransformer3DModel.from_pretrained(self.root, subfolder=name, torch_dtype=self.dtype,
                                                           **_device_map(self.device))
        except (OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"cannot load the Wan expert {self.root / name}: {e}") from None
        if self.device.type != "cuda":
            module = module.to(self.device)
        self.module = module.eval().requires_grad_(False)
        self.active = name
        self.loads.append(name)
        gone = f"; released {previous}" if previous else ""
        self.log(f"Wan: expert {name} loaded on {self.device}{gone} (only the active expert is "
                 f"resident){reason}")
        return self.module

    def release(self) -> None:
        """Drop the resident expert and free its device memory."""
        if self.module is None:
            return
        self.module = None
        self.active = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


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
        """InputError unless a (T, H, W) video fits the model, naming sizes that do."""
        ModelShape(self.spec, self.temporal_factor, self.spatial_multiple, {}).check(num_frames, height, width)

    # -- schedule -----------------------------------------------------------------------------
    def tau(self, it: int, total: int) -> float:
        """Noise level of iteration ``it`` of ``total``: annealed (schedule.tau_at) or, for the
        ``uniform`` schedule, a uniform draw in UNIFORM_TAU_RANGE seeded by ``it``."""
        if self.config.tau_schedule == "uniform":
            low, high = UNIFORM_TAU_RANGE
            return float(np.random.default_rng([20261122, it]).uniform(low, high))
        return tau_at(self.levels, it, total)

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
            text = (f"{self.spec.label}: tau uniform in [{low:g}, {high:g}] (ablation), guidance "
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
        assert first_frame.ndim == 3 and first_frame.shape[-1] == 3, first_frame.shape
        h, w = first_frame.shape[:2]
        image = (first_frame.detach().to(self.device, torch.float32) * 2.0 - 1.0).permute(2, 0, 1)
        image = image[None, :, None]  # (1, 3, 1, H, W)
        with torch.no_grad():
            if self.spec.expand_timesteps:
                latents = encode_video(self.vae, image.to(self.vae.dtype), checkpoint=False).float()
                f = (num_frames - 1) // self.temporal_factor + 1
                mask = torch.ones(1, 1, f, *latents.shape[-2:], device=self.device)
                mask[:, :, 0] = 0
                return Condition(latents, mask)
            video = torch.cat([image, image.new_zeros(1, 3, num_frames - 1, h, w)], dim=2)
            latents = encode_video(self.vae, video.to(self.vae.dtype), checkpoint=False).float()
            mask = torch.zeros(1, self.temporal_factor, *latents.shape[2:], device=self.device)
            mask[:, :, 0] = 1
            return Condition(torch.cat([mask, latents], dim=1), None)

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
        """Guided velocity v_u + s (v_c - v_u) at (1, C, F, h, w) ``z_tau``, with the expert of
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
        weight = self.config.grad_scale / views
        grads, value, sq, count = [], 0.0, 0.0, 0
        for v in range(views):
            condition = self.condition(first[v], frames)
            leaf = video[v].detach().to(self.device, torch.float32).requires_grad_(True)
            with torch.enable_grad():
                pixels = (leaf * 2.0 - 1.0).permute(3, 0, 1, 2)[None].to(self.vae.dtype)
                z = encode_video(self.vae, pixels, self.config.vae_checkpointing)
                g = rf_sds_gradient(z, tau, self.embeddings, self.velocity_model(expert, condition),
                                    scale, self._noise(z.shape, seed, it, first_view + v),
                                    self.config.batch_guidance)
                if condition.mask is not None:
                    g = g * condition.mask
                (gx,) = torch.autograd.grad(z, leaf, (weight * g).to(z.dtype))
            grads.append(gx.to(video.device, video.dtype))
            value += weight * 0.5 * float(g.square().sum())
            sq, count = sq + float(g.square().sum()), count + g.numel()
            del z, g, gx, pixels, leaf
        loss = surrogate_loss(video, torch.stack(grads), value)
        return SdsResult(loss, tau, scale, name, (sq / max(count, 1)) ** 0.5)

    def release(self) -> None:
        """Free the device memory the prior holds (expert and VAE)."""
        self.experts.release()
        self.vae.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _device_map(device: torch.device) -> dict:
    """from_pretrained arguments that load weights directly onto a CUDA device."""
    return {"device_map": str(device)} if device.type == "cuda" else {}


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    device = _default_device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)

    index = _read_json(root / "model_index.json")
    if bool(index.get("expand_timesteps") or False) != spec.expand_timesteps:
        raise WeightsError(f"{root} does not hold {spec.label} (its model_index.json has "
                           f"expand_timesteps={index.get('expand_timesteps')}); pass the right --model")
    if index.get("boundary_ratio") not in (None, config.boundary_ratio):
        log(f"Wan: note: {root} suggests boundary_ratio {index['boundary_ratio']}, using "
            f"{config.boundary_ratio}")
    transformer_config = _read_json(root / spec.experts[0] / "config.json")
    vae_config = _read_json(root / "vae" / "config.json")
    z_dim = vae_config.get("z_dim", 16)
    want = z_dim if spec.expand_timesteps else 2 * z_dim + 4
    if transformer_config.get("in_channels") != want:
        raise WeightsError(f"{root} does not hold {spec.label}: its transformer takes "
                           f"{transformer_config.get('in_channels')} channels, expected {want}")
    if transformer_config.get("image_dim") is not None:
        raise WeightsError(f"{root} holds a Wan 2.1 image-to-video model (it needs a CLIP image "
                           f"encoder); this prior drives {spec.label} ({spec.repo_id})")
    scheduler = _read_json(root / "scheduler" / "scheduler_config.json")
    shift = config.shift or float(scheduler.get("flow_shift", scheduler.get("shift", 5.0)))

    try:
        tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
        text_encoder = UMT5EncoderModel.from_pretrained(root / "text_encoder", dtype=dtype,
                                                        **_device_map(device))
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
    log(f"Wan: VAE on {device} ({vae_dtype}); experts load on first use from {root}")
    return WanPrior(
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
