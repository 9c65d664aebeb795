"""ARAP energy: zero for rigid motion, exact for a uniform scaling, loops agree."""

from __future__ import annotations

import torch

from flowgen.arap import (
    arap_energy,
    arap_energy_reference,
    arap_energy_torch,
    arap_graph,
    arap_residuals,
    local_rotations,
)
from flowgen.procrustes import procrustes_rotations
from flowgen.procrustes import svd_rotations as float_svd_rotations
from flowgen.quat import quat_normalize, quat_to_matrix


def shell_points(seed: int, count: int = 400, dtype=torch.float32) -> torch.Tensor:
    """Points in a 2 cm thick shell of a 30 x 20 x 10 cm box (like the set S)."""
    gen = torch.Generator().manual_seed(seed)
    points = (torch.rand(count * 3, 3, generator=gen, dtype=torch.float64) - 0.5) * torch.tensor(
        [0.3, 0.2, 0.1], dtype=torch.float64
    )
    depth = (torch.tensor([0.15, 0.1, 0.05], dtype=torch.float64) - points.abs()).min(-1).values
    return points[depth < 0.02][:count].to(dtype)


def random_rigid(num_frames: int, seed: int, dtype):
    gen = torch.Generator().manual_seed(seed)
    quats = torch.randn(num_frames, 4, generator=gen, dtype=torch.float64)
    rot = quat_to_matrix(quat_normalize(quats))
    trans = torch.randn(num_frames, 3, generator=gen, dtype=torch.float64)
    return rot.to(dtype), trans.to(dtype)


def test_rigid_motion_has_zero_energy():
    rest = shell_points(0)
    graph = arap_graph(rest, 10)
    rot, trans = random_rigid(4, seed=1, dtype=torch.float32)
    deformed = (rot[:, None] @ rest[None, :, :, None])[..., 0] + trans[:, None]
    energy = arap_energy(graph, deformed)
    assert energy < 1e-6
    expected = rot[:, None].expand(-1, len(rest), -1, -1)
    torch.testing.assert_close(local_rotations(graph, deformed), expected, atol=1e-4, rtol=0)


def test_uniform_scaling_energy_is_known():
    """x' = (1 + e) x: R_i = I and every residual is e (x_i - x_j), so E = e^2 sum ||e_ij||^2."""
    rest = shell_points(2, dtype=torch.float64)
    graph = arap_graph(rest, 10)
    deformed = (1.1 * rest)[None]
    edges = rest[:, None] - rest[graph.neighbours]
    expected = 0.01 * edges.square().sum()
    torch.testing.assert_close(arap_energy(graph, deformed), expected, rtol=1e-12, atol=0)


def test_shear_is_positive_and_matches_reference():
    rest = shell_points(3, count=60, dtype=torch.float64)
    shear = torch.eye(3, dtype=torch.float64)
    shear[0, 1] = 0.3
    rot, trans = random_rigid(2, seed=4, dtype=torch.float64)
    deformed = torch.stack([rest @ shear.T, rest @ shear.T @ rot[1].T + trans[1]])
    graph = arap_graph(rest, 10)
    energy = arap_energy(graph, deformed)
    assert energy > 1e-4
    reference = arap_energy_reference(rest, deformed, 10)
    torch.testing.assert_close(energy, reference, rtol=1e-10, atol=0)
    # The shear's energy does not depend on a rigid motion applied after it.
    per_frame = arap_residuals(graph, deformed).square().sum(dim=(1, 2, 3))
    torch.testing.assert_close(per_frame[0], per_frame[1], rtol=1e-9, atol=0)


def test_detached_rotation_gives_the_full_gradient():
    """Envelope theorem: the gradient through the SVD rotation adds nothing at the optimum."""
    rest = shell_points(5, count=80, dtype=torch.float64)
    graph = arap_graph(rest, 10)
    gen = torch.Generator().manual_seed(6)
    deformed = (rest + 0.01 * torch.randn(rest.shape, generator=gen, dtype=torch.float64))[None]
    deformed = deformed.repeat(2, 1, 1).requires_grad_()
    (detached_grad,) = torch.autograd.grad(arap_energy(graph, deformed), deformed)

    moved = deformed[..., :, None, :] - deformed[..., graph.neighbours, :]
    rest_edges = rest[:, None] - rest[graph.neighbours]
    u, _, vh = torch.linalg.svd(moved.transpose(-1, -2) @ rest_edges)  # with gradient
    fix = torch.ones_like(u[..., 0, :])
    fix[..., 2] = torch.linalg.det(u @ vh).detach()
    rotations = (u * fix[..., None, :]) @ vh
    full = arap_residuals(graph, deformed, rotations).square().sum(dim=(1, 2, 3)).mean()
    (full_grad,) = torch.autograd.grad(full, deformed)
    torch.testing.assert_close(detached_grad, full_grad, rtol=1e-6, atol=1e-10)
    assert detached_grad.abs().max() > 1e-4


def test_groups_decouple_parts():
    """Two parts moving by different rigid motions: zero with group-restricted edges only."""
    part_a = shell_points(7, count=100)
    part_b = shell_points(8, count=100) + torch.tensor([0.0, 0.0, 0.11])
    rest = torch.cat([part_a, part_b])
    group = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    rot, trans = random_rigid(1, seed=9, dtype=torch.float32)
    deformed = torch.cat([part_a, part_b @ rot[0].T + trans[0]])[None]
    assert arap_energy(arap_graph(rest, 10, group), deformed) < 1e-6
    assert arap_energy(arap_graph(rest, 10), deformed) > 1e-2


