"""RF-SDS against analytic rectified flows whose exact velocity is known.

A flow whose data is one point x*: z_tau = (1 - tau) x* + tau eps, so eps = (z_tau - (1 - tau) x*) / tau
and the exact velocity is v*(z_tau) = eps - x* = (z_tau - x*) / tau. The RF-SDS gradient is then

    v*(z_tau) - (eps - z) = ((1 - tau) z + tau eps - x*) / tau - eps + z = (z - x*) / tau,

independent of the noise: descending it converges to x*. With guidance between a conditional
point x_c and an unconditional x_u the velocity is v_u + s (v_c - v_u) and the fixed point is
x_u + s (x_c - x_u). For Gaussian data N(m, sigma^2) the expected gradient is
tau / ((1 - tau)^2 + tau^2) (z - m) (sigma = 1): SDS is mode-seeking and collapses onto m.
"""

from __future__ import annotations

import math

import pytest
import torch

from flowgen.priors.sds import (
    Embeddings,
    blur_frames,
    blur_sigma,
    guided_velocity,
    noisy_latents,
    rf_sds_gradient,
    surrogate_loss,
)
from flowgen.priors.tau import noise_levels, tau_at


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster than two fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def point_mass(z_tau: torch.Tensor, tau: float, target: torch.Tensor) -> torch.Tensor:
    """Exact velocity of a flow whose data is the single point ``target`` (the embedding)."""
    return (z_tau - target) / tau


def gaussian(sigma: float):
    """Exact velocity of a flow whose data is N(mean, sigma^2 I), the mean being the embedding."""

    def model(z_tau, tau, mean):
        a = 1.0 - tau
        k = a * sigma**2 / (a * a * sigma**2 + tau * tau)
        x_hat = mean + k * (z_tau - a * mean)  # E[x | z_tau]
        eps_hat = (z_tau - a * x_hat) / tau  # E[eps | z_tau]
        return eps_hat - x_hat

    return model


def _points(n: int = 3, dim: int = 64, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, dim, generator=gen) for _ in range(n)]


