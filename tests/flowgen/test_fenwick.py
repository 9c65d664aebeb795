"""Fenwick-tree deformation store: vectorised queries against the Python path walk."""

from __future__ import annotations

import math

import pytest
import torch

from flowgen import fenwick
from flowgen.fenwick import (
    FenwickStore,
    PerFrameStore,
    fenwick_identity,
    fenwick_path,
    fenwick_path_matrix,
    from_per_frame,
    naive_query,
    per_frame_identity,
    query_all,
    split,
)
from flowgen.quat import matrix_to_quat, quat_multiply, quat_normalize, quat_to_matrix

FRAME_COUNTS = [2, 9, 17, 41]


def random_store(num_frames: int, num_controls: int, seed: int) -> FenwickStore:
    """Non-unit random nodes near the identity, float64, with gradients."""
    gen = torch.Generator().manual_seed(seed)
    quats = torch.randn(num_frames - 1, num_controls, 4, generator=gen, dtype=torch.float64)
    quats = quats * 0.3 + torch.tensor([1.5, 0, 0, 0], dtype=torch.float64)
    trans = torch.randn(num_frames - 1, num_controls, 3, generator=gen, dtype=torch.float64)
    return FenwickStore(quats.requires_grad_(), trans.requires_grad_())


def random_per_frame(num_frames: int, num_controls: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    quats = torch.randn(num_frames, num_controls, 4, generator=gen, dtype=torch.float64)
    quats = quat_normalize(quats)
    quats[0] = torch.tensor([1.0, 0, 0, 0])
    trans = torch.randn(num_frames, num_controls, 3, generator=gen, dtype=torch.float64)
    trans[0] = 0
    return quats, trans


def test_paths_match_the_definition():
    assert fenwick_path(1) == [1]
    assert fenwick_path(6) == [6, 4]
    assert fenwick_path(7) == [7, 6, 4]
    assert fenwick_path(40) == [40, 32]
    paths = fenwick_path_matrix(41)
    assert paths.shape == (41, 5)  # 31 = 0b11111 has the longest path below 41
    assert paths[7].tolist() == [7, 6, 4, 0, 0]  # padded with node 0, the identity


def test_node_ranges_cover_each_frame_once():
    for num_frames in FRAME_COUNTS:
        for t in range(1, num_frames):
            covered = [f for j in fenwick_path(t) for f in range(j - fenwick.lowbit(j) + 1, j + 1)]
            assert sorted(covered) == list(range(1, t + 1))


def test_identity_store_queries_identity():
    quats, trans = query_all(fenwick_identity(9, 5))
    assert quats.shape == (9, 5, 4) and trans.shape == (9, 5, 3)
    assert torch.equal(quats[..., 0], torch.ones(9, 5))
    assert torch.equal(quats[..., 1:], torch.zeros(9, 5, 3))
    assert torch.equal(trans, torch.zeros(9, 5, 3))


@pytest.mark.parametrize("num_frames", FRAME_COUNTS)
def test_query_all_matches_naive_forward_and_gradient(num_frames):
    store = random_store(num_frames, 3, seed=num_frames)
    quats, trans = query_all(store)
    naive = [naive_query(store, t) for t in range(num_frames)]
    naive_q = torch.stack([q for q, _ in naive])
    naive_t = torch.stack([t for _, t in naive])
    torch.testing.assert_close(quats, naive_q, rtol=0, atol=1e-12)
    torch.testing.assert_close(trans, naive_t, rtol=0, atol=1e-12)
    assert torch.allclose(quats.norm(dim=-1), torch.ones(()).double())

    gen = torch.Generator().manual_seed(1)
    wq = torch.randn(quats.shape, generator=gen, dtype=torch.float64)
    wt = torch.randn(trans.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((quats * wq).sum() + (trans * wt).sum(), [store.quats, store.trans])
    naive_grads = torch.autograd.grad(
        (naive_q * wq).sum() + (naive_t * wt).sum(), [store.quats, store.trans]
    )
    for fast, slow in zip(grads, naive_grads):
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    # Every node influences some frame, so no gradient is identically zero.
    assert (grads[0].abs().sum(dim=(1, 2)) > 0).all()


def test_translation_is_prefix_sum_of_node_ranges():
    """Putting translation 1 into node j moves exactly the frames whose path contains j."""
    store = fenwick_identity(17, 1)
    trans = store.trans.clone()
    trans[6 - 1, 0, 0] = 1.0  # node 6 covers frames 5..6
    _, out = query_all(FenwickStore(store.quats, trans))
    moved = [t for t in range(17) if out[t, 0, 0] == 1.0]
    assert moved == [6, 7]  # 6 -> [6, 4]; 7 -> [7, 6, 4]; 8 -> [8]


def test_rotation_order_is_latest_range_on_the_left():
    """Frame 3 = node 3 ⊗ node 2: the earlier range's rotation acts first."""
    a = matrix_to_quat(_rot_z(math.pi / 2)[None])[0]  # node 2 (frames 1..2)
    b = matrix_to_quat(_rot_x(math.pi / 2)[None])[0]  # node 3 (frame 3)
    store = fenwick_identity(4, 1, dtype=torch.float64)
    quats = store.quats.clone()
    quats[1, 0], quats[2, 0] = a, b
    out_q, _ = query_all(FenwickStore(quats, store.trans))
    expected = _rot_x(math.pi / 2) @ _rot_z(math.pi / 2)
    torch.testing.assert_close(quat_to_matrix(out_q[3, 0]), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_frames", FRAME_COUNTS)
def test_from_per_frame_round_trip(num_frames):
    quats, trans = random_per_frame(num_frames, 4, seed=num_frames)
    out_q, out_t = query_all(from_per_frame(quats, trans))
    torch.testing.assert_close(out_q, quats, rtol=0, atol=1e-12)  # same sign, not just rotation
    torch.testing.assert_close(out_t, trans, rtol=0, atol=1e-12)


def test_from_per_frame_float32_round_trip():
    quats, trans = random_per_frame(41, 8, seed=3)
    out_q, out_t = query_all(from_per_frame(quats.float(), trans.float()))
    assert (out_q - quats.float()).abs().max() < 2e-6
    assert (out_t - trans.float()).abs().max() < 2e-6


def test_from_per_frame_rejects_non_rest_frame_zero():
    quats, trans = random_per_frame(5, 2, seed=0)
    trans[0] = 1.0
    with pytest.raises(ValueError, match="frame 0 is the rest pose"):
        from_per_frame(quats, trans)


@pytest.mark.parametrize("make", ["fenwick", "per_frame"])
def test_split_keeps_early_frames_and_copies_frame_30(make):
    quats, trans = random_per_frame(41, 5, seed=7)
    store = (
        from_per_frame(quats, trans)
        if make == "fenwick"
        else PerFrameStore(quats[1:].clone(), trans[1:].clone())
    )
    store = fenwick.as_parameters(store)
    before_q, before_t = query_all(store)
    after = split(store, after_frame=30)
    assert type(after) is type(store)
    after_q, after_t = query_all(after)
    assert torch.equal(after_q[:31], before_q[:31].detach())  # bit-for-bit
    assert torch.equal(after_t[:31], before_t[:31].detach())
    frame_30_q = before_q[30:31].detach().expand(10, -1, -1)
    frame_30_t = before_t[30:31].detach().expand(10, -1, -1)
    torch.testing.assert_close(after_q[31:], frame_30_q, atol=1e-12, rtol=0)
    torch.testing.assert_close(after_t[31:], frame_30_t, atol=1e-12, rtol=0)
    assert not torch.allclose(before_t[31:], before_t[30:31])  # the split changed something
    if make == "fenwick":
        assert torch.equal(after.quats[:30], store.quats[:30].detach())  # nodes 1..30 untouched


def test_per_frame_store_queries_each_frame_independently():
    store = per_frame_identity(9, 2)
    trans = store.trans.clone()
    trans[5 - 1] = 2.0
    quats = store.quats.clone()
    quats[3 - 1] = torch.tensor([2.0, 0, 0, 0])  # unnormalised identity
    out_q, out_t = query_all(PerFrameStore(quats, trans))
    assert [t for t in range(9) if (out_t[t] != 0).any()] == [5]
    assert torch.equal(out_q[3], torch.tensor([[1.0, 0, 0, 0]] * 2))
    naive = torch.stack([naive_query(PerFrameStore(quats, trans), t)[1] for t in range(9)])
    assert torch.equal(naive, out_t)


def test_quat_helpers_round_trip():
    gen = torch.Generator().manual_seed(0)
    q = quat_normalize(torch.randn(200, 4, generator=gen, dtype=torch.float64))
    q = torch.where(q[:, :1] < 0, -q, q)
    torch.testing.assert_close(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-12, rtol=0)
    a, b = q[:100], q[100:]
    product = quat_to_matrix(quat_multiply(a, b))
    torch.testing.assert_close(product, quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12, rtol=0)
    half_turn = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # 180° about x
    torch.testing.assert_close(matrix_to_quat(half_turn), torch.tensor([0.0, 1, 0, 0]).double())


def test_store_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"trans must be \(T-1, K, 3\)"):
        FenwickStore(torch.zeros(4, 3, 4), torch.zeros(4, 2, 3))


def _rot_z(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)


def _rot_x(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
