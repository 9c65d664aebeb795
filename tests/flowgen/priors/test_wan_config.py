"""The Wan prior's settings and camera sampling, without models; importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowgen.priors.cameras import CameraSampling, centred_on, sample_angles, sample_cameras
from flowgen.priors.wan import WanConfig, i2v_a14b, ti2v_5b

# -- cameras --------------------------------------------------------------------------------


def test_cameras_cover_the_ranges_and_frame_the_objects():
    points = np.random.default_rng(0).normal(size=(500, 3)) * [0.3, 0.2, 0.1] + [1.0, -0.5, 0.4]
    sampling = CameraSampling(azimuth_deg=(-100.0, -20.0), elevation_deg=(15.0, 35.0))
    cams = sample_cameras(points, 832, 464, sampling, 4, seed=3, iteration=11)
    assert len(cams) == 4
    rows = sample_angles(sampling, 4, np.random.default_rng([3, 11, 0x57A1]))
    # stratified: one azimuth in each quarter of the range
    assert np.array_equal(np.floor((rows[:, 0] + 100.0) / 20.0), [0, 1, 2, 3])
    assert np.all((rows[:, 1] >= 15) & (rows[:, 1] <= 35))
    centre = (points.min(0) + points.max(0)) / 2
    for cam, (az, el, _) in zip(cams, rows):
        d = cam.position - centre
        assert np.degrees(np.arctan2(d[1], d[0])) == pytest.approx(az, abs=1e-6)
        assert np.degrees(np.arcsin(d[2] / np.linalg.norm(d))) == pytest.approx(el, abs=1e-6)
        uv, depth = cam.project(points)
        assert (depth > 0).all()
        assert ((uv >= 0) & (uv <= [832, 464])).all()
    again = sample_cameras(points, 832, 464, sampling, 4, seed=3, iteration=11)
    other = sample_cameras(points, 832, 464, sampling, 4, seed=3, iteration=12)
    assert all(np.array_equal(a.world_from_camera, b.world_from_camera) for a, b in zip(cams, again))
    assert not np.allclose(cams[0].world_from_camera, other[0].world_from_camera)
    moved = centred_on(sampling, cams[0], centre)
    assert np.mean(moved.azimuth_deg) == pytest.approx(rows[0, 0], abs=1e-6)
    assert moved.azimuth_deg[1] - moved.azimuth_deg[0] == pytest.approx(80.0)


def test_presets_and_config_checks():
    paper = i2v_a14b()
    assert (paper.guidance_start, paper.guidance_end, paper.boundary_ratio, paper.num_views) == (25.0, 12.0, 0.9, 4)
    assert paper.tau_weight == "shifted" and paper.shift is None
    assert ti2v_5b().boundary_ratio is None and ti2v_5b().variant == "ti2v-5b"
    with pytest.raises(ValueError, match="boundary_ratio is required"):
        WanConfig(boundary_ratio=None)
    with pytest.raises(ValueError, match="unknown Wan variant"):
        WanConfig(variant="wan-3")  # type: ignore[arg-type]
    assert paper.tau_schedule == "annealed"
    with pytest.raises(ValueError, match="unknown tau schedule 'random'; one of annealed, uniform"):
        WanConfig(tau_schedule="random")
    assert paper.sds_space == "latent"  # the paper's residual; "image" is an extension
    with pytest.raises(ValueError, match="unknown SDS space 'pixels'; one of latent, image"):
        WanConfig(sds_space="pixels")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_blur must be two fractions >= 0"):
        WanConfig(image_blur=(0.2, -0.1))


def test_importing_the_module_does_not_import_diffusers():
    code = "import sys, flowgen.priors.wan; assert 'diffusers' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