def _optimise(model, embeddings: Embeddings, scale: float, iterations: int = 400, seed: int = 0) -> torch.Tensor:
    """Adam on a free latent through the surrogate loss, the annealed tau, log-linear lr - the loop's recipe."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.nn.Parameter(torch.randn(1, 64, generator=gen))
    opt = torch.optim.Adam([z], lr=0.3)
    levels = noise_levels("shifted", 5.0)
    for it in range(iterations):
        s = it / (iterations - 1)
        opt.param_groups[0]["lr"] = math.exp((1 - s) * math.log(0.3) + s * math.log(1e-3))
        tau = tau_at(levels, it, iterations)
        g = rf_sds_gradient(z, tau, embeddings, model, scale, torch.randn(z.shape, generator=gen))
        loss = surrogate_loss(z, g, 0.5 * g.square().sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach()


def test_point_mass_velocity_is_exact():
    target, z, eps = _points(3)
    for tau in (0.05, 0.5, 0.95):
        z_tau = noisy_latents(target, eps, tau)
        assert torch.allclose(point_mass(z_tau, tau, target), eps - target, atol=1e-5)
        # the RF-SDS gradient does not depend on the noise: (z - x*) / tau
        g = rf_sds_gradient(z, tau, Embeddings(target, None), point_mass, 1.0, eps)
        assert torch.allclose(g, (z - target) / tau, atol=1e-4)


def test_gradient_step_contracts_towards_the_target_exactly():
    target, z, _ = _points(3)
    gen = torch.Generator().manual_seed(3)
    eta = 0.3
    levels = noise_levels("shifted", 5.0)
    error0 = (z - target).norm()
    for it in range(20):
        tau = tau_at(levels, it, 20)
        g = rf_sds_gradient(z, tau, Embeddings(target, None), point_mass, 1.0, torch.randn(z.shape, generator=gen))
        z = z - eta * tau * g  # z - x* shrinks by exactly (1 - eta) per step
    assert float((z - target).norm() / error0) == pytest.approx((1 - eta) ** 20, rel=1e-3)


def test_optimising_a_free_latent_converges_to_the_target():
    target, other, _ = _points(3)
    z = _optimise(point_mass, Embeddings(target, None), 1.0)
    assert (z - target).abs().max() < 2e-3
    # the negative embedding with scale 1 changes nothing
    z = _optimise(point_mass, Embeddings(target, other), 1.0)
    assert (z - target).abs().max() < 2e-3


def test_guidance_extrapolates_away_from_the_negative():
    target, other, _ = _points(3)
    z = _optimise(point_mass, Embeddings(target, other), 2.0, iterations=600)
    expected = other + 2.0 * (target - other)
    assert (z - expected).abs().max() < 5e-3
    assert (z - target).abs().max() > 0.5  # not the conditional point itself


def test_gaussian_data_collapses_onto_its_mean():
    (mean,) = _points(1, seed=5)
    z = _optimise(gaussian(1.0), Embeddings(mean, None), 1.0)
    # a sample of N(m, 1) would be ~1 away per coordinate; SDS lands on the mode
    assert (z - mean).abs().mean() < 0.1
    assert (z - mean).std() < 0.15


def test_no_gradient_reaches_the_model():
    target, z, eps = _points(3)
    weight = torch.nn.Parameter(torch.tensor(1.0))

    def model(z_tau, tau, emb):
        return weight * (z_tau - emb) / tau

    latents = z.clone().requires_grad_(True)
    g = rf_sds_gradient(latents, 0.4, Embeddings(target, None), model, 1.0, eps)
    assert not g.requires_grad
    surrogate_loss(latents, g).backward()
    assert weight.grad is None
    assert torch.equal(latents.grad, g)


def test_surrogate_has_the_given_gradient_and_value():
    x = torch.randn(4, 5, requires_grad=True)
    g = torch.randn(4, 5)
    loss = surrogate_loss(x * 2.0, g, value=7.5)
    assert float(loss.detach()) == 7.5
    loss.backward()
    assert torch.equal(x.grad, 2.0 * g)


def test_batched_and_separate_guidance_agree():
    target, other, z = _points(3)
    z = torch.cat([z, 2 * z])
    emb = Embeddings(target, other)
    a = guided_velocity(point_mass, z, 0.3, emb, 7.0, batch=True)
    b = guided_velocity(point_mass, z, 0.3, emb, 7.0, batch=False)
    assert torch.allclose(a, b, atol=1e-5)
    expected = point_mass(z, 0.3, other) + 7.0 * (point_mass(z, 0.3, target) - point_mass(z, 0.3, other))
    assert torch.allclose(a, expected, atol=1e-4)


# -- the image space's blur (WanConfig.sds_space "image") ---------------------------------------


def test_blur_is_the_separable_gaussian_with_replicated_edges():
    from scipy.ndimage import gaussian_filter

    frames = torch.rand(2, 3, 20, 24, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = blur_frames(frames, 2.5)
    want = gaussian_filter(frames.numpy(), sigma=(0, 0, 2.5, 2.5, 0), mode="nearest", truncate=3.0)
    assert got.shape == frames.shape and float((got - torch.as_tensor(want)).abs().max()) < 1e-12
    assert blur_frames(frames, 0.2) is frames


def test_blur_narrows_geometrically_from_start_to_end():
    assert blur_sigma(6.0, 1.0, 0, 300) == 6.0 and blur_sigma(6.0, 1.0, 299, 300) == pytest.approx(1.0)
    assert blur_sigma(6.0, 1.0, 149, 299) == pytest.approx(6.0**0.5)  # halfway: the geometric mean
    assert blur_sigma(0.0, 0.0, 5, 10) == 0.0 and blur_sigma(4.0, 0.0, 5, 11) == pytest.approx(2.0)  # linear to 0
    assert blur_sigma(6.0, 1.0, 0, 1) == 1.0  # a run of one iteration: the end's


def _blob(centre: torch.Tensor, size: int = 32, radius: float = 1.5) -> torch.Tensor:
    """(1, size, size, 1) a small bright disc at ``centre`` (x, y in pixels), differentiable in it."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    d2 = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2
    return torch.exp(-0.5 * d2 / radius**2)[None, :, :, None]


@pytest.mark.parametrize("start", [0.0, 6.0])
def test_a_coarse_to_fine_blur_pulls_a_small_object_to_a_target_it_does_not_overlap(start):
    """Why the image space blurs: a 3 px object 16 px from where the target draws it gets no pull
    from the sharp residual (their pixels do not overlap; Adam's first steps move it 0.5 px), and
    reaches the target when the blur starts at 6 px and narrows to 1 px."""
    target = _blob(torch.tensor([24.0, 16.0]))
    centre = torch.nn.Parameter(torch.tensor([8.0, 16.0], dtype=torch.float64))
    opt = torch.optim.Adam([centre], lr=0.5)
    for it in range(200):
        sigma = blur_sigma(start, 1.0 if start else 0.0, it, 200)
        loss = 0.5 * (blur_frames(_blob(centre), sigma) - blur_frames(target, sigma)).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    error = float((centre.detach() - torch.tensor([24.0, 16.0], dtype=torch.float64)).norm())
    if start:
        assert error < 0.05
    else:
        assert error > 15.4  # Adam's first steps: 0.5 px of the 16
