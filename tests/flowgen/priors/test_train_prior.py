"""The small-prior trainer at reduced size: a few steps on synthetic clips (a bar turning one way
or the other, drawn with numpy) lower both losses, the run is a function of its seed, and the
saved directory loads through `load_wan_prior` (the path `flow --prior wan --model DIR` takes) and
through diffusers' own WanImageToVideoPipeline."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("diffusers")

from chord_robot.errors import ConfigError
from flowgen.priors.shipped import MODEL_DIR
from flowgen.priors.train import (
    TrainConfig,
    load_trained,
    quick,
    save_prior,
    train_prior,
    weighted_error,
)
from flowgen.priors.train_checks import (
    changing_pixels,
    departed_pixels,
    psnr_by_frame,
    reconstruction_psnr,
    sample_videos,
)
from flowgen.priors.wan import WanConfig, load_wan_prior, wan_sds_loss

PROMPTS = ("the bar turns left", "the bar turns right")


def _bars(count: int, seed: int, size: int = 32, frames: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """(count, T, H, W, 3) uint8 clips of a bar through the centre turning by +-60 degrees."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    videos = np.empty((count, frames, size, size, 3), np.uint8)
    ids = np.arange(count) % 2
    for i in range(count):
        back, bar = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        start, turn = rng.uniform(0, np.pi), (1 if ids[i] == 0 else -1) * np.radians(60)
        for t in range(frames):
            a = start + turn * t / (frames - 1)
            on = (np.abs(-np.sin(a) * xx + np.cos(a) * yy) < 2.5) & (np.hypot(xx, yy) < size * 0.45)
            videos[i, t] = np.where(on[..., None], bar, back)
    return videos, ids


@pytest.fixture(scope="module")
def trained():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread beats two fighting over shared cores
    videos, ids = _bars(24, seed=0)
    yield train_prior(videos, ids, PROMPTS, replace(quick(), vae_steps=12, steps=40)), videos
    torch.set_num_threads(before)


def test_a_few_steps_lower_the_losses(trained) -> None:
    result, videos = trained
    vae, transformer = result.log["vae"]["loss"], result.log["transformer"]["loss"]
    assert len(vae) == 12 and len(transformer) == 40
    assert np.mean(vae[-4:]) < 0.8 * np.mean(vae[:4]), vae
    assert np.mean(transformer[-10:]) < 0.85 * np.mean(transformer[:10]), transformer
    # the latent normalisation is measured on the clips, not left at the defaults
    assert result.vae.config.latents_std != [1.0] * result.config.z_dim
    psnr = reconstruction_psnr(result.vae, videos[:4])
    assert 5.0 < psnr < 60.0
    everywhere = np.ones((4, *videos.shape[2:4]), bool)
    assert reconstruction_psnr(result.vae, videos[:4], pixels=everywhere) == pytest.approx(psnr, abs=1e-4)
    bar = changing_pixels(videos[:4])  # the turning bar, harder to reconstruct than its backdrop
    assert reconstruction_psnr(result.vae, videos[:4], pixels=bar) < psnr
    # per frame: the frames' squared errors average to the clip's
    by_frame = psnr_by_frame(result.vae, videos[:4])
    assert by_frame.shape == (9,) and np.isfinite(by_frame).all()
    assert 10 * np.log10(4 / np.mean(4 / 10 ** (by_frame / 10))) == pytest.approx(psnr, abs=1e-3)
    at_frame = psnr_by_frame(result.vae, videos[:4], departed_pixels(videos[:4]))
    assert (at_frame < by_frame).sum() >= 7  # where the bar is in each frame, harder than the frame


def test_the_pixels_where_something_moves() -> None:
    """A grey clip in which a 3x3 red square moves 4 px to the right (4 frames there, 5 here)
    and a 2x2 patch darkens by 20 of 255 (below the threshold of 25.5) from frame 6 on."""
    videos = np.full((2, 9, 16, 16, 3), 128, np.uint8)
    videos[0, :4, 5:8, 2:5] = (255, 0, 0)
    videos[0, 4:, 5:8, 6:9] = (255, 0, 0)
    videos[0, 6:, 12:14, 12:14] -= 20
    moving = changing_pixels(videos)
    assert moving.shape == (2, 16, 16) and not moving[1].any()
    # at the square's first place the median is grey and its 4 red frames differ; at its last
    # place the median is red and the 4 grey frames before differ
    expected = np.zeros((16, 16), bool)
    expected[5:8, 2:5] = expected[5:8, 6:9] = True
    assert np.array_equal(moving[0], expected)
    assert changing_pixels(videos, threshold=0.05)[0, 12:14, 12:14].all()
    # per frame: where the square is while away from its median place, and its median place
    # (red) while it is elsewhere; their union over the frames is the above
    departed = departed_pixels(videos)
    assert departed.shape == (2, 9, 16, 16) and np.array_equal(departed.any(1), moving)
    assert departed[0, :4, 5:8, 2:5].all() and departed[0, :4, 5:8, 6:9].all()
    assert not departed[0, 4:].any()  # from frame 4 on the square is where its median is


