"""The shipped prior: small, in the Wan 2.2 layout, loaded by the same code as Wan 2.2."""

from __future__ import annotations

import numpy as np
import pytest

from flowgen.priors import shipped
from sim.clips import ARTICULATED_PROMPTS, MOTIONS

PICK_PROMPTS = tuple(p for p, m in MOTIONS.items() if m.kind == "pick")


def test_the_shipped_weights_are_small_and_know_their_sentences():
    assert all(shipped.available(root) for root in shipped.MODEL_DIRS)
    sizes = [sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) for root in shipped.MODEL_DIRS]
    assert sum(sizes) < 30e6, sizes  # both models within the budget for weights in git
    assert shipped.prompts() == ARTICULATED_PROMPTS == ("the laptop lid closes", "the laptop lid opens",
                                                        "the lamp lowers its head", "the lamp raises its head")
    assert shipped.prompts(shipped.PICK_DIR) == PICK_PROMPTS == ("the object is put on the plate",
                                                                 "the object is taken off the plate")
    assert shipped.known_prompts() == {**dict.fromkeys(ARTICULATED_PROMPTS, shipped.MODEL_DIR),
                                       **dict.fromkeys(PICK_PROMPTS, shipped.PICK_DIR)}
    for root in shipped.MODEL_DIRS:
        assert (root / "MODEL_CARD.md").read_text().count("chord-robot train-prior") >= 1
        assert shipped.is_shipped(root) and shipped.is_shipped(str(root / ".." / root.name))
    assert not shipped.is_shipped(shipped.MODEL_DIR.parent) and not shipped.is_shipped(None)


@pytest.mark.parametrize("root", shipped.MODEL_DIRS, ids=lambda r: r.name)
def test_the_shipped_models_have_the_wan_22_a14b_shape(root):
    from flowgen.priors.wan import model_shape

    shape = model_shape(root, "i2v-a14b")
    assert shipped.clip_size(root) == (9, 32, 32)  # trained on 9-frame 32x32 clips
    shape.check(*shipped.clip_size(root))  # the shipped preset's frames and size fit
    with pytest.raises(Exception, match="frames"):
        shape.check(10, 32, 32)


@pytest.mark.slow
@pytest.mark.parametrize("root", shipped.MODEL_DIRS, ids=lambda r: r.name)
def test_diffusers_pipeline_samples_a_video_from_the_shipped_weights(root):
    # ~5-15 s: the shipped directory through diffusers' own WanImageToVideoPipeline
    import torch
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    pipe = WanImageToVideoPipeline.from_pretrained(root)
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.full((32, 32, 3), 200, np.uint8))
    out = pipe(image=image, prompt=shipped.prompts(root)[0], negative_prompt="", height=32, width=32, num_frames=9,
               num_inference_steps=4, guidance_scale=4.0, guidance_scale_2=4.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    video = np.asarray(out.frames[0])
    assert video.shape == (9, 32, 32, 3) and np.isfinite(video).all() and video.std() > 0.01
