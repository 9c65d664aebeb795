"""Tiny random Wan 2.2 models for tests (diffusers' own test sizes: 2 layers, 16-32 px, 9
frames), laid out like Wan-AI/Wan2.2-{I2V-A14B,TI2V-5B}-Diffusers with ``save_pretrained`` so
they load through the path users take. Nothing is downloaded: the UMT5 encoder is built from a
config and the tokenizer is a word-level `tokenizers` model wrapped as a
PreTrainedTokenizerFast (unknown words map to ``<unk>``).
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["NEGATIVE", "PROMPT", "SIZES", "build_tiny_wan"]

PROMPT = "the lamp lowers its head slowly"
NEGATIVE = "static still picture"
SIZES = {"i2v-a14b": 16, "ti2v-5b": 32}
"""Smallest square side each variant takes (VAE factor x patch: 8 x 2 and 16 x 2)."""


def _tokenizer(words: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words.split():
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def build_tiny_wan(root: Path, variant: str, words: str = "") -> Path:
    """Write a tiny random model of ``variant`` ("i2v-a14b": two experts, boundary 0.9, 36 input
    channels; "ti2v-5b": one expert, 48-channel VAE, expand_timesteps) to ``root``.

    Args:
        root: the directory to create.
        variant: which layout.
        words: extra words for the tokenizer's vocabulary (beside PROMPT and NEGATIVE).
    Returns:
        ``root``.
    """
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    five = variant == "ti2v-5b"
    torch.manual_seed(0)
    if five:
        vae = AutoencoderKLWan(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True,
                               patch_size=2, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
                               dim_mult=[1, 1, 1, 1], num_res_blocks=1, scale_factor_spatial=16,
                               scale_factor_temporal=4, temperal_downsample=[False, True, True])
    else:  # keeps Wan 2.1's real latents_mean/std, so the normalisation is exercised
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True])
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8))
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)

    def transformer(seed: int):
        torch.manual_seed(seed)  # different seeds: the two experts must differ for the tests to see the switch
        return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                     in_channels=48 if five else 36, out_channels=48 if five else 16,
                                     text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32)

    tokenizer = _tokenizer(f"{PROMPT} {NEGATIVE} a the blurry {words}")
    assert len(tokenizer) <= 64, "the tiny UMT5 has 64 embeddings"
    parts = {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "scheduler": scheduler,
             "transformer": transformer(1)}
    if five:
        pipe = WanImageToVideoPipeline(**parts, transformer_2=None, boundary_ratio=None, expand_timesteps=True)
    else:
        pipe = WanImageToVideoPipeline(**parts, transformer_2=transformer(2), boundary_ratio=0.9)
    pipe.save_pretrained(root)
    return root
