"""Shared fixtures of the flowgen tests: a small hinged-box scene and a tiny run config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from chord_robot import synth
from chord_robot.camera import Camera
from chord_robot.app.scenes import load_scene
from chord_robot.scene import Scene
from flowgen.config import FlowConfig, video_weights
from flowgen.control import ControlConfig
from flowgen.mesh_fit import MeshFitConfig
from flowgen.priors.video import VideoPrior
from flowgen.priors.video_io import GuideVideo


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine torch's thread pool waits on busy cores
    (measured 10x slower on these small problems under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def hinge_scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Table + hinged box (base and lid: one object, two parts), coarsely meshed."""
    box = synth.hinged_box(resolution=0.03, patches=4)
    return load_scene(synth.write_hinged_box_scan(tmp_path_factory.mktemp("hinge"), box))


def tiny_config(**changes) -> FlowConfig:
    """A run small enough for unit tests (a few hundred Gaussians, 32x24 images, 5 frames)."""
    base = FlowConfig(
        num_frames=5, iterations=8, appearance_iterations=2, max_side=32, num_gaussians=400,
        num_static_gaussians=100, controls=ControlConfig(target_surface_points=400, num_controls=(6, 16)),
        views_per_iteration=1, frames_per_view=2, checkpoint_every=3, split_iteration=None,
        progressive=0.0, weights=video_weights(), fine_start=0.5, mesh_fit=MeshFitConfig(enabled=False),
    )
    return dataclasses.replace(base, **changes)


def tiny_camera(width: int = 32, height: int = 24) -> Camera:
    return Camera.look_at(np.array([0.34, -0.60, 0.66]), np.array([0.0, 0.04, 0.13]), width, height, fov_y_deg=32.0)


def tiny_prior(num_frames: int, seed: int = 0, background: bool = True) -> VideoPrior:
    """A 'video' of smooth random images with a background and a mask (mechanics tests only)."""
    gen = torch.Generator().manual_seed(seed)
    cam = tiny_camera()
    base = torch.rand(1, cam.height // 4, cam.width // 4, 3, generator=gen)
    drift = torch.linspace(0, 0.2, num_frames)[:, None, None, None]
    small = (base + drift).clamp(0, 1).permute(0, 3, 1, 2)
    frames = torch.nn.functional.interpolate(small, size=(cam.height, cam.width), mode="bilinear")
    frames = frames.permute(0, 2, 3, 1).contiguous()
    bg = mask = None
    if background:
        bg = torch.full((cam.height, cam.width, 3), 0.5)
        mask = (frames.mean(-1) > 0.5).float()
    return VideoPrior((GuideVideo(frames, cam, mask, bg),))
