"""The trajectory optimiser's reduction of N attached points to four with the same cost, and
its cost types' order in a jaxls problem."""

from __future__ import annotations

import jax
import jaxls
import numpy as np

from planning.trajopt import moment_points, named_cost


def cost(local, target, weights, e):
    """(S,) sum_i w_i |E [p_i; 1] - q_i|^2 per step for a 3x4 E."""
    moved = local @ e[:, :3].T + e[:, 3]
    return (weights * ((moved - target) ** 2).sum(-1)).sum(-1)


def test_four_points_have_the_cost_of_n_up_to_a_constant():
    """For rigid and arbitrary 3x4 transforms the difference of the two costs is the same
    constant per step - also for a step whose points are collinear (singular moments), a
    single point, padding (zero weights) and a step without any weight."""
    rng = np.random.default_rng(1)
    steps, n = 6, 40
    local = rng.normal(size=(steps, n, 3)) * 0.05
    target = rng.normal(size=(steps, n, 3))
    weights = rng.random((steps, n))
    weights[:, 30:] = 0.0
    weights[2] = 0.0
    local[3] = np.array([0.01, 0.02, 0.03]) + local[3, :, :1] * np.array([1.0, 0.0, 0.0])
    weights[4, 1:] = 0.0
    four = moment_points(local, target, weights)
    assert [a.shape for a in four] == [(steps, 4, 3), (steps, 4, 3), (steps, 4)]
    np.testing.assert_allclose(four[2].sum(1), weights.sum(1))
    differences = []
    for _ in range(5):
        e = np.concatenate([rng.normal(size=(3, 3)), rng.normal(size=(3, 1))], axis=1)
        differences.append(cost(local, target, weights, e) - cost(*four, e))
    differences = np.array(differences)
    assert np.ptp(differences, axis=0).max() < 1e-9 * np.abs(differences).max()
    assert differences[:, 2].max() == 0.0 and np.all(four[2][2] == 0)


def test_cost_types_sort_by_their_residuals_names():
    """jaxls stacks cost groups in the order of their tree structures' text; that order must
    follow the residuals' names, not memory addresses that change from process to process
    (with `jaxls.Cost.factory` it would be the order of 20 anonymous lambdas' addresses)."""

    class Var(jaxls.Var[jax.Array], default_factory=lambda: jax.numpy.zeros(1)):
        pass

    names = [f"residual_{i:02d}" for i in np.random.default_rng(0).permutation(20)]
    costs = []
    for name in names:
        def residual(vals, var):
            return vals[var]

        residual.__name__ = residual.__qualname__ = name
        costs.append(named_cost(residual)(Var(0)))
    texts = [str(jax.tree.structure(c)) for c in costs]
    assert [names[i] for i in np.argsort(texts)] == sorted(names)
    assert all(c.name == n for c, n in zip(costs, names))
