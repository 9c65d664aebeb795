"""Settings of the Wan 2.2 prior: the two models it drives (`VARIANTS`), `WanConfig` and its
presets.

Importing this module loads neither torch nor diffusers, so the flow configuration
(`flowgen.config`) and the CLI can name a variant without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from flowgen.priors.cameras import CameraSampling
from flowgen.priors.tau import TauWeight

__all__ = [
    "PRESETS",
    "SDS_SPACES",
    "TAU_SCHEDULES",
    "UNIFORM_TAU_RANGE",
    "VAE_GRADIENTS",
    "VARIANTS",
    "WAN_NEGATIVE_PROMPT",
    "SdsSpace",
    "TauSchedule",
    "VaeGradient",
    "Variant",
    "WanConfig",
    "WanVariant",
    "i2v_a14b",
    "ti2v_5b",
]

Variant = Literal["i2v-a14b", "ti2v-5b"]
"""Which Wan 2.2 model (the keys of `VARIANTS`)."""
TauSchedule = Literal["annealed", "uniform"]
"""How the noise level is drawn per iteration (`WanConfig.tau_schedule`)."""
VaeGradient = Literal["full", "linear"]
"""How the SDS gradient reaches the pixels (`WanConfig.vae_gradient`)."""
SdsSpace = Literal["latent", "image"]
"""Where the SDS residual is taken (`WanConfig.sds_space`)."""

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

    name: Variant
    label: str
    repo_id: str
    experts: tuple[str, ...]
    expand_timesteps: bool
    fps: float


VARIANTS: dict[Variant, WanVariant] = {
    "i2v-a14b": WanVariant("i2v-a14b", "Wan 2.2 I2V A14B", "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
                           ("transformer", "transformer_2"), False, 16.0),
    "ti2v-5b": WanVariant("ti2v-5b", "Wan 2.2 TI2V 5B", "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
                          ("transformer",), True, 24.0),
}
"""Variant name -> its description (the registry)."""

TAU_SCHEDULES: tuple[TauSchedule, ...] = get_args(TauSchedule)
"""Ways of drawing the noise level per iteration (`WanConfig.tau_schedule`)."""
VAE_GRADIENTS: tuple[VaeGradient, ...] = get_args(VaeGradient)
"""Ways of pulling the SDS gradient back into pixels (`WanConfig.vae_gradient`)."""
SDS_SPACES: tuple[SdsSpace, ...] = get_args(SdsSpace)
"""Where the SDS residual can be taken (`WanConfig.sds_space`)."""
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
    """W(tau), the density the schedule spreads the noise levels by (see `flowgen.priors.tau`)."""
    tau_schedule: TauSchedule = "annealed"
    """How tau is drawn per iteration: "annealed" (the paper: decreasing through W(tau)'s
    quantiles, `tau.tau_at`) or "uniform" (the paper's ablation: a seeded uniform draw in
    [0.02, 0.98] each iteration, a pure function of the iteration, its gradient weighted by
    W(tau), `WanPrior.tau_weight`)."""
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
    encode_together: bool = False
    """I2V A14B: encode each view's condition video (its first frame, then black frames) with
    its render as one batch of two, the condition without gradient. On a CPU a batch of two
    takes oneDNN's 3D convolutions where a batch of one takes the slow reference ones (the VAE's
    share of an iteration 2.5x faster at 32x32, docs/performance.md); at the paper's size it
    would double the VAE's activations, so it is off there."""
    batch_guidance: bool = True
    """Run the conditional and unconditional branches as one batch of 2."""
    grad_scale: float = 1.0
    """Multiplies the SDS gradient (the regulariser weights are tuned for 1)."""
    vae_float32: bool = False
    """Keep the VAE in float32 even when the rest is bf16."""
    vae_gradient: VaeGradient = "full"
    """How the latent SDS gradient reaches the pixels: "full" (backpropagated through the VAE
    encoder, the paper) or "linear" (the paper's future work: the encoder's averaged Jacobian,
    fitted at load, `flowgen.priors.wan.linear_vae`; no encoder backward)."""
    background: tuple[float, float, float] | None = None
    """RGB in [0, 1] composited behind the rendered scene where nothing is (alpha < 1); None
    keeps the renderer's black. A model trained on clips with a plain backdrop (the sim's
    TinyRenderer clears to white) should see the same behind the renders."""
    sds_space: SdsSpace = "latent"
    """Where the residual of a step is taken. "latent" (the paper): the RF-SDS gradient
    v_hat - (eps - z) on the latents, pulled back through the VAE encoder. "image": the model's
    denoised estimate z_hat = z_tau - tau v_hat, decoded by the VAE, is a target for the render
    in pixels, both blurred by a Gaussian that narrows over the run (``image_blur``); the
    gradient on the render is grad_scale tau_weight / V B^T B (render - decoded), B the blur.
    The blur lets the pull of a target reach an object whose render does not overlap where the
    target draws it (a small object carried far: docs/comparison/README.md, session 30); the
    encoder's backward is not needed (``vae_gradient`` does not apply). The target carries the
    VAE's reconstruction error (with g = 0 it is the render encoded and decoded), and the
    residual is about tau times the latent one through the decoder, so a grad_scale does not
    mean the same in the two spaces. Measured with the I2V layout only."""
    image_blur: tuple[float, float] = (0.1875, 0.03125)
    """``sds_space`` "image": the blur's standard deviation at the first and the last motion
    iteration as fractions of the render's width (6 and 1 px at 32 px), geometric in between
    (linear when either is 0; 0 at both: no blur)."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Wan variant {self.variant!r}; one of {', '.join(VARIANTS)}")
        if self.num_views < 1 or self.max_sequence_length < 1:
            raise ValueError("num_views and max_sequence_length must be >= 1")
        if self.vae_gradient not in VAE_GRADIENTS:
            raise ValueError(f"unknown VAE gradient {self.vae_gradient!r}; one of {', '.join(VAE_GRADIENTS)}")
        if self.sds_space not in SDS_SPACES:
            raise ValueError(f"unknown SDS space {self.sds_space!r}; one of {', '.join(SDS_SPACES)}")
        if len(self.image_blur) != 2 or min(self.image_blur) < 0.0:
            raise ValueError(f"image_blur must be two fractions >= 0, got {self.image_blur}")
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
