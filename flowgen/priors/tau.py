"""The tau (noise-level) schedule of the SDS prior (paper §3.2, eq. 4) and the guidance annealing.

(The learning-rate and loss-weight schedules are `flowgen.schedules`.)

The paper samples tau not uniformly but from W(tau) = w(tau) / integral(w), the video model's
training weight normalised, and anneals it: at iteration i of I,

    tau_i = h^-1(1 - i / (I + 1)),      h(tau) = integral_0^tau W(t) dt  (the CDF of W).

So tau goes from high noise (coarse motion) to low noise (detail), and the iterations are
spread over noise levels exactly as W says: their empirical distribution is W's quantiles.
Iterations here count from 0 (as everywhere in `flowgen.schedules`); iteration ``it`` is the
paper's i = it + 1, so tau never reaches the degenerate 1 (pure noise) or 0.

W is tabulated on a grid and h inverted numerically (piecewise-linear), so any weight works;
the registry `DENSITIES` holds the ones we know:

- ``shifted`` (default): the distribution of the flow scheduler's shifted sigma,
  sigma = s u / (1 + (s - 1) u) with u ~ U(0, 1) and s the scheduler's ``flow_shift``
  (5.0 for Wan 2.2 I2V A14B and TI2V 5B). Its density is s / (s - (s - 1) tau)^2.
- ``uniform``: W = 1 (plain RF-SDS).
- ``logit_normal``: SD3's training density, logit(tau) ~ N(0, 1).

Everything here is a pure function of the iteration; nothing is random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "DENSITIES",
    "NoiseLevels",
    "TauWeight",
    "cdf",
    "density",
    "guidance_at",
    "inverse_cdf",
    "noise_levels",
    "shifted_cdf",
    "switch_iteration",
    "tau_at",
    "taus",
]

TauWeight = Literal["shifted", "uniform", "logit_normal"]


def _shifted(tau: np.ndarray, shift: float) -> np.ndarray:
    return shift / (shift - (shift - 1.0) * tau) ** 2


def _uniform(tau: np.ndarray, shift: float) -> np.ndarray:
    return np.ones_like(tau)


def _logit_normal(tau: np.ndarray, shift: float) -> np.ndarray:
    t = np.clip(tau, 1e-12, 1 - 1e-12)
    logit = np.log(t / (1 - t))
    out = np.exp(-0.5 * logit**2) / (math.sqrt(2 * math.pi) * t * (1 - t))
    return np.where((tau <= 0) | (tau >= 1), 0.0, out)


DENSITIES = {"shifted": _shifted, "uniform": _uniform, "logit_normal": _logit_normal}
"""Weight name -> w(tau, shift) on [0, 1] (not necessarily normalised)."""


@dataclass(frozen=True)
class NoiseLevels:
    """W tabulated on a grid over [0, 1], with its CDF.

    Attributes:
        weight: which density (a key of `DENSITIES`).
        shift: the flow shift the ``shifted`` density uses.
        grid: (G,) increasing tau values from 0 to 1.
        pdf: (G,) W on the grid (integrates to 1 by the trapezoid rule).
        cdf: (G,) h on the grid, from 0 to 1, non-decreasing.
    """

    weight: TauWeight
    shift: float
    grid: np.ndarray
    pdf: np.ndarray
    cdf: np.ndarray


def noise_levels(weight: TauWeight = "shifted", shift: float = 5.0, points: int = 8193) -> NoiseLevels:
    """Tabulate W = w / integral(w) and its CDF h (trapezoid rule) on ``points`` grid values."""
    if weight not in DENSITIES:
        raise ValueError(f"unknown noise-level weight {weight!r}; one of {', '.join(DENSITIES)}")
    if weight == "shifted" and not shift > 0:
        raise ValueError(f"the flow shift must be positive, got {shift}")
    grid = np.linspace(0.0, 1.0, points)
    w = DENSITIES[weight](grid, shift)
    steps = 0.5 * (w[1:] + w[:-1]) * np.diff(grid)
    total = steps.sum()
    cum = np.concatenate(([0.0], np.cumsum(steps))) / total
    return NoiseLevels(weight, float(shift), grid, w / total, cum)


def density(levels: NoiseLevels, tau: np.ndarray | float) -> np.ndarray:
    """W(tau), interpolated from the table."""
    return np.interp(tau, levels.grid, levels.pdf)


def cdf(levels: NoiseLevels, tau: np.ndarray | float) -> np.ndarray:
    """h(tau) = P(T <= tau) under W."""
    return np.interp(tau, levels.grid, levels.cdf)


def inverse_cdf(levels: NoiseLevels, u: np.ndarray | float) -> np.ndarray:
    """h^-1(u): the tau whose CDF is ``u`` (linear interpolation of the tabulated inverse)."""
    return np.interp(u, levels.cdf, levels.grid)


def tau_at(levels: NoiseLevels, it: int, total: int) -> float:
    """tau at iteration ``it`` (0 .. total - 1) of ``total``: h^-1(1 - (it + 1) / (total + 1))."""
    if not 0 <= it < total:
        raise ValueError(f"iteration {it} outside 0 .. {total - 1}")
    return float(inverse_cdf(levels, 1.0 - (it + 1) / (total + 1)))


def taus(levels: NoiseLevels, total: int) -> np.ndarray:
    """(total,) tau of every iteration, strictly decreasing."""
    return inverse_cdf(levels, 1.0 - np.arange(1, total + 1) / (total + 1))


def guidance_at(start: float, end: float, it: int, total: int) -> float:
    """Classifier-free guidance scale, linear from ``start`` (iteration 0) to ``end`` (last)."""
    s = min(max(it / max(total - 1, 1), 0.0), 1.0)
    return (1 - s) * start + s * end


def switch_iteration(levels: NoiseLevels, total: int, boundary: float) -> int | None:
    """The first iteration whose tau is below ``boundary`` (the low-noise expert's first), or
    None when every tau stays at or above it. Because tau decreases, it is the only switch."""
    below = np.nonzero(taus(levels, total) < boundary)[0]
    return int(below[0]) if len(below) else None


def shifted_cdf(tau: np.ndarray | float, shift: float) -> np.ndarray:
    """Closed-form CDF of the ``shifted`` density: tau / (s - (s - 1) tau) (tests compare)."""
    tau = np.asarray(tau, dtype=np.float64)
    return tau / (shift - (shift - 1.0) * tau)
