"""Metrics (docs/method.md, "Evaluation") against a slow, obviously correct per-instance loop, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.evaluation import metrics as M


def slow_rank(row: np.ndarray, target: int) -> tuple[int, int]:
    t = row[target]
    higher = sum(1 for x in row if x > t)
    tied = sum(1 for x in row if x == t)
    return higher, tied


def slow_metrics(higher: int, tied: int, n: int, ratio: float, ks) -> dict[str, float]:
    """Spread the target over ranks r..r+m-1 and average each metric over those ranks."""
    big_k = math.floor(ratio * n)
    ranks = [higher + 1 + i for i in range(tied)]
    out = {
        "recall@k%": sum(1 for p in ranks if p <= big_k) / tied,
        "rndcg@k%": sum(1 / math.log2(2 + 15000 * (p - 1) / n) for p in ranks if p <= big_k) / tied,
    }
    for k in ks:
        out[f"recall@{k}"] = sum(1 for p in ranks if p <= k) / tied
        out[f"ndcg@{k}"] = sum(1 / math.log2(p + 1) for p in ranks if p <= k) / tied
    return out


@st.composite
def score_batches(draw):
    n = draw(st.integers(1, 400))
    b = draw(st.integers(1, 12))
    levels = draw(st.integers(1, 6))  # few distinct values -> many ties
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        scores = rng.integers(0, levels, size=(b, n)).astype(np.float32)
    else:
        scores = rng.normal(size=(b, n)).astype(np.float32)
    targets = rng.integers(0, n, size=b)
    return scores, targets


@settings(max_examples=150, deadline=None)
@given(score_batches(), st.sampled_from([0.01, 0.05, 0.1, 0.5, 1.0, 0.0004]))
def test_matches_slow_loop(batch, ratio):
    scores, targets = batch
    n = scores.shape[1]
    higher, tied = M.rank_counts(scores, targets)
    ks = (1, 5, 20)
    fast = M.instance_metrics(higher, tied, n, ratio=ratio, ks=ks)
    assert set(fast) == {"recall@k%", "rndcg@k%", "recall@1", "ndcg@1", "recall@5", "ndcg@5",
                         "recall@20", "ndcg@20"}
    for i in range(len(targets)):
        h, m = slow_rank(scores[i], targets[i])
        assert (higher[i], tied[i]) == (h, m)
        ref = slow_metrics(h, m, n, ratio, ks)
        for key, v in ref.items():
            assert fast[key][i] == pytest.approx(v, abs=1e-12), (key, i, h, m, n)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 100_000), st.integers(0, 3000), st.integers(1, 3000)),
                min_size=1, max_size=30))
def test_counts_directly_mixed_catalogs(rows):
    """Instances of catalogs of different sizes in one call (per-instance N), big tie runs."""
    n = np.array([r[0] for r in rows])
    h = np.array([min(r[1], r[0] - 1) for r in rows])
    m = np.array([max(1, min(r[2], r[0] - hh)) for r, hh in zip(rows, h)])
    fast = M.instance_metrics(h, m, n, ratio=0.01)
    for i in range(len(rows)):
        ref = slow_metrics(int(h[i]), int(m[i]), int(n[i]), 0.01, (20,))
        for key, v in ref.items():
            assert fast[key][i] == pytest.approx(v, abs=1e-9), (key, h[i], m[i], n[i])


def test_hand_cases():
    # N = 1000, K = 10; target alone at rank 1 -> recall 1, r-NDCG 1/log2(2) = 1
    v = M.instance_metrics(np.array([0]), np.array([1]), 1000)
    assert v["recall@k%"][0] == 1.0 and v["rndcg@k%"][0] == 1.0 and v["ndcg@20"][0] == 1.0
    # target tied with 3 others at ranks 9..12 -> 2 of 4 within K = 10
    v = M.instance_metrics(np.array([8]), np.array([4]), 1000)
    assert v["recall@k%"][0] == 0.5
    want = (1 / math.log2(2 + 15000 * 8 / 1000) + 1 / math.log2(2 + 15000 * 9 / 1000)) / 4
    assert v["rndcg@k%"][0] == pytest.approx(want)
    assert v["recall@20"][0] == 1.0
    # every item tied (a constant model): recall@K% = K / N
    v = M.instance_metrics(np.array([0]), np.array([1000]), 1000)
    assert v["recall@k%"][0] == pytest.approx(0.01)
    # a catalog smaller than 1/ratio: K = 0, nothing is ever hit
    v = M.instance_metrics(np.array([0]), np.array([1]), 99)
    assert v["recall@k%"][0] == 0.0 and v["rndcg@k%"][0] == 0.0


def test_rank_counts_chunks_and_nan(monkeypatch):
    monkeypatch.setattr(M, "_CHUNK_CELLS", 7)  # forces many small chunks
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(23, 5)).astype(np.float32)
    targets = rng.integers(0, 5, size=23)
    h, m = M.rank_counts(scores, targets)
    for i in range(23):
        assert (h[i], m[i]) == slow_rank(scores[i], targets[i])
    s = np.array([[np.nan, 1.0, np.nan, 0.0]], dtype=np.float32)
    assert [x.tolist() for x in M.rank_counts(s, np.array([0]))] == [[2], [1]]
    assert [x.tolist() for x in M.rank_counts(s, np.array([3]))] == [[1], [1]]
    with pytest.raises(ValueError):
        M.rank_counts(s, np.array([4]))