def test_vectorised_over_frames_equals_per_frame():
    rest = shell_points(10, count=150)
    graph = arap_graph(rest, 10)
    gen = torch.Generator().manual_seed(11)
    deformed = rest + 0.02 * torch.randn(3, *rest.shape, generator=gen)
    together = arap_energy(graph, deformed)
    separately = torch.stack([arap_energy(graph, deformed[t : t + 1]) for t in range(3)]).mean()
    torch.testing.assert_close(together, separately)
    assert graph.num_edges == 150 * 10


def svd_rotations(cross: torch.Tensor) -> torch.Tensor:
    """The SVD's rotations, computed in float64."""
    return float_svd_rotations(cross.double()).to(cross.dtype)


def test_horn_rotations_match_the_svd():
    """The CPU path (Horn's quaternion by Newton's method, Jacobi sweeps where that is
    ill-conditioned) gives the SVD's rotation for random
    cross-covariances, near-rigid ones, reflections (det < 0) and rank-deficient ones (planar
    and collinear neighbourhoods), and the identity for a zero matrix (padding)."""
    gen = torch.Generator().manual_seed(3)
    random = torch.randn(2000, 3, 3, generator=gen)
    rot = torch.linalg.qr(torch.randn(500, 3, 3, generator=gen))[0]
    edges = torch.randn(500, 10, 3, generator=gen)
    moved = edges @ rot.transpose(-1, -2) + 0.01 * torch.randn(500, 10, 3, generator=gen)
    rigid = moved.transpose(-1, -2) @ edges
    planar = edges * torch.tensor([1.0, 1.0, 0.0])
    flat = (planar @ rot.transpose(-1, -2)).transpose(-1, -2) @ planar
    cases = torch.cat([random, rigid, flat])
    got, want = procrustes_rotations(cases), svd_rotations(cases)
    assert torch.linalg.det(got.double()).sub(1).abs().max() < 1e-5
    assert torch.linalg.det(random).lt(0).sum() > 500  # reflections are among them
    assert (got - want).abs().amax() < 1e-4
    torch.testing.assert_close(procrustes_rotations(torch.zeros(2, 3, 3)), torch.eye(3).expand(2, 3, 3))
    # rank one: only the rotation about the one edge's axis is free; the objective is what counts
    line = edges[:, :1] @ rot.transpose(-1, -2)
    rank_one = line.transpose(-1, -2) @ edges[:, :1]
    objective = lambda r: (r * rank_one).sum((-1, -2))
    assert (objective(procrustes_rotations(rank_one)) - objective(svd_rotations(rank_one))).abs().max() < 1e-4


def test_horn_rotations_on_two_threads_are_those_of_one():
    """Split over worker threads (above `PARALLEL_MIN` matrices), every rotation is the one a
    single thread computes, bit for bit, and rotations are returned in the matrices' order."""
    from flowgen.procrustes import PARALLEL_MIN, horn_rotations

    gen = torch.Generator().manual_seed(4)
    cross = torch.randn(PARALLEL_MIN + 1001, 3, 3, generator=gen, dtype=torch.float64).numpy()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = horn_rotations(cross)
        torch.set_num_threads(2)
        two = horn_rotations(cross)
    finally:
        torch.set_num_threads(threads)
    assert (one == two).all()
    assert abs(torch.linalg.det(torch.from_numpy(two[-5:])) - 1).max() < 1e-12
    assert (two[:3] == horn_rotations(cross[:3])).all()


def test_cpu_kernel_equals_the_torch_ops():
    """The fused CPU pass (energy and gradient in numba) against `arap_energy_torch`, float32,
    with padded edges (a 4-point group), on one and two threads: the same energy and gradient
    to float32 rounding, and bit for bit the same on either thread count."""
    rest = shell_points(12, count=600)
    group = torch.zeros(600, dtype=torch.long)
    group[:4] = 1
    graph = arap_graph(rest, 10, group)
    assert not graph.valid.all()
    gen = torch.Generator().manual_seed(13)
    rot, trans = random_rigid(5, seed=14, dtype=torch.float32)
    deformed = rest @ rot.transpose(-1, -2) + trans[:, None] + 0.004 * torch.randn(5, *rest.shape, generator=gen)
    results = []
    for fn, threads in ((arap_energy_torch, 1), (arap_energy, 1), (arap_energy, 2)):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            x = deformed.clone().requires_grad_()
            energy = fn(graph, x)
            energy.backward()
        finally:
            torch.set_num_threads(before)
        results.append((energy.detach(), x.grad))
    (e_ref, g_ref), (e_one, g_one), (e_two, g_two) = results
    assert e_ref > 1e-3
    torch.testing.assert_close(e_one, e_ref, rtol=1e-5, atol=0)
    torch.testing.assert_close(g_one, g_ref, rtol=1e-4, atol=1e-5 * g_ref.abs().max().item())
    assert torch.equal(e_one, e_two) and torch.equal(g_one, g_two)


def test_horn_rotations_of_nearly_collinear_neighbourhoods():
    """Cross-covariances U diag(1, g, 0.3 g) V^T with g from 1e-3 down to 1e-9 (the two
    smallest singular values nearly zero: Newton's eigenvalue is ill-conditioned there, so the
    path must fall back to the sweeps): the SVD's rotation within 1e-6 on every one."""
    gen = torch.Generator().manual_seed(15)
    u = torch.linalg.qr(torch.randn(200, 3, 3, generator=gen, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(200, 3, 3, generator=gen, dtype=torch.float64))[0]
    gaps = 10.0 ** -torch.linspace(3, 9, 200, dtype=torch.float64)
    sigma = torch.stack([torch.ones_like(gaps), gaps, 0.3 * gaps], -1)
    cross = u @ torch.diag_embed(sigma) @ v.transpose(-1, -2)
    got, want = procrustes_rotations(cross), float_svd_rotations(cross)
    assert (got - want).abs().amax() < 1e-6
