"""Ranking metrics of docs/method.md, "Evaluation", with shared ties, in closed form.

A model's full score row over the catalog is reduced to two integers per instance:
``n_higher`` (items scored strictly above the target) and ``n_tied`` (items scored exactly
as the target, the target included). The target is then spread evenly over the tied ranks
``r .. r + m - 1`` with ``r = 1 + n_higher`` and ``m = n_tied``, and every metric is the
average over those ``m`` ranks:

- ``recall@k%``: fraction of the tied ranks ``p <= K``, ``K = floor(ratio * N)``;
- ``rndcg@k%``: ``(1/m) * sum_{p <= K} 1 / log2(2 + 15000 (p - 1) / N)`` (the rank rescaled
  to a reference catalog of 15,000 items);
- ``recall@k``: fraction of the tied ranks ``p <= k``;
- ``ndcg@k``: ``(1/m) * sum_{p <= k} 1 / log2(p + 1)``.

Sums over a run of ranks use prefix sums of the per-rank gain, so nothing loops over
instances in Python, and ``rank_counts`` compares in row chunks so its temporary memory stays
bounded whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REFERENCE_CATALOG = 15000
DEFAULT_RATIO = 0.01
DEFAULT_KS = (20,)
_CHUNK_CELLS = 1 << 24  # score cells compared at once in rank_counts (~16 MB of booleans)


def rank_counts(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n_higher, n_tied)`` per row of ``scores (b, n)`` for the target column ``targets (b,)``.

    ``n_tied`` counts the target itself. A NaN score never compares higher or equal, so a NaN
    target is ranked after every real score (``n_tied`` is then forced to 1, the target alone).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"rank_counts: scores {scores.shape} and targets {targets.shape} do not match")
    b, n = scores.shape
    if b and (targets.min() < 0 or targets.max() >= n):
        raise ValueError(f"rank_counts: target index outside the catalog of {n} items")
    higher = np.empty(b, dtype=np.int64)
    tied = np.empty(b, dtype=np.int64)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for a in range(0, b, step):
        s = scores[a : a + step]
        t = s[np.arange(len(s)), targets[a : a + step]][:, None]
        nan_target = np.isnan(t[:, 0])
        higher[a : a + step] = np.where(nan_target, (~np.isnan(s)).sum(axis=1), (s > t).sum(axis=1))
        tied[a : a + step] = np.where(nan_target, 1, (s == t).sum(axis=1))
    return higher, tied


def _run_sums(gain_prefix: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sum of the gain over ranks ``first..last`` (1-based, inclusive; empty when last < first),
    where ``gain_prefix[p]`` is the sum of the gain over ranks ``1..p`` (``gain_prefix[0] = 0``)
    and ``last`` has already been clipped to the prefix's range."""
    cap = len(gain_prefix) - 1
    lo = np.clip(first - 1, 0, cap)
    hi = np.clip(last, 0, cap)
    return np.where(hi > lo, gain_prefix[hi] - gain_prefix[np.minimum(lo, hi)], 0.0)


def cutoff(n_items: int, ratio: float = DEFAULT_RATIO) -> int:
    """``K = floor(ratio * N)`` of docs/method.md, "Evaluation", computed in float64 exactly as the
    independent check ``recompute_metrics.py`` does (for ratios 0.01, 0.001, 0.0004 and
    N < 300,000 this equals the exact rational floor)."""
    return int(np.floor(ratio * n_items))


def instance_metrics(
    n_higher: np.ndarray,
    n_tied: np.ndarray,
    n_items: int | np.ndarray,
    ratio: float = DEFAULT_RATIO,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, np.ndarray]:
    """Per-instance metric values (float64 arrays) under shared ties.

    Keys: ``"recall@k%"``, ``"rndcg@k%"`` and, for every k in ``ks``, ``"recall@{k}"`` and
    ``"ndcg@{k}"``. ``n_items`` is the catalog size N, one number or one per instance.
    """
    h = np.asarray(n_higher, dtype=np.int64)
    m = np.asarray(n_tied, dtype=np.int64)
    if h.shape != m.shape or h.ndim != 1:
        raise ValueError(f"instance_metrics: n_higher {h.shape} and n_tied {m.shape} must be equal 1-d")
    if len(m) and m.min() < 1:
        raise ValueError("instance_metrics: n_tied counts the target, so it is at least 1")
    n_arr = np.broadcast_to(np.asarray(n_items, dtype=np.int64), h.shape)
    first = h + 1  # best tied rank r
    last = h + m  # worst tied rank r + m - 1
    mf = m.astype(np.float64)
    out: dict[str, np.ndarray] = {}

    # catalog-relative metrics: K and the r-NDCG gain depend on N, so group instances by N
    rec_pct = np.zeros(len(h))
    rndcg_pct = np.zeros(len(h))
    for n in np.unique(n_arr):
        rows = np.flatnonzero(n_arr == n)
        k_cut = cutoff(int(n), ratio)
        if k_cut <= 0:
            continue
        p = np.arange(1, k_cut + 1, dtype=np.float64)
        prefix = np.r_[0.0, np.cumsum(1.0 / np.log2(2.0 + REFERENCE_CATALOG * (p - 1.0) / n))]
        f, l_ = first[rows], np.minimum(last[rows], k_cut)
        rec_pct[rows] = np.clip(l_ - f + 1, 0, None) / mf[rows]
        rndcg_pct[rows] = _run_sums(prefix, f, l_) / mf[rows]
    out["recall@k%"] = rec_pct
    out["rndcg@k%"] = rndcg_pct

    # fixed cut-offs: one gain table for every instance
    for k in ks:
        k = int(k)
        p = np.arange(1, k + 1, dtype=np.float64)
        prefix = np.r_[0.0, np.cumsum(1.0 / np.log2(p + 1.0))]
        l_ = np.minimum(last, k)
        out[f"recall@{k}"] = np.clip(l_ - first + 1, 0, None) / mf
        out[f"ndcg@{k}"] = _run_sums(prefix, first, l_) / mf
    return out


def mean_metrics(values: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, float]:
    """Average every per-instance metric (optionally over a subset of rows); 0 instances -> NaN."""
    out: dict[str, float] = {}
    for key, v in values.items():
        v = v if rows is None else v[rows]
        out[key] = float(v.mean()) if len(v) else float("nan")
    return out
