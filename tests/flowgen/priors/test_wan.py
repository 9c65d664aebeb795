"""The Wan 2.2 prior with tiny random models (diffusers' own test sizes: 2 layers, 16-32 px,
9 frames), saved with save_pretrained and loaded back through `load_wan_prior`, the path users
take. Nothing is downloaded: the UMT5 encoder is built from a config and the tokenizer is a
word-level `tokenizers` model wrapped as a PreTrainedTokenizerFast.

The reference is diffusers' own `WanImageToVideoPipeline` on the same directory: the guided
velocity it hands its scheduler (``noise_pred``) at each step must be ours at that tau.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("diffusers")

from chord_robot.errors import InputError, WeightsError
from flowgen.priors.cameras import CameraSampling, sample_cameras
from flowgen.priors.sds import rf_sds_gradient
from flowgen.priors.wan import (
    VARIANTS,
    WanConfig,
    encode_video,
    i2v_a14b,
    load_wan_prior,
    resolve_model_dir,
    ti2v_5b,
    wan_sds_loss,
)
from tests.flowgen.priors.wan_models import NEGATIVE, PROMPT, SIZES, build_tiny_wan

FRAMES = 9


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster than two fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("wan")
    out = {}
    for variant in VARIANTS:
        out[variant] = build_tiny_wan(base / variant, variant)
    return out


def _config(variant: str) -> WanConfig:
    base = i2v_a14b() if variant == "i2v-a14b" else ti2v_5b()

    return replace(base, negative_prompt=NEGATIVE, max_sequence_length=16, num_views=2)


@pytest.fixture(scope="module")
def priors(model_dirs):
    out = {}
    for variant, root in model_dirs.items():
        logs: list[str] = []
        prior = load_wan_prior(root, variant, "cpu", torch.float32, prompt=PROMPT, config=_config(variant),
                               log=logs.append)
        out[variant] = (prior, logs)
    return out


def _image(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


# -- weights on disk --------------------------------------------------------------------------


def test_missing_weights_say_where_they_are_expected(tmp_path, model_dirs):
    with pytest.raises(WeightsError) as e:
        resolve_model_dir(tmp_path / "nowhere", "i2v-a14b")
    assert e.value.exit_code == 2
    assert "nowhere" in str(e.value) and "transformer_2/" in str(e.value)
    assert "Wan-AI/Wan2.2-I2V-A14B-Diffusers" in str(e.value)

    with pytest.raises(WeightsError, match="models--Wan-AI--Wan2.2-TI2V-5B-Diffusers"):
        load_wan_prior(None, "ti2v-5b", "cpu", prompt=PROMPT, cache_dir=tmp_path / "empty-cache")

    partial = tmp_path / "partial"
    shutil.copytree(model_dirs["i2v-a14b"], partial)
    shutil.rmtree(partial / "transformer_2")
    (partial / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"missing vae/, transformer_2/"):
        load_wan_prior(partial, "i2v-a14b", "cpu", prompt=PROMPT)

    # the 5B directory is not the A14B model: refused with a message, not a shape error later
    with pytest.raises(WeightsError, match="does not hold Wan 2.2 I2V A14B|incomplete"):
        load_wan_prior(model_dirs["ti2v-5b"], "i2v-a14b", "cpu", prompt=PROMPT)


def test_loads_from_the_hugging_face_cache(tmp_path, model_dirs):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--Wan-AI--Wan2.2-TI2V-5B-Diffusers"
    shutil.copytree(model_dirs["ti2v-5b"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    prior = load_wan_prior(None, "ti2v-5b", "cpu", torch.float32, prompt=PROMPT, config=_config("ti2v-5b"),
                           cache_dir=tmp_path / "hub")
    assert prior.root == repo / "snapshots" / commit
    assert prior.spatial_multiple == 32 and prior.temporal_factor == 4


def test_text_encoder_is_freed_and_embeddings_match_the_pipeline(priors, model_dirs):
    from diffusers import WanImageToVideoPipeline

    prior, logs = priors["i2v-a14b"]
    assert any("text encoder freed" in line for line in logs)
    assert not any(isinstance(v, torch.nn.Module) and "Encoder" in type(v).__name__
                   for v in vars(prior).values())
    pipe = WanImageToVideoPipeline.from_pretrained(model_dirs["i2v-a14b"])
    cond, uncond = pipe.encode_prompt(PROMPT, NEGATIVE, max_sequence_length=16, device=torch.device("cpu"))
    assert (prior.embeddings.cond - cond).abs().max() < 1e-6
    assert (prior.embeddings.uncond - uncond).abs().max() < 1e-6
    assert (prior.embeddings.cond[0, 0] - uncond[0, 0]).abs().max() > 1e-2
    assert prior.embeddings.cond.shape == (1, 16, 32)
    assert prior.embeddings.cond[0, 7:].abs().max() == 0  # 6 words + </s>, then zero padding


# -- the velocity equals the pipeline's noise_pred --------------------------------------------


@pytest.mark.parametrize("variant", ["i2v-a14b", "ti2v-5b"])
def test_velocity_matches_the_diffusers_pipeline(priors, model_dirs, variant):
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    prior, _ = priors[variant]
    size = SIZES[variant]
    pipe = WanImageToVideoPipeline.from_pretrained(model_dirs[variant])
    captured = []
    step = pipe.scheduler.step

    def capture(model_output, timestep, sample, *args, **kwargs):
        captured.append((model_output.clone(), timestep.clone(), sample.clone()))
        return step(model_output, timestep, sample, *args, **kwargs)

    pipe.scheduler.step = capture
    image = _image(size)
    extra = {"guidance_scale_2": 3.0} if variant == "i2v-a14b" else {}
    pipe(image=Image.fromarray(image), prompt=PROMPT, negative_prompt=NEGATIVE, height=size, width=size,
         num_frames=FRAMES, num_inference_steps=4, guidance_scale=5.0, max_sequence_length=16,
         output_type="latent", generator=torch.Generator().manual_seed(0), **extra)
    # flow_shift 5 over 4 steps: t = 999, 937 (high-noise expert), 833, 625 (low-noise expert)
    assert [int(t) for _, t, _ in captured] == [999, 937, 833, 625]

    condition = prior.condition(torch.from_numpy(image).float() / 255.0, FRAMES)
    for noise_pred, t, latents in captured:
        tau = float(t) / 1000.0
        scale = 3.0 if variant == "i2v-a14b" and tau < 0.9 else 5.0
        v = prior.velocity(latents, tau, condition, scale)
        assert v.shape == noise_pred.shape
        assert (v - noise_pred).abs().max() < 2e-5, (variant, int(t))
        # a wrong guidance scale is far off: the comparison can fail
        assert (prior.velocity(latents, tau, condition, scale + 1.0) - noise_pred).abs().max() > 1e-2
    if variant == "i2v-a14b":
        assert prior.experts.loads[-2:] == ["transformer", "transformer_2"]
        # the expert matters: the high-noise expert at a low-noise step is far off
        noise_pred, t, latents = captured[-1]
        wrong = prior.velocity_model(_load_expert(model_dirs[variant], "transformer"), condition)
        from flowgen.priors.sds import guided_velocity

        v_wrong = guided_velocity(wrong, latents, float(t) / 1000, prior.embeddings, 3.0)
        assert (v_wrong - noise_pred).abs().max() > 1e-2


def _load_expert(root: Path, name: str):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel.from_pretrained(root, subfolder=name).eval()


# -- encoding with gradient ------------------------------------------------------------------


@pytest.mark.parametrize("variant,batch,frames", [("i2v-a14b", 1, FRAMES), ("i2v-a14b", 2, 13), ("i2v-a14b", 2, 1),
                                                  ("i2v-a14b", 1, 11), ("ti2v-5b", 1, FRAMES)])
def test_encode_video_paths_equal_vae_encode_forward_and_backward(priors, model_dirs, variant, batch, frames,
                                                                   monkeypatch):
    """Chunk by chunk with and without checkpointing, and (the non-residual VAE) in one pass
    over all frames: each equals diffusers' own encode of the VAE as stored, values and
    gradients (a batch of two as the shipped preset encodes; frames past the last chunk of 4
    dropped by every path), with the prior's VAE on a CPU computing its channel norms as
    `encode.ChannelRMSNorm` (every one of its encoder's replaced) and its convolution weights
    channels-last (`encode.channels_last`: another oneDNN algorithm, gradients to a few 1e-5)."""
    from diffusers import AutoencoderKLWan
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    from flowgen.priors.wan import encode

    prior, _ = priors[variant]
    vae = AutoencoderKLWan.from_pretrained(model_dirs[variant] / "vae").eval().requires_grad_(False)
    assert sum(isinstance(m, encode.ChannelRMSNorm) for m in prior.vae.encoder.modules()) >= 4
    assert not any(isinstance(m, WanRMS_norm) and m.channel_first for m in prior.vae.encoder.modules())
    assert encode._channels_last(prior.vae.encoder) and not encode._channels_last(vae.encoder)
    size = SIZES[variant]
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(batch, 3, frames, size, size, generator=gen) * 2 - 1).requires_grad_(True)
    mode = vae.encode(x).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    reference = (mode - mean) * (1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1))
    weights = torch.randn(reference.shape, generator=gen)
    (g_ref,) = torch.autograd.grad((reference * weights).sum(), x)
    whole = []
    real = encode._encoder_whole
    monkeypatch.setattr(encode, "_encoder_whole", lambda *a: whole.append(1) or real(*a))
    for checkpoint, whole_max in ((True, encode.WHOLE_MAX), (False, 0), (False, encode.WHOLE_MAX)):
        monkeypatch.setattr(encode, "WHOLE_MAX", whole_max)
        ours = encode_video(prior.vae, x, checkpoint=checkpoint)
        (g,) = torch.autograd.grad((ours * weights).sum(), x)
        assert ours.shape == reference.shape == (batch, vae.config.z_dim, 1 + (frames - 1) // 4,
                                                 size // prior.spatial_multiple * 2, size // prior.spatial_multiple * 2)
        assert torch.allclose(ours, reference, atol=1e-6)
        assert (g - g_ref).abs().max() <= 4e-5 * g_ref.abs().max(), float((g - g_ref).abs().max())
    assert g_ref.abs().max() > 1e-3
    assert len(whole) == (0 if vae.config.is_residual else 1)


def test_memoised_text_projections_give_the_plain_experts_velocities(priors, model_dirs):
    """The resident expert reuses what it computed from the prompt's embedding (`Memo`): its
    outputs equal a plainly loaded expert's bit for bit, for the prompt, then another
    embedding (not the cached one), then the prompt again; with gradients on nothing is cached."""
    from diffusers import WanTransformer3DModel

    from flowgen.priors.wan.weights import Memo

    prior, _ = priors["i2v-a14b"]
    expert = prior.experts.get("transformer")
    assert sum(isinstance(m, Memo) for m in expert.modules()) == 1 + 3 * len(expert.blocks)
    plain = WanTransformer3DModel.from_pretrained(model_dirs["i2v-a14b"], subfolder="transformer").eval()
    gen = torch.Generator().manual_seed(5)
    size = SIZES["i2v-a14b"] // prior.spatial_multiple * 2
    x = torch.randn(2, expert.config.in_channels, 3, size, size, generator=gen)
    timestep = torch.full((2,), 700.0)
    prompt = torch.cat((prior.embeddings.cond, prior.embeddings.uncond))
    other = prompt + 0.1 * torch.randn(prompt.shape, generator=gen)
    memo = expert.blocks[0].attn2.to_k
    outputs, misses = [], []
    for embedding in (prompt, prompt.clone(), other, prompt, prompt):
        with torch.no_grad():
            got = expert(hidden_states=x, timestep=timestep, encoder_hidden_states=embedding, return_dict=False)[0]
            want = plain(hidden_states=x, timestep=timestep, encoder_hidden_states=embedding, return_dict=False)[0]
        assert torch.equal(got, want)
        outputs.append(got)
        misses.append(memo.misses)
    assert not torch.equal(outputs[0], outputs[2])
    assert [m - misses[0] for m in misses] == [0, 0, 1, 2, 2]  # an equal copy hits; a change misses once
    prompt.mul_(1.0)  # edited in place (same values, a new version): computed again
    with torch.no_grad():
        expert(hidden_states=x, timestep=timestep, encoder_hidden_states=prompt, return_dict=False)
    assert memo.misses == misses[-1]  # equal to the copy kept: still a hit
    prompt.add_(0.5)
    with torch.no_grad():
        got = expert(hidden_states=x, timestep=timestep, encoder_hidden_states=prompt, return_dict=False)[0]
        want = plain(hidden_states=x, timestep=timestep, encoder_hidden_states=prompt, return_dict=False)[0]
    assert torch.equal(got, want) and memo.misses == misses[-1] + 1
    with torch.enable_grad():
        expert(hidden_states=x, timestep=timestep, encoder_hidden_states=other, return_dict=False)
    assert memo._last is None


# -- the SDS loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["i2v-a14b", "ti2v-5b"])
def test_sds_loss_gradient_is_the_rf_sds_gradient_pulled_through_the_vae(priors, variant):
    prior, _ = priors[variant]
    size = SIZES[variant]
    views, it, total, seed = 2, 3, 10, 7
    gen = torch.Generator().manual_seed(4)
    video = torch.rand(views, FRAMES, size, size, 3, generator=gen).requires_grad_(True)
    first = torch.rand(views, size, size, 3, generator=gen)
    loss = wan_sds_loss(prior, video, first, it, total, seed=seed)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(video.grad).all() and video.grad.abs().max() > 1e-4

    # reference: plain autograd through vae.encode, the same noise, g / V as the latent gradient
    tau, scale = prior.tau(it, total), prior.guidance(it, total)
    expected = torch.zeros_like(video)
    value = 0.0
    for v in range(views):
        leaf = video[v].detach().clone().requires_grad_(True)
        z = encode_video(prior.vae, (leaf * 2 - 1).permute(3, 0, 1, 2)[None], checkpoint=False)
        condition = prior.condition(first[v], FRAMES)
        expert = prior.experts.get(prior.expert_name(tau))
        g = rf_sds_gradient(z, tau, prior.embeddings, prior.velocity_model(expert, condition), scale,
                            prior._noise(z.shape, seed, it, v))
        if condition.mask is not None:
            g = g * condition.mask
            assert g[:, :, 0].abs().max() == 0 and g[:, :, 1:].abs().max() > 0
        (expected[v],) = torch.autograd.grad((z * g).sum() / views, leaf)
        value += 0.5 * float(g.square().sum()) / views
    # to float rounding: the step encodes the render with its condition as a batch of two
    assert (video.grad - expected).abs().max() <= 2e-5 * expected.abs().max()
    assert float(loss.detach()) == pytest.approx(value, rel=1e-5)

    # noise is a function of (seed, iteration, view): the same call gives the same gradient
    again = video.detach().clone().requires_grad_(True)
    wan_sds_loss(prior, again, first, it, total, seed=seed).backward()
    assert torch.equal(again.grad, video.grad)

    # the cpu preset's settings: the condition encoded with the render as a batch of two, the
    # VAE not checkpointed - the same gradient (first frame = the render's, as the loop sends)
    together = replace(prior, config=replace(prior.config, encode_together=True, vae_checkpointing=False))
    grads = []
    for p in (prior, together):
        leaf = video.detach().clone().requires_grad_(True)
        wan_sds_loss(p, leaf, None, it, total, seed=seed).backward()
        grads.append(leaf.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4) and grads[0].abs().max() > 1e-4


def test_image_space_pulls_the_render_to_the_decoded_denoised_estimate_through_a_blur(priors):
    """``sds_space`` "image": the gradient on the render is grad_scale / V B^T (B x - B x_hat),
    x_hat the VAE's decoding of the denoised estimate z - tau g (g the latent RF-SDS gradient of
    the same noise), B the blur of the iteration (``image_blur`` times the width, geometric)."""
    from flowgen.priors.sds import blur_frames

    base, _ = priors["i2v-a14b"]
    prior = replace(base, config=replace(base.config, sds_space="image", image_blur=(0.25, 0.0625), grad_scale=3.0))
    size, views, it, total, seed = SIZES["i2v-a14b"], 2, 5, 11, 3
    video = torch.rand(views, FRAMES, size, size, 3, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    result = prior.sds(video, None, it, total, seed)
    result.loss.backward()

    sigma = 0.25 * size * (0.0625 / 0.25) ** (it / (total - 1))
    tau, scale = prior.tau(it, total), prior.guidance(it, total)
    vae = prior.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    expected, value = torch.zeros_like(video), 0.0
    for v in range(views):
        x = video[v].detach()
        z = encode_video(vae, (x * 2 - 1).permute(3, 0, 1, 2)[None], checkpoint=False)
        expert = prior.experts.get(prior.expert_name(tau))
        g = rf_sds_gradient(z, tau, prior.embeddings, prior.velocity_model(expert, prior.condition(x[0], FRAMES)),
                            scale, prior._noise(z.shape, seed, it, v))
        with torch.no_grad():
            decoded = vae.decode((z - tau * g) * std + mean).sample[0].permute(1, 2, 3, 0).clamp(-1, 1) * 0.5 + 0.5
        leaf = x.clone().requires_grad_(True)
        loss = 0.5 * (blur_frames(leaf, sigma) - blur_frames(decoded[:FRAMES], sigma)).square().sum()
        (expected[v],) = torch.autograd.grad(3.0 * loss / views, leaf)
        value += 3.0 * float(loss.detach()) / views
    assert expected.abs().max() > 1e-3
    assert (video.grad - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert float(result.loss.detach()) == pytest.approx(value, rel=1e-4)

    from flowgen.priors.sds_prior import SdsPrior

    loop = SdsPrior(prior, np.zeros((4, 3)), FRAMES, 32, 16, num_views=2, iterations=10, sampling=CameraSampling())
    assert loop.plan().endswith("blurred 8 -> 2 px") and "blurred" not in SdsPrior(
        base, np.zeros((4, 3)), FRAMES, 32, 16, num_views=2, iterations=10, sampling=CameraSampling()).plan()


def test_sds_refuses_sizes_the_model_cannot_take(priors):
    prior, _ = priors["i2v-a14b"]
    with pytest.raises(InputError, match="1 \\+ 4k frames"):
        wan_sds_loss(prior, torch.rand(1, 8, 16, 16, 3), None, 0, 10)
    with pytest.raises(InputError, match="multiples of 16"):
        wan_sds_loss(prior, torch.rand(1, 9, 24, 16, 3), None, 0, 10)


def test_experts_switch_once_over_a_run_and_say_so(model_dirs):
    logs: list[str] = []
    prior = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT,
                           config=_config("i2v-a14b"), log=logs.append)
    total = 14
    video = torch.rand(1, FRAMES, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    used = []
    for it in range(total):
        loss = wan_sds_loss(prior, video.clone().requires_grad_(True), None, it, total)
        assert torch.isfinite(loss)
        used.append(prior.experts.active)
    k = used.index("transformer_2")
    assert used == ["transformer"] * k + ["transformer_2"] * (total - k)
    assert k == 5  # floor(15 * 5/14): h(0.9) = 9/14 with shift 5
    assert prior.experts.loads == ["transformer", "transformer_2"]
    switch = [line for line in logs if "released" in line]
    assert len(switch) == 1 and "transformer_2" in switch[0] and "only the active expert" in switch[0]
    assert "one expert resident at a time" in prior.plan(total) and "at iteration 5" in prior.plan(total)


def test_uniform_tau_schedule_draws_seeded_uniform_levels_and_alternates_experts(model_dirs):

    total = 40
    annealed = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT,
                              config=_config("i2v-a14b"))
    logs: list[str] = []
    uniform = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT,
                             config=replace(_config("i2v-a14b"), tau_schedule="uniform"), log=logs.append)
    a = np.array([annealed.tau(it, total) for it in range(total)])
    u = np.array([uniform.tau(it, total) for it in range(total)])
    assert np.all(np.diff(a) < 0)  # the paper's schedule only anneals
    assert np.all((u >= 0.02) & (u <= 0.98)) and np.sum(np.diff(u) > 0) >= 10  # not monotone
    assert u.min() < 0.2 and u.max() > 0.8  # spread over the range
    assert [uniform.tau(it, 7) for it in (3, 11)] == [u[3], u[11]]  # a function of the iteration only
    assert "tau uniform in [0.02, 0.98]" in uniform.plan(total) and "annealed" not in uniform.plan(total)
    # the experts follow tau both ways: the high-noise one again after the low-noise one
    its = [int(np.argmax(u >= 0.9)), int(np.argmax(u < 0.9))]
    its = sorted(its) + [next(i for i in range(max(its) + 1, total) if (u[i] >= 0.9) != (u[max(its)] >= 0.9))]
    video = torch.rand(1, FRAMES, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    used = []
    for it in its:
        result = uniform.sds(video, None, it, total)
        assert math.isclose(result.tau, u[it]) and torch.isfinite(result.loss)
        used.append(uniform.experts.active)
    assert used[0] != used[1] and used[2] == used[0]


def test_uniform_tau_schedule_weights_the_gradient_by_w_tau(model_dirs, monkeypatch):
    """The paper's ablation keeps w(tau): a uniform draw's gradient is scaled by W(tau) over W's
    mean on the range (shifted W rises with tau, so high noise weighs more; the mean weight is
    1); the annealed schedule is not reweighted."""

    config = replace(_config("i2v-a14b"), tau_schedule="uniform")
    uniform = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT, config=config)
    taus = np.linspace(0.02, 0.98, 2001)
    weights = np.array([uniform.tau_weight(t) for t in taus])
    assert abs(weights.mean() - 1.0) < 2e-3 and weights[-1] / weights[0] > 10  # shift 5: W(0.98) / W(0.02) ~ 23
    assert "weighted by shifted W(tau)" in uniform.plan(40)
    annealed = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT,
                              config=_config("i2v-a14b"))
    assert annealed.tau_weight(0.1) == annealed.tau_weight(0.9) == 1.0

    video = torch.rand(1, FRAMES, 16, 16, 3, generator=torch.Generator().manual_seed(0))

    def gradient() -> tuple[torch.Tensor, float]:
        leaf = video.clone().requires_grad_(True)
        result = uniform.sds(leaf, None, 3, 40)
        result.loss.backward()
        return leaf.grad, result.tau

    weighted, tau = gradient()
    expected = uniform.tau_weight(tau)
    monkeypatch.setattr(type(uniform), "tau_weight", lambda self, tau: 1.0)
    plain, _ = gradient()
    assert float(weighted.norm() / plain.norm()) == pytest.approx(expected, rel=1e-4) and abs(expected - 1) > 0.1


# -- the loop's SDS prior ---------------------------------------------------------------------


def test_views_one_at_a_time_draw_the_noise_of_the_whole_batch(priors):
    prior, _ = priors["i2v-a14b"]
    video = torch.rand(2, FRAMES, 16, 16, 3, generator=torch.Generator().manual_seed(6))
    whole = video.clone().requires_grad_(True)
    wan_sds_loss(prior, whole, None, 2, 10, seed=5).backward()
    split = video.clone().requires_grad_(True)
    # the batch loss averages its views; the loop averages one-view losses the same way
    sum(prior.sds(split[v : v + 1], None, 2, 10, 5, first_view=v).loss for v in range(2)).div(2).backward()
    assert torch.allclose(split.grad, whole.grad, atol=1e-7)
    again = video.clone().requires_grad_(True)
    prior.sds(again[1:], None, 2, 10, 5, first_view=0).loss.backward()  # another noise draw
    assert not torch.allclose(again.grad[1], 2 * whole.grad[1], atol=1e-4)


def test_sds_prior_renders_every_frame_from_the_iterations_cameras(priors):
    from flowgen.priors.sds_prior import SdsPrior

    prior, _ = priors["i2v-a14b"]
    targets = np.random.default_rng(0).normal(size=(200, 3)) * 0.1
    sampling = CameraSampling()
    sds = SdsPrior(prior, targets, FRAMES, 32, 16, num_views=2, iterations=10, sampling=sampling, seed=4)
    views = sds.views([torch.tensor([3])] * 2, 1.0, first=6)
    assert [v.source for v in views] == [6, 7] and [sds.iteration_of(v) for v in views] == [(3, 0), (3, 1)]
    expected = sample_cameras(targets, 32, 16, sampling, 2, seed=4, iteration=3)
    for view, camera in zip(views, expected):
        assert torch.equal(view.frames, torch.arange(FRAMES)) and view.background is None
        assert np.array_equal(view.camera.world_from_camera, camera.world_from_camera)
        assert (view.camera.width, view.camera.height) == (32, 16)
    rgb = torch.rand(FRAMES, 16, 32, 3, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    sds.loss(views[1], rgb, torch.ones(FRAMES, 16, 32), 1.0)["sds"].backward()
    reference = rgb.detach().clone()[None].requires_grad_(True)
    wan_sds_loss(prior, reference, None, 3, 10, seed=4).backward()  # view 0's noise: differs
    assert not torch.allclose(rgb.grad, reference.grad[0], atol=1e-4)
    slot1 = rgb.detach().clone()[None].requires_grad_(True)
    prior.sds(slot1, None, 3, 10, 4, first_view=1).loss.backward()
    assert torch.equal(rgb.grad, slot1.grad[0])
    with pytest.raises(ValueError, match="model's size"):
        sds.views([torch.tensor([1])] * 2, 0.5, first=0)
    with pytest.raises(InputError, match="multiples of 16"):
        SdsPrior(prior, targets, FRAMES, 40, 16, 2, 10, sampling)


def test_sds_prior_composites_the_configured_backdrop_behind_the_renders(model_dirs):

    from flowgen.priors.sds_prior import SdsPrior

    config = replace(_config("i2v-a14b"), num_views=1, background=(1.0, 1.0, 1.0))
    prior = load_wan_prior(model_dirs["i2v-a14b"], "i2v-a14b", "cpu", torch.float32, prompt=PROMPT, config=config)
    targets = np.random.default_rng(0).normal(size=(200, 3)) * 0.1
    sds = SdsPrior(prior, targets, FRAMES, 32, 16, 1, 10, CameraSampling(), seed=4)
    view = sds.views([torch.tensor([0])], 1.0, first=2)[0]
    gen = torch.Generator().manual_seed(2)
    alpha = (torch.rand(FRAMES, 16, 32, generator=gen) > 0.5).float()
    rgb = (torch.rand(FRAMES, 16, 32, 3, generator=gen) * alpha[..., None]).requires_grad_(True)  # premultiplied
    sds.loss(view, rgb, alpha, 1.0)["sds"].backward()
    # the same as the plain loss of the composite: white where nothing was rendered
    composite = (rgb.detach() + (1 - alpha[..., None]))[None].requires_grad_(True)
    prior.sds(composite, None, 2, 10, 4).loss.backward()
    assert torch.allclose(rgb.grad, composite.grad[0], atol=1e-6)
    black = rgb.detach()[None].requires_grad_(True)
    prior.sds(black, None, 2, 10, 4).loss.backward()
    assert not torch.allclose(rgb.grad, black.grad[0], atol=1e-4)  # black behind: another gradient