def test_the_motion_weight_counts_errors_where_something_moves_more() -> None:
    x = torch.zeros(2, 3, 5, 8, 8)
    rec = x.clone()
    rec[:, :, :, :2, :2] = 0.5  # an error on 4 of 64 pixels
    moving = torch.zeros(2, 8, 8)
    moving[:, :2, :2] = 1.0
    plain = (rec - x).square().mean()
    assert torch.allclose(weighted_error(rec, x, torch.ones(2, 8, 8)), plain)
    weighted = weighted_error(rec, x, 1.0 + 10.0 * moving)
    # the 4 pixels now weigh 11 each against 60 of weight 1: 44/104 of the total, not 4/64
    assert torch.allclose(weighted, plain * (44 / 104) / (4 / 64))
    with pytest.raises(ValueError, match="vae_motion_weight"):
        TrainConfig(vae_motion_weight=-1.0)
    assert math.isnan(reconstruction_psnr(None, np.zeros((0, 9, 8, 8, 3), np.uint8), pixels=np.zeros((0, 8, 8), bool)))


def test_the_motion_weight_reaches_the_vae_training() -> None:
    videos, ids = _bars(8, seed=2)
    small = replace(quick(), vae_steps=3, steps=1)
    plain = train_prior(videos, ids, PROMPTS, small).log["vae"]["loss"]
    weighted = train_prior(videos, ids, PROMPTS, replace(small, vae_motion_weight=20.0)).log["vae"]["loss"]
    assert plain[0] == weighted[0] and plain[1:] != weighted[1:]  # the same start, other updates
    first = train_prior(videos, ids, PROMPTS, replace(small, vae_first_frame_weight=20.0)).log["vae"]["loss"]
    assert plain[0] == first[0] and plain[1:] != first[1:] and first[1:] != weighted[1:]


def test_the_first_frame_weight_counts_its_errors_more() -> None:
    x = torch.zeros(2, 3, 5, 8, 8)
    rec = x.clone()
    rec[:, :, 0] = 0.5  # an error on frame 0 only
    plain = (rec - x).square().mean()
    frames = torch.tensor([11.0, 1, 1, 1, 1])
    # frame 0 now weighs 11 against 4 of weight 1: 11/15 of the total, not 1/5
    assert torch.allclose(weighted_error(rec, x, None, frames), plain * (11 / 15) / (1 / 5))
    pixels = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    both = pixels[:, None, None] * frames[:, None, None]  # (2, 1, 5, 8, 8)
    expected = (both * (rec - x).square()).sum() / (3 * both.sum())
    assert torch.allclose(weighted_error(rec, x, pixels, frames), expected)
    with pytest.raises(ValueError, match="vae_first_frame_weight"):
        TrainConfig(vae_first_frame_weight=-1.0)


def test_training_is_a_function_of_the_seed() -> None:
    videos, ids = _bars(8, seed=1)
    small = replace(quick(), vae_steps=2, steps=3)
    a = train_prior(videos, ids, PROMPTS, small)
    b = train_prior(videos, ids, PROMPTS, small)
    c = train_prior(videos, ids, PROMPTS, replace(small, seed=1))
    assert a.log["transformer"]["loss"] == b.log["transformer"]["loss"]
    assert a.log["transformer"]["loss"] != c.log["transformer"]["loss"]
    with pytest.raises(ValueError, match="vae_frames"):
        TrainConfig(vae_frames=4)


