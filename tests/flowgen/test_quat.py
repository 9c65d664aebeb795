"""The quaternion helpers' CPU kernels (`flowgen.quat`) against their torch forms: values,
gradients (broadcasting included) and the zero quaternion."""

from __future__ import annotations

import pytest
import torch

from flowgen import quat

F64 = torch.float64


def _random(*shape: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


@pytest.mark.parametrize(("a_shape", "b_shape"), [((7, 4), (7, 4)), ((5, 1, 4), (3, 4)), ((4,), (2, 3, 4))])
def test_multiply_kernel_matches_torch_values_and_gradients(a_shape, b_shape) -> None:
    a, b = _random(*a_shape, seed=1).requires_grad_(True), _random(*b_shape, seed=2).requires_grad_(True)
    got, want = quat.quat_multiply(a, b), quat._multiply_torch(a, b)
    assert got.grad_fn is not None and "Multiply" in type(got.grad_fn).__name__  # the kernel ran
    assert torch.allclose(got, want, atol=1e-14)
    weight = _random(*got.shape, seed=3)
    grads = torch.autograd.grad((got * weight).sum(), (a, b))
    wants = torch.autograd.grad((want * weight).sum(), (a, b))
    for g, w in zip(grads, wants):
        assert g.shape == w.shape and torch.allclose(g, w, atol=1e-12)
    assert torch.autograd.gradcheck(quat.quat_multiply, (a, b))


def test_normalize_and_matrix_kernels_match_torch_values_and_gradients() -> None:
    q = _random(6, 5, 4, seed=4).requires_grad_(True)
    for fused, plain, node in ((quat.quat_normalize, quat._normalize_torch, "Normalize"),
                               (quat.quat_to_matrix, quat._to_matrix_torch, "ToMatrix")):
        got, want = fused(q), plain(q)
        assert node in type(got.grad_fn).__name__  # the kernel ran
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-14)
        weight = _random(*got.shape, seed=5)
        (g,), (w,) = torch.autograd.grad((got * weight).sum(), q), torch.autograd.grad((want * weight).sum(), q)
        assert torch.allclose(g, w, atol=1e-12)
        assert torch.autograd.gradcheck(fused, (q,))


def test_float32_kernels_round_like_torch() -> None:
    """float32 in, float32 out, values and gradients within float32 rounding of the torch forms
    (a non-contiguous input among them)."""
    a = _random(3000, 4, seed=6, dtype=torch.float32).requires_grad_(True)
    b = _random(4, 3000, seed=7, dtype=torch.float32).t().requires_grad_(True)  # not contiguous
    pairs = ((lambda: quat.quat_multiply(a, b), lambda: quat._multiply_torch(a, b), 2e-6),
             (lambda: quat.quat_to_matrix(a), lambda: quat._to_matrix_torch(a), 1e-6),
             (lambda: quat.quat_normalize(b), lambda: quat._normalize_torch(b), 1e-6))
    for fused, plain, tolerance in pairs:
        got, want = fused(), plain()
        assert got.dtype == torch.float32 and (got - want).abs().max() < tolerance
        weight = _random(*got.shape, seed=8, dtype=torch.float32)
        grads = torch.autograd.grad((got * weight).sum(), (a, b), allow_unused=True)
        wants = torch.autograd.grad((want * weight).sum(), (a, b), allow_unused=True)
        for g, w in zip(grads, wants):
            assert (g is None) == (w is None)
            if g is not None:
                assert g.dtype == torch.float32 and (g - w).abs().max() <= 1e-5 * w.abs().max()


def test_empty_and_edited_outputs() -> None:
    """No quaternions in, none out (and an empty gradient); `quat_normalize`'s backward reads its
    output, so an in-place edit of the output before the backward is refused, not silently used."""
    empty = torch.zeros(0, 4, requires_grad=True)
    assert quat.quat_multiply(empty, empty).shape == (0, 4) and quat.quat_to_matrix(empty).shape == (0, 3, 3)
    (g,) = torch.autograd.grad(quat.quat_normalize(empty).sum(), empty)
    assert g.shape == (0, 4)
    q = _random(3, 4, seed=9).requires_grad_(True)
    unit = quat.quat_normalize(q)
    unit[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        unit.sum().backward()


def test_zero_quaternion_stays_finite_with_torch_gradient() -> None:
    """A zero quaternion normalises to zero (the norm clamped at eps) with the clamped norm's
    gradient 1 / eps, as the torch form; its matrix is the identity's neighbour I - 0."""
    zero = torch.zeros(2, 4, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(quat.quat_normalize(zero).sum(), zero)
    twin = zero.detach().clone().requires_grad_(True)
    (w,) = torch.autograd.grad(quat._normalize_torch(twin).sum(), twin)
    assert torch.equal(g, w) and torch.isfinite(g).all()
    assert torch.equal(quat.quat_to_matrix(zero.detach()), torch.eye(3, dtype=F64).expand(2, 3, 3))


def test_other_dtypes_take_the_torch_forms() -> None:
    q = _random(3, 4, seed=8, dtype=torch.bfloat16).requires_grad_(True)
    out = quat.quat_multiply(q, q)
    assert out.dtype == torch.bfloat16 and "Multiply" not in type(out.grad_fn).__name__
    assert out.shape == (3, 4) and quat.quat_to_matrix(q).shape == (3, 3, 3)
