"""The shipped prior: small, in the Wan 2.2 layout, loaded by the same code as Wan 2.2."""

from __future__ import annotations

import numpy as np
import pytest

from flowgen.priors import shipped
from sim.clips import ARTICULATED_PROMPTS


def test_the_shipped_weights_are_small_and_know_their_sentences():
    assert shipped.available()
    size = sum(p.stat().st_size for p in shipped.MODEL_DIR.rglob("*") if p.is_file())
    assert size < 30e6, size
    assert shipped.prompts() == ARTICULATED_PROMPTS == ("the laptop lid closes", "the laptop lid opens",
                                                        "the lamp lowers its head", "the lamp raises its head")
    assert (shipped.MODEL_DIR / "MODEL_CARD.md").read_text().count("chord-robot train-prior") >= 1


def test_the_shipped_model_has_the_wan_22_a14b_shape():
    from flowgen.priors.wan import model_shape

    shape = model_shape(shipped.MODEL_DIR, "i2v-a14b")
    assert shipped.clip_size() == (9, 32, 32)  # trained on 9-frame 32x32 clips (from its log's latents)
    shape.check(*shipped.clip_size())  # the shipped preset's frames and size fit
    with pytest.raises(Exception, match="frames"):
        shape.check(10, 32, 32)


@pytest.mark.slow
def test_diffusers_pipeline_samples_a_video_from_the_shipped_weights():
    # ~5-15 s: the shipped directory through diffusers' own WanImageToVideoPipeline
    import torch
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    pipe = WanImageToVideoPipeline.from_pretrained(shipped.MODEL_DIR)
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.full((32, 32, 3), 200, np.uint8))
    out = pipe(image=image, prompt=shipped.prompts()[0], negative_prompt="", height=32, width=32, num_frames=9,
               num_inference_steps=4, guidance_scale=4.0, guidance_scale_2=4.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    video = np.asarray(out.frames[0])
    assert video.shape == (9, 32, 32, 3) and np.isfinite(video).all() and video.std() > 0.01
