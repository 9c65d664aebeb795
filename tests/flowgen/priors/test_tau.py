"""The annealed noise-level schedule (paper eq. 4): tau_i = h^-1(1 - i / (I + 1)).

Known answers: the ``shifted`` density has the closed-form CDF tau / (s - (s - 1) tau), the
logit-normal one Phi(logit tau); the iterations' taus are W's quantiles, so their empirical
CDF is within 1 / (I + 1) of W's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowgen.priors.tau import (
    cdf,
    guidance_at,
    inverse_cdf,
    noise_levels,
    shifted_cdf,
    switch_iteration,
    tau_at,
    taus,
)

ITERATIONS = 2000


def _ks(samples: np.ndarray, true_cdf) -> float:
    """Kolmogorov-Smirnov distance between the empirical CDF of ``samples`` and ``true_cdf``."""
    x = np.sort(samples)
    n = len(x)
    f = true_cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def _logit_normal_cdf(tau: np.ndarray) -> np.ndarray:
    logit = np.log(tau / (1 - tau))
    return np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in logit])


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0])
def test_tabulated_cdf_matches_closed_form(shift):
    levels = noise_levels("shifted", shift)
    tau = np.linspace(0, 1, 1001)
    assert np.max(np.abs(cdf(levels, tau) - shifted_cdf(tau, shift))) < 1e-6
    u = np.linspace(0, 1, 1001)
    exact = shift * u / (1 + (shift - 1) * u)  # the scheduler's own shift map
    assert np.max(np.abs(inverse_cdf(levels, u) - exact)) < 1e-5


def test_taus_strictly_decrease_and_follow_w():
    levels = noise_levels("shifted", 5.0)
    t = taus(levels, ITERATIONS)
    assert t.shape == (ITERATIONS,)
    assert np.all(np.diff(t) < 0)
    assert 0.9998 < t[0] < 1.0 and 0.002 < t[-1] < 0.003  # 5u / (1 + 4u) at u = 2000/2001, 1/2001
    ks = _ks(t, lambda x: shifted_cdf(x, 5.0))
    assert ks < 0.05
    assert ks < 1.5 / (ITERATIONS + 1)  # quantiles: within one step of the true CDF
    # a uniform spread of tau would be far from W: the schedule is not just linear in i
    assert _ks(np.linspace(0.999, 0.0005, ITERATIONS), lambda x: shifted_cdf(x, 5.0)) > 0.2


@pytest.mark.parametrize("weight,true_cdf", [("uniform", lambda x: x), ("logit_normal", _logit_normal_cdf)])
def test_other_weights_follow_their_cdf(weight, true_cdf):
    t = taus(noise_levels(weight), ITERATIONS)
    assert np.all(np.diff(t) < 0)
    assert _ks(t, true_cdf) < 0.05


def test_tau_at_is_a_pure_function_of_the_iteration():
    levels = noise_levels("shifted", 5.0)
    table = taus(levels, 100)
    assert [tau_at(levels, i, 100) for i in (0, 37, 99)] == pytest.approx(table[[0, 37, 99]], abs=0)
    # the paper's i = it + 1: iteration 0 is h^-1(1 - 1/(I+1)), never tau = 1
    assert tau_at(levels, 0, 100) == pytest.approx(5 * (100 / 101) / (1 + 4 * (100 / 101)), abs=1e-5)
    with pytest.raises(ValueError):
        tau_at(levels, 100, 100)


def test_expert_switch_happens_exactly_once_where_w_says():
    levels = noise_levels("shifted", 5.0)
    t = taus(levels, ITERATIONS)
    high = t >= 0.9
    assert np.count_nonzero(high[1:] != high[:-1]) == 1
    k = switch_iteration(levels, ITERATIONS, 0.9)
    assert high[:k].all() and not high[k:].any()
    # h(0.9) = 0.9 / (5 - 4 * 0.9) = 9/14, so tau_i < 0.9 iff 1 - (i + 1)/(I + 1) < 9/14:
    # the high-noise expert runs the first floor((I + 1) 5/14) = 714 iterations
    assert k == math.floor((ITERATIONS + 1) * 5 / 14) == 714
    assert switch_iteration(levels, ITERATIONS, 1.0) == 0
    assert switch_iteration(levels, ITERATIONS, 1e-6) is None


def test_guidance_decays_linearly_from_25_to_12():
    assert guidance_at(25.0, 12.0, 0, 2000) == 25.0
    assert guidance_at(25.0, 12.0, 1999, 2000) == 12.0
    assert guidance_at(25.0, 12.0, 1000, 2001) == pytest.approx(18.5)
    values = [guidance_at(25.0, 12.0, i, 50) for i in range(50)]
    assert np.allclose(np.diff(values), -13.0 / 49)


def test_unknown_weight_is_refused():
    with pytest.raises(ValueError, match="shifted"):
        noise_levels("cosine")  # type: ignore[arg-type]
