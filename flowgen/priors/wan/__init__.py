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

Modules, in reading order:

- `config`: the variants (`VARIANTS`), `WanConfig` and its presets; no torch.
- `weights`: where the weights are (`resolve_model_dir`), what sizes they take (`ModelShape`,
  from their JSON configs), the one expert resident on the device (`ExpertSlot`).
- `encode`: prompts through UMT5, rendered videos through the VAE with gradient.
- `linear_vae`: the encoder's averaged Jacobian, the cheaper gradient path (``vae_gradient``
  "linear": no encoder backward).
- `prior`: `load_wan_prior`, `WanPrior` and the per-iteration RF-SDS step (`wan_sds_loss`).

diffusers and transformers are imported inside the functions that need them, so importing
this package (for `WanConfig` and its presets) does not load them.
"""

from flowgen.priors.wan.config import (
    PRESETS,
    TAU_SCHEDULES,
    UNIFORM_TAU_RANGE,
    VAE_GRADIENTS,
    VARIANTS,
    WAN_NEGATIVE_PROMPT,
    TauSchedule,
    VaeGradient,
    Variant,
    WanConfig,
    WanVariant,
    i2v_a14b,
    ti2v_5b,
)
from flowgen.priors.wan.encode import encode_text, encode_video
from flowgen.priors.wan.linear_vae import LinearEncoder, fit_linear_encoder
from flowgen.priors.wan.load import load_wan_prior
from flowgen.priors.wan.prior import Condition, SdsResult, WanPrior, wan_sds_loss
from flowgen.priors.wan.weights import ExpertSlot, ModelShape, model_shape, resolve_model_dir

__all__ = [
    "PRESETS",
    "TAU_SCHEDULES",
    "UNIFORM_TAU_RANGE",
    "VAE_GRADIENTS",
    "VARIANTS",
    "WAN_NEGATIVE_PROMPT",
    "Condition",
    "ExpertSlot",
    "LinearEncoder",
    "ModelShape",
    "SdsResult",
    "TauSchedule",
    "VaeGradient",
    "Variant",
    "WanConfig",
    "WanPrior",
    "WanVariant",
    "encode_text",
    "encode_video",
    "fit_linear_encoder",
    "i2v_a14b",
    "load_wan_prior",
    "model_shape",
    "resolve_model_dir",
    "ti2v_5b",
    "wan_sds_loss",
]
