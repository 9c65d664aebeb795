"""The small prior's text side: a word-level tokenizer over its prompts and a UMT5 encoder built
from a config (random, frozen: it only has to tell the prompts apart; the transformer learns
what they mean), and both extended by new prompts' words when a trained prior is fine-tuned on
more motions (`flowgen.priors.train`)."""

from __future__ import annotations

import copy
import re

import torch

__all__ = ["build_tokenizer", "new_text_encoder", "with_words"]


def build_tokenizer(texts: list[str], vocab: dict[str, int] | None = None):
    """A lower-casing word-level tokenizer over the words of ``texts`` (T5's specials: <pad> 0,
    </s> 1 appended to every text, <unk> 2), as a PreTrainedTokenizerFast; with ``vocab`` (an
    existing tokenizer's), its words keep their ids and new words follow."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(vocab) if vocab is not None else {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for text in texts:
        for word in re.findall(r"\w+|[^\w\s]+", text.lower()):
            vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def new_text_encoder(width: int, vocab_size: int):
    """A randomly initialised two-layer UMT5 encoder of ``width`` channels (seed torch first)."""
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, d_model=width, d_kv=8, d_ff=2 * width,
                                       num_layers=2, num_heads=4, relative_attention_num_buckets=8)).eval()


def with_words(tokenizer, text_encoder, prompts: tuple[str, ...], seed: int):
    """``tokenizer`` and ``text_encoder`` extended by the words of ``prompts``: the old words
    keep their ids and embeddings (the prompts they knew encode as before), each new word gets
    an embedding row drawn from ``seed``. Unchanged (the same objects) without ``prompts``."""
    if not prompts:
        return tokenizer, text_encoder
    old = tokenizer.get_vocab()
    if sorted(old.values()) != list(range(len(old))):
        raise ValueError("the prior's tokenizer does not number its words 0..n-1; cannot extend it")
    tokenizer = build_tokenizer(list(prompts), vocab=old)
    text_encoder = copy.deepcopy(text_encoder)
    torch.manual_seed(seed + 5)
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return tokenizer, text_encoder.eval().requires_grad_(False)
