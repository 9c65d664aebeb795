"""The video prior: fitting videos to the run, bad videos, the loss, the appearance stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chord_robot.errors import InputError
from flowgen.config import Decay
from flowgen.model import build_model
from flowgen.objective import _frames_and_slots, _pose, render_views, visibility
from flowgen.optimize import optimize
from flowgen.priors.video import VideoPrior
from flowgen.priors.video_io import GuideVideo, fit_video
from flowgen.shading import albedo, shade

from tests.flowgen.conftest import tiny_camera, tiny_config


def _clip(frames: int, width: int, height: int) -> np.ndarray:
    """Frames whose value encodes the frame index (to check time resampling)."""
    out = np.zeros((frames, height, width, 3), np.uint8)
    out[:] = (np.arange(frames) * 5)[:, None, None, None]
    return out


def test_frames_are_resampled_to_the_run_and_the_camera_to_the_size():
    camera = tiny_camera(64, 48)
    guide = fit_video(_clip(41, 64, 48), camera, num_frames=21, max_side=32)
    assert guide.frames.shape == (21, 24, 32, 3)
    # 41 -> 21 frames keeps every other frame: frame j shows source frame 2j
    np.testing.assert_allclose(guide.frames[:, 0, 0, 0].numpy() * 255, np.arange(21) * 10, atol=1e-3)
    assert (guide.camera.width, guide.camera.height) == (32, 24)
    assert guide.camera.fx == pytest.approx(camera.fx / 2) and guide.camera.cx == pytest.approx(camera.cx / 2)
    assert guide.mask is None and guide.background is None


def test_a_background_gives_a_mask_and_the_image_to_composite_over():
    camera = tiny_camera(32, 24)
    frames = np.full((5, 24, 32, 3), 100, np.uint8)
    frames[:, 8:16, 10:20] = 200
    guide = fit_video(frames, camera, 5, 32, background=np.full((24, 32, 3), 100, np.uint8))
    assert guide.mask is not None and guide.background is not None
    assert guide.mask.sum(dim=(1, 2)).tolist() == [80.0] * 5
    assert guide.background.shape == (24, 32, 3)


@pytest.mark.parametrize(
    "frames, size, message",
    [
        (41, (48, 64), None),
        (41, (40, 64), "sizes do not fit"),  # another aspect ratio than the camera's
        (10, (48, 64), "has 10 frames but the run needs 21"),
        (1, (48, 64), "at least 2"),
    ],
)
def test_videos_that_do_not_fit_are_refused(frames, size, message):
    camera = tiny_camera(64, 48)
    clip = _clip(frames, size[1], size[0])
    if message is None:
        fit_video(clip, camera, 21, 32)
        return
    with pytest.raises(InputError, match=message):
        fit_video(clip, camera, 21, 32)


def test_loss_is_zero_on_the_video_itself_and_grows_with_a_difference():
    cam = tiny_camera()
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(3, cam.height, cam.width, 3, generator=gen)
    mask = (frames.mean(-1) > 0.5).float()
    prior = VideoPrior((GuideVideo(frames, cam, mask, torch.zeros(cam.height, cam.width, 3)),))
    (view,) = prior.views([torch.tensor([1, 2])], 1.0)
    out = prior.loss(view, frames[1:], mask[1:], 1.0)
    assert out["photometric"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["silhouette"].item() == 0.0 and out["per_frame"].tolist() == [0.0, 0.0]
    worse = prior.loss(view, (frames[1:] + 0.1).clamp(0, 1), mask[1:] * 0, 1.0)
    assert worse["photometric"].item() > 0.05 and worse["silhouette"].item() == pytest.approx(mask[1:].mean().item())
    two = VideoPrior(prior.guides * 2)
    assert [v.source for v in two.views([torch.tensor([0])] * 3, 1.0, first=1)] == [1, 0, 1]
    (half,) = prior.views([torch.tensor([0])], 0.5)  # the pyramid level compares half-size images
    assert (half.camera.width, half.camera.height) == (16, 12) and half.background.shape == (12, 16, 3)
    assert prior.loss(half, torch.zeros(1, 12, 16, 3), torch.zeros(1, 12, 16), 0.5)["photometric"] > 0


def test_appearance_stage_fits_visible_colours_and_leaves_hidden_ones(hinge_scene):
    """Frame 0 rendered from the model with altered colours: the stage recovers them."""
    config = tiny_config(num_frames=2, iterations=1, appearance_iterations=60, max_side=48,
                         lr_deform=Decay(1e-12, 1e-12))
    model = build_model(hinge_scene, config)
    cam = tiny_camera(48, 36)
    background = torch.full((36, 48, 3), 0.3)
    truth = build_model(hinge_scene, config)
    with torch.no_grad():  # the 'video': the scan's colours, the lid tinted red
        truth.moving[0].albedo_logit[:, 0] += 1.5
        views = VideoPrior((GuideVideo(torch.zeros(2, 36, 48, 3), cam, None, background),)).views(
            [torch.tensor([0, 1])], 1.0)
        needed, slot = _frames_and_slots(views)
        (_, rgb, _, _, alpha), = list(render_views(truth, views, _pose(truth, needed, False), slot))
    prior = VideoPrior((GuideVideo(rgb, cam, (alpha > 0.5).float(), background),))
    shown = visibility(model, prior.views([torch.tensor([0])], 1.0))[0]
    assert 0.2 < shown.float().mean() < 0.8
    def colours(m):  # what the camera sees of each Gaussian at rest: albedo x shading
        obj = m.moving[0]
        return shade(m, albedo(obj.albedo_logit), obj.rest.normals).detach()

    start = albedo(model.moving[0].albedo_logit).detach()
    before = (colours(model) - colours(truth)).abs().mean(-1)
    state = optimize(model, prior, config)
    after = (colours(model) - colours(truth)).abs().mean(-1)
    first = [h["photometric"] for h in state.history[:3]]
    last = [h["photometric"] for h in state.history[-4:-1]]
    assert np.mean(last) < 0.5 * np.mean(first)
    assert after[shown].mean() < 0.5 * before[shown].mean()
    assert torch.equal(albedo(model.moving[0].albedo_logit)[~shown], start[~shown])  # never seen, never changed
