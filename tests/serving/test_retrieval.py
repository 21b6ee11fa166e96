"""Retrieval of U . V + g(F): exact against a dense reference, FAISS flat exact, HNSW high recall."""

from __future__ import annotations

import numpy as np
import pytest

from prerec.serving.layered import Layered
from prerec.serving.retrieval import (
    Bonus,
    ExactRetriever,
    FaissRetriever,
    ItemVectors,
    PopularityTerm,
    make_retriever,
)


def reference(users: np.ndarray, dense: np.ndarray, pop: np.ndarray, k: int,
              exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Full score matrix, excluded items removed, sorted by (-score, item)."""
    s = users.astype(np.float64) @ dense.T.astype(np.float64) + pop
    if exclude:
        for r, ex in enumerate(exclude):
            s[r, ex] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=1)[:, :k]
    return order, np.take_along_axis(s, order, 1)


def case(n: int = 3000, h: int = 32, b: int = 8, hot: int = 200, pop_scale: float = 2.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    V = (rng.standard_normal((n, h)) / np.sqrt(h)).astype(np.float32)
    U = rng.standard_normal((b, h)).astype(np.float32)
    pop = np.full(n, -0.3, np.float32)  # g(0) for items outside the window
    pop[rng.choice(n, hot, replace=False)] = rng.uniform(-1, pop_scale, hot)
    return V, U, pop


def test_layered_matches_dense():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((50, 3))
    t = Layered.of(base)
    dense = base.copy()
    for _ in range(5):
        n_new = int(rng.integers(0, 3))  # appended rows are contiguous after the last one
        rows = np.r_[rng.choice(t.n, 3, replace=False), t.n + np.arange(n_new)]
        vals = rng.standard_normal((len(rows), 3))
        t = t.with_rows(rows, vals)
        grow = max(0, int(rows.max()) + 1 - len(dense))
        dense = np.vstack([dense, np.zeros((grow, 3))])
        dense[rows] = vals
        assert t.n == len(dense)
        np.testing.assert_array_equal(t.take(np.arange(t.n)), dense)
        np.testing.assert_array_equal(t.take(np.array([[0, t.n - 1]])), dense[[[0, t.n - 1]]])
    assert t.base is base or np.shares_memory(t.base, base)  # the base is never copied by a change
    np.testing.assert_array_equal(t.compact().base, dense)
    # the last value given for a row wins
    t2 = Layered.of(base).with_rows(np.array([2, 2]), np.array([[1.0] * 3, [2.0] * 3]))
    np.testing.assert_array_equal(t2.take(np.array([2])), [[2.0] * 3])


def test_popularity_term_top():
    scores = np.array([0.1, 3.0, -1.0, 3.0, 2.0], np.float32)
    top, bound = PopularityTerm(scores).top(2)
    assert sorted(top.tolist()) == [1, 3] and bound == pytest.approx(2.0)
    top, bound = PopularityTerm(scores).top(10)
    assert len(top) == 5 and bound == -np.inf
    # most items share g(0) = 0.1; only the window's items (1, 2, 3, 4) may differ
    term = PopularityTerm(scores, base=0.1, special=np.array([1, 2, 3, 4]))
    assert term.above.tolist() == [1, 3, 4] and term.rest_max == pytest.approx(0.1)
    assert term.top(3)[1] == pytest.approx(0.1) and term.top(1)[1] == pytest.approx(3.0)
    # items needed so that nothing left out scores above the threshold
    assert term.needed(np.array([5.0, 2.5, 1.0, 0.1, 0.0])).tolist() == [0, 2, 3, 3, 5]


@pytest.mark.parametrize("chunk", [256, 100_000])
def test_exact_matches_reference(chunk):
    V, U, pop = case()
    r = ExactRetriever(chunk=chunk)
    items = r.vectors(Layered.of(V))
    ids, s = r.top_k(items, U, PopularityTerm(pop), 10)
    ref_ids, ref_s = reference(U, V, pop, 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_overlay_exclusions_and_padding(kind):
    """Added and changed items (not in the index) and excluded history items are handled."""
    V, U, pop = case(n=2000, seed=2)
    rng = np.random.default_rng(3)
    r = make_retriever(kind)
    items = r.vectors(Layered.of(V))
    rows = np.array([5, 17, 2000, 2001, 2002])
    new = (rng.standard_normal((5, V.shape[1])) * 0.6).astype(np.float32)
    items = ItemVectors(items.table.with_rows(rows, new), items.index)  # index not rebuilt
    dense = np.vstack([V, np.zeros((3, V.shape[1]), np.float32)])
    dense[rows] = new
    pop2 = np.r_[pop, [2.5, -0.3, -0.3]].astype(np.float32)
    ref_ids, _ = reference(U, dense, pop2, 12)
    exclude = [ref_ids[r_, :3] for r_ in range(len(U))]  # the 3 best of each row are "seen"
    ids, s = r.top_k(items, U, PopularityTerm(pop2), 9, exclude)
    ref_ids, ref_s = reference(U, dense, pop2, 9, exclude)
    if kind == "hnsw":
        assert np.mean([len(set(a) & set(b)) / 9 for a, b in zip(ids, ref_ids)]) >= 0.9
    else:
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)
    # fewer items left than k: padding with -1 / -inf
    small = Layered.of(V[:6])
    ids, s = ExactRetriever().top_k(ExactRetriever().vectors(small), U[:1], PopularityTerm(pop[:6]), 5,
                                    [np.array([0, 1, 2])])
    assert (ids[0, :3] >= 3).all() and (ids[0, 3:] == -1).all() and np.isneginf(s[0, 3:]).all()


@pytest.mark.parametrize("pop_scale", [0.0, 0.5, 3.0])
def test_flat_is_exact_and_hnsw_recall(pop_scale):
    """flat + popularity candidates + certificate = the exact answer, however large g(F) is;
    HNSW recall stays high. The certificate widens only when the popularity term can matter."""
    V, U, pop = case(n=5000, b=32, pop_scale=pop_scale, seed=4)
    ref_ids, ref_s = reference(U, V, pop, 10)
    flat = FaissRetriever("flat")
    ids, s = flat.top_k(flat.vectors(Layered.of(V)), U, PopularityTerm(pop), 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)
    hnsw = FaissRetriever("hnsw", m=16, ef_construction=40, ef_search=64)
    ids, s = hnsw.top_k(hnsw.vectors(Layered.of(V)), U, PopularityTerm(pop), 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref_ids)])
    assert recall >= 0.95, recall
    if pop_scale == 0.0:  # g(F) never above g(0): every row certified at once
        assert flat.stats["widened"] == 0 and flat.stats["certified"] == len(U)


def test_popularity_candidates_matter():
    """Re-ranking only the inner-product candidates misses strongly popular items; adding the
    most popular items to the candidates recovers them."""
    V, U, pop = case(n=4000, b=16, hot=20, pop_scale=8.0, seed=5)
    ref_ids, _ = reference(U, V, pop, 5)
    flat = FaissRetriever("flat", rounds=1)
    items = flat.vectors(Layered.of(V))
    _, ann = items.index.search(U, 69)  # the same inner-product pool, without the popular items
    s = np.einsum("bch,bh->bc", V[ann], U) + pop[ann]
    ip_only = np.take_along_axis(ann, np.argsort(-s, axis=1)[:, :5], 1)
    recall_ip_only = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ip_only, ref_ids)])
    ids, _ = FaissRetriever("hnsw", rounds=1).top_k(FaissRetriever("hnsw").vectors(Layered.of(V)), U,
                                                   PopularityTerm(pop), 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, ref_ids)])
    assert recall_ip_only < 0.8 and recall >= 0.95, (recall_ip_only, recall)


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_sparse_bonus_is_added_and_its_items_retrieved(kind):
    """A per-history bonus (the transition head) on a few items, some of them changed in the
    overlay, some far down by U . V + g(F): every retriever adds it, flat and exact exactly."""
    V, U, pop = case(n=3000, b=6, seed=7)
    rng = np.random.default_rng(8)
    rows = np.array([11, 40])
    new = (rng.standard_normal((2, V.shape[1])) * 0.5).astype(np.float32)
    dense = V.copy()
    dense[rows] = new
    base_s = U.astype(np.float64) @ dense.T.astype(np.float64) + pop
    worst = np.argsort(base_s, axis=1)[:, :3]  # items no inner-product search would return
    b_rows = np.r_[np.repeat(np.arange(6), 3), [0, 1, 2]]
    b_items = np.r_[worst.reshape(-1), rows[0], rows[1], 5]
    b_vals = rng.uniform(0.5, 12.0, len(b_rows)).astype(np.float32)
    bonus = Bonus(b_rows, b_items, b_vals)
    r = make_retriever(kind)
    items = r.vectors(Layered.of(V))
    items = ItemVectors(items.table.with_rows(rows, new), items.index)
    ids, s = r.top_k(items, U, PopularityTerm(pop), 8, None, bonus)
    extra = np.zeros_like(base_s)
    np.add.at(extra, (b_rows, b_items), b_vals)
    full = base_s + extra
    ref_ids = np.lexsort((np.broadcast_to(np.arange(3000), full.shape), -full), axis=1)[:, :8]
    assert any(set(worst[r_]) & set(ref_ids[r_]) for r_ in range(6))  # the bonus decides some answers
    if kind == "hnsw":
        assert np.mean([len(set(a) & set(b)) / 8 for a, b in zip(ids, ref_ids)]) >= 0.9
    else:
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(s, np.take_along_axis(full, ref_ids, 1), rtol=1e-5, atol=1e-4)
