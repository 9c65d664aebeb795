"""Cameras sampled around the scene for the SDS prior (paper Fig. 2: "sampling camera poses at
each iteration").

Every iteration renders the 4D model from V new cameras on a sphere around the objects,
looking at their centre from far enough that they all fit (`chord_robot.camera.frame_points`).
Azimuths are stratified - the range is cut into V equal slices and each view draws in its own -
so a batch always sees the scene from spread-out sides. The first frame each camera renders
is that view's image condition for the image-to-video model.

Draws are a pure function of (seed, iteration): a resumed run samples the same cameras.
Angles are in degrees, azimuth around world z from +x, elevation above the xy plane (z up,
as `frame_points`; its default view, azimuth -60, elevation 35, is inside the default ranges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from chord_robot.camera import Camera, frame_points

__all__ = ["CameraSampling", "centred_on", "iteration_rng", "sample_angles", "sample_cameras"]


@dataclass(frozen=True)
class CameraSampling:
    """Where the per-iteration cameras may be."""

    azimuth_deg: tuple[float, float] = (-120.0, 0.0)
    """Azimuth range (degrees around z from +x); default +-60 around frame_points' -60."""
    elevation_deg: tuple[float, float] = (10.0, 40.0)
    """Elevation range above the xy plane (degrees)."""
    margin: tuple[float, float] = (1.1, 1.4)
    """Distance range as a multiple of the distance that just fits the objects' bounding sphere."""
    fov_y_deg: float = 45.0
    """Vertical field of view (degrees)."""
    stratified: bool = True
    """Each of the V views draws its azimuth in its own 1/V slice of the range."""

    def __post_init__(self) -> None:
        for name in ("azimuth_deg", "elevation_deg", "margin"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
        if not (-90.0 < self.elevation_deg[0] and self.elevation_deg[1] < 90.0):
            raise ValueError(f"elevations must be inside (-90, 90), got {self.elevation_deg}")
        if self.margin[0] <= 0 or not 0 < self.fov_y_deg < 180:
            raise ValueError("margin must be positive and fov_y_deg in (0, 180)")


def iteration_rng(seed: int, iteration: int) -> np.random.Generator:
    """The generator of one iteration's draws: a function of (seed, iteration) only."""
    return np.random.default_rng([seed, iteration, 0x57A1])


def sample_angles(sampling: CameraSampling, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3) rows of (azimuth_deg, elevation_deg, margin)."""
    assert count >= 1, count
    lo, hi = sampling.azimuth_deg
    if sampling.stratified:
        u = (np.arange(count) + rng.random(count)) / count
    else:
        u = rng.random(count)
    az = lo + (hi - lo) * u
    el = rng.uniform(*sampling.elevation_deg, size=count)
    margin = rng.uniform(*sampling.margin, size=count)
    return np.stack([az, el, margin], axis=1)


def sample_cameras(points: np.ndarray, width: int, height: int, sampling: CameraSampling,
                   count: int, seed: int, iteration: int) -> list[Camera]:
    """``count`` cameras around ``points`` for iteration ``iteration``.

    Args:
        points: (N, 3) world points to keep in view (the moving objects' Gaussians or scan).
        width, height: image size in pixels.
        sampling: the ranges.
        count: V, views this iteration.
        seed: the run's seed.
        iteration: the motion iteration (draws depend on it and ``seed`` only).
    Returns:
        V cameras (OpenCV convention) looking at the centre of the points' bounding box.
    """
    points = np.asarray(points, dtype=np.float64)
    assert points.ndim == 2 and points.shape[1] == 3 and len(points) > 0, points.shape
    rows = sample_angles(sampling, count, iteration_rng(seed, iteration))
    return [frame_points(points, width, height, azimuth_deg=float(az), elevation_deg=float(el),
                         fov_y_deg=sampling.fov_y_deg, margin=float(m)) for az, el, m in rows]


def centred_on(sampling: CameraSampling, camera: Camera, target: np.ndarray) -> CameraSampling:
    """The same ranges moved so that their centres are ``camera``'s direction from ``target``
    (e.g. the user's camera of `chord-robot render`)."""
    d = camera.position - np.asarray(target, dtype=np.float64)
    az = math.degrees(math.atan2(d[1], d[0]))
    el = math.degrees(math.atan2(d[2], math.hypot(d[0], d[1])))
    half_az = 0.5 * (sampling.azimuth_deg[1] - sampling.azimuth_deg[0])
    half_el = 0.5 * (sampling.elevation_deg[1] - sampling.elevation_deg[0])
    el_lo, el_hi = max(el - half_el, -89.0), min(el + half_el, 89.0)
    return replace(sampling, azimuth_deg=(az - half_az, az + half_az), elevation_deg=(el_lo, el_hi))