def test_saved_prior_loads_like_the_14b_model(trained, tmp_path) -> None:
    result, videos = trained
    root = save_prior(result, tmp_path / "prior")
    for part in ("transformer", "transformer_2", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (root / part).is_dir(), part
    log = json.loads((root / "train_log.json").read_text())
    assert log["prompts"] == list(PROMPTS) and len(log["log"]["transformer"]["loss"]) == 40

    config = replace(WanConfig(), max_sequence_length=result.config.max_sequence_length, num_views=1,
                     guidance_start=3.0, guidance_end=3.0)
    prior = load_wan_prior(root, "i2v-a14b", "cpu", torch.float32, prompt=PROMPTS[0], config=config)
    assert prior.spatial_multiple == 8 and prior.temporal_factor == 4
    video = torch.from_numpy(videos[:1]).float().div(255).requires_grad_(True)  # (1, T, H, W, 3)
    wan_sds_loss(prior, video, None, iteration=0, total=10).backward()
    assert torch.isfinite(video.grad).all() and video.grad.abs().sum() > 0

    clips = sample_videos(root, videos[:2, 0], list(PROMPTS), steps=2, num_frames=9)
    assert clips.shape == (2, 9, 32, 32, 3) and clips.dtype == np.uint8

    # fine-tuning starts where training ended (same VAE normalisation, same weights)
    back = load_trained(root)
    assert back.vae.config.latents_std == result.vae.config.latents_std and back.prompts == PROMPTS
    more = train_prior(videos, np.arange(len(videos)) % 2, PROMPTS, replace(back.config, steps=5, vae_steps=0), init=back)
    fresh = result.log["transformer"]["loss"]
    assert more.log["vae"]["loss"] == [] and np.mean(more.log["transformer"]["loss"]) < 0.9 * np.mean(fresh[:5])
    with pytest.raises(ValueError, match="prompts the prior knows"):
        train_prior(videos, np.zeros(len(videos), np.int64), ("something else",), back.config, init=back)


def test_fine_tuning_adds_motions(trained, tmp_path) -> None:
    """A fine-tune may teach new prompts after the old ones: the old prompts encode bit for bit
    as before, the new one differently, and the saved prior knows all three."""
    from flowgen.priors.wan.encode import encode_text

    result, videos = trained
    back = load_trained(save_prior(result, tmp_path / "prior"))
    prompts = (*PROMPTS, "the bar stands still")
    ids = np.arange(len(videos)) % 3
    more = train_prior(videos, ids, prompts, replace(back.config, steps=3, vae_steps=0), init=back)
    length = result.config.max_sequence_length

    def encode(prior, texts):
        return encode_text(prior.tokenizer, prior.text_encoder, list(texts), length, torch.device("cpu"))

    before, after = encode(back, PROMPTS), encode(more, prompts)
    assert torch.equal(after[:2], before)
    assert (after[2] - after[0]).abs().max() > 1e-3 and (after[2] - after[1]).abs().max() > 1e-3
    assert more.tokenizer.get_vocab()["stands"] >= len(back.tokenizer)
    root = save_prior(more, tmp_path / "more")
    assert json.loads((root / "train_log.json").read_text())["prompts"] == list(prompts)
    clip = sample_videos(root, videos[:1, 0], [prompts[2]], steps=2, num_frames=9)
    assert clip.shape == (1, 9, 32, 32, 3)
    assert more.tokenizer("the bar stands still")["input_ids"].count(more.tokenizer.unk_token_id) == 0

    # and again from the saved fine-tune: every word so far keeps its id
    again = load_trained(root)
    fourth = (*prompts, "the bar spins twice")
    most = train_prior(videos, np.arange(len(videos)) % 4, fourth, replace(again.config, steps=2, vae_steps=0),
                       init=again)
    assert {w: most.tokenizer.get_vocab()[w] for w in more.tokenizer.get_vocab()} == more.tokenizer.get_vocab()
    assert torch.equal(encode(most, fourth)[:3], after)
    with pytest.raises(ValueError, match="prompts the prior knows first"):
        train_prior(videos, ids, (PROMPTS[1], PROMPTS[0], prompts[2]), back.config, init=back)


def test_a_prior_trained_at_48_px_knows_its_size_and_samples_at_it(tmp_path) -> None:
    """The clip size is logged, read back by `shipped.clip_size` (the size its flows are
    distilled at), and derived from the latents for a log written before the size was."""
    from flowgen.priors.shipped import clip_size

    videos, ids = _bars(8, seed=1, size=48)
    result = train_prior(videos, ids, PROMPTS, replace(quick(), vae_steps=2, steps=2))
    assert result.log["clips"] == {"frames": 9, "height": 48, "width": 48}
    root = save_prior(result, tmp_path / "prior")
    assert clip_size(root) == (9, 48, 48)
    assert sample_videos(root, videos[:1, 0], [PROMPTS[0]], steps=2, num_frames=9).shape == (1, 9, 48, 48, 3)
    summary = json.loads((root / "train_log.json").read_text())
    del summary["log"]["clips"]
    (root / "train_log.json").write_text(json.dumps(summary))
    assert clip_size(root) == (9, 48, 48)


def test_a_prior_with_a_2x_vae_trains_samples_and_distils(tmp_path) -> None:
    """``vae_downsample=2``: a 16x16 latent for a 32 px clip and 5 latent frames for 9 (time
    halved once); the transformer takes 2 mask channels, as the pipeline builds them from the
    VAE's temporal factor, and the saved prior samples through WanImageToVideoPipeline and
    gives an SDS gradient through `load_wan_prior`."""
    from flowgen.priors.shipped import clip_size

    videos, ids = _bars(8, seed=2)
    small = replace(quick(), vae_steps=2, steps=2, vae_downsample=2)
    result = train_prior(videos, ids, PROMPTS, small)
    assert result.log["latents"]["shape"] == [8, 4, 5, 16, 16]
    assert result.transformer.config.in_channels == 2 * 4 + 2
    root = save_prior(result, tmp_path / "prior")
    vae = json.loads((root / "vae" / "config.json").read_text())
    assert (vae["scale_factor_spatial"], vae["scale_factor_temporal"]) == (2, 2) and clip_size(root) == (9, 32, 32)
    assert load_trained(root).config.vae_downsample == 2
    assert sample_videos(root, videos[:1, 0], [PROMPTS[0]], steps=2, num_frames=9).shape == (1, 9, 32, 32, 3)
    config = replace(WanConfig(), max_sequence_length=small.max_sequence_length, num_views=1)
    prior = load_wan_prior(root, "i2v-a14b", "cpu", torch.float32, prompt=PROMPTS[0], config=config)
    assert prior.spatial_multiple == 4 and prior.temporal_factor == 2
    with pytest.raises(ConfigError, match="1 \\+ 4k frames"):  # the VAE encodes four frames at a time
        prior.check_size(11, 32, 32)
    video = torch.from_numpy(videos[:1]).float().div(255).requires_grad_(True)
    wan_sds_loss(prior, video, None, iteration=0, total=10).backward()
    assert torch.isfinite(video.grad).all() and video.grad.abs().sum() > 0

    with pytest.raises(ValueError, match="vae_downsample"):
        TrainConfig(vae_downsample=3)


def test_without_noise_the_vae_trains_on_its_posteriors_mean() -> None:
    """``vae_noise=0``: the first step's loss is the freshly built VAE's error decoding the
    posterior's mean (one clip repeated, so the batch's draw does not matter); with the noise
    it is another value."""
    from flowgen.priors.train import _vae
    from flowgen.priors.train_checks import clip_tensor

    videos = np.repeat(_bars(1, seed=4)[0], 4, axis=0)
    ids = np.arange(4) % 2
    plain = replace(quick(), vae_steps=1, steps=1, vae_frames=9, vae_noise=0.0)
    torch.manual_seed(plain.seed)
    fresh, x = _vae(plain), clip_tensor(videos[:1])
    with torch.no_grad():
        want = float((fresh.decode(fresh.encode(x).latent_dist.mean).sample - x).square().mean())
    first = train_prior(videos, ids, PROMPTS, plain).log["vae"]["loss"][0]
    noisy = train_prior(videos, ids, PROMPTS, replace(plain, vae_noise=1.0)).log["vae"]["loss"][0]
    assert first == pytest.approx(want, rel=1e-5) and abs(noisy - want) > 1e-3 * want


def test_image_steps_then_clip_steps_are_two_runs_in_one() -> None:
    """``vae_image_steps`` train the VAE on single frames first: the same VAE, bit for bit, as a
    run of those steps on 1-frame windows fine-tuned (``init``) by the clip steps; its losses
    are both phases' in order."""
    videos, ids = _bars(6, seed=5)
    both = replace(quick(), vae_image_steps=3, vae_steps=2, steps=1, vae_frames=5)
    one = train_prior(videos, ids, PROMPTS, both)
    first = train_prior(videos, ids, PROMPTS, replace(both, vae_image_steps=0, vae_steps=3, vae_frames=1))
    second = train_prior(videos, ids, PROMPTS, replace(both, vae_image_steps=0), init=first)
    assert one.log["vae"]["loss"] == first.log["vae"]["loss"] + second.log["vae"]["loss"]
    assert len(one.log["vae"]["loss"]) == 5 and one.log["vae"]["image_steps"] == 3
    for (name, a), b in zip(one.vae.state_dict().items(), second.vae.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_the_command_trains_at_the_size_and_width_it_is_given(tmp_path, capsys) -> None:
    """`train-prior --size 48 --vae-width 8 --latent-channels 4`, a few steps on 8 clips: the
    saved VAE has that width and latent, and the prior knows its clips' size; its clip set is
    refused at another size."""
    from chord_robot.app.cli import main
    from flowgen.priors.shipped import clip_size

    out, clips = tmp_path / "prior", tmp_path / "clips.npz"
    args = ["train-prior", "-o", str(out), "--clips", "8", "--motions", "laptop", "--vae-width", "8",
            "--latent-channels", "4", "--vae-steps", "1", "--steps", "1", "--check", "0", "--dataset", str(clips)]
    with pytest.raises(SystemExit) as e:
        main([*args, "--size", "48"])
    assert e.value.code in (0, None)
    vae = json.loads((out / "vae" / "config.json").read_text())
    assert (vae["base_dim"], vae["z_dim"]) == (8, 4) and clip_size(out) == (9, 48, 48)
    with pytest.raises(SystemExit) as e:
        main([*args, "-o", str(tmp_path / "again")])  # --size: 32 without --init
    assert e.value.code == 2 and "holds 48x48 clips; --size is 32" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()

    # scripts/vae_frames.py measures its VAE frame by frame at its own size
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "scripts" / "vae_frames.py"
    done = subprocess.run([sys.executable, str(script), str(out), "--motions", "laptop", "--clips", "2"],
                          capture_output=True, text=True, check=True)
    table = json.loads(done.stdout.strip().splitlines()[-1])
    assert table["size"] == [48, 48] and table["frames"] == 9 and len(table["object_psnr_db"]) == 9
    assert all(0.0 < s < 0.5 for s in table["object_share"])  # a laptop's lid turning: a part of the frame


def test_a_priors_size_is_read_from_its_latents_when_its_log_predates_it(tmp_path) -> None:
    """A log without ``clips``: (1 + 4 x (latent frames - 1), 4 x latent height, 4 x latent
    width) for a VAE of scale factors 4 and 4."""
    from flowgen.priors.shipped import clip_size

    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"scale_factor_temporal": 4, "scale_factor_spatial": 4}))
    (tmp_path / "train_log.json").write_text(json.dumps({"log": {"latents": {"shape": [10, 8, 5, 8, 12]}}}))
    assert clip_size(tmp_path) == (17, 32, 48)


@pytest.mark.parametrize("args, message", [
    (["--clips", "4"], "--clips must be >= 8"),
    (["--check-only"], "needs a trained model"),
    (["--init", "nowhere"], "--init needs a directory written by train-prior"),
    (["--textured", "2"], "--textured must be in"),
    (["--textured-clips", "-1"], "--textured-clips >= 0"),
    (["--vae-motion-weight", "-2"], "--vae-motion-weight must be >= 0"),
    (["--vae-first-frame-weight", "-1"], "--vae-first-frame-weight must be >= 0"),
    (["--size", "40"], "train-prior: --size must be a positive multiple of 16, got 40"),
    (["--vae-width", "0"], "--vae-width and --latent-channels must be >= 1"),
    (["--init", str(MODEL_DIR), "--vae-width", "32"], "--init keeps its VAE"),
    (["--init", str(MODEL_DIR), "--vae-downsample", "2"], "--init keeps its VAE"),
    (["--vae-downsample", "3"], "--vae-downsample must be 2, 4 or 8, got 3"),
    (["--vae-image-steps", "-1"], "--vae-image-steps must be >= 0, got -1"),
    (["--vae-noise", "-0.5"], "--vae-noise must be >= 0, got -0.5"),
    (["--move-share", "0.5-1.5"], "train-prior: --move-share must be a range within [0, 1]"),
    (["--pick-distance", "0.4-0.2"], "train-prior: --pick-distance must be a range within [0, 1]"),
    (["--init", str(MODEL_DIR), "--motions", "fold"], "--motions must include its motions"),
])
def test_train_prior_command_refuses_bad_input(tmp_path, capsys, args, message) -> None:
    from chord_robot.app.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train-prior", "-o", str(tmp_path / "out"), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
