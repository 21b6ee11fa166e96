"""Sparse per-history score terms beyond U . V + g(F), shared by every retriever: the repeat
mixture's delta on the history's own items (:mod:`prerec.repeats`), added to the transition head's
``beta log(1 + T)`` (:mod:`prerec.transitions`), and the whole-catalog log-partition it needs."""

from __future__ import annotations

import numpy as np

from prerec.repeats import mixture_delta, repeat_counts, repeat_rate, rest_partition
from prerec.scoring import combine
from prerec.serving.retrieval import Bonus, ItemVectors, PopularityTerm, exact_scores


def merge_bonus(a: Bonus, b: Bonus) -> Bonus:
    """One bonus holding both (entries of the same (row, item) summed)."""
    rows, items = np.concatenate([a.rows, b.rows]), np.concatenate([a.items, b.items])
    n = int(max(items.max(initial=0), 0)) + 1
    codes, inverse = np.unique(rows * n + items, return_inverse=True)
    values = np.zeros(len(codes), np.float64)
    np.add.at(values, inverse.reshape(-1), np.concatenate([a.values, b.values]).astype(np.float64))
    return Bonus(codes // n, codes % n, values.astype(np.float32))


def log_partition(items: ItemVectors, users: np.ndarray, pop: PopularityTerm, bonus: Bonus | None = None,
                  chunk: int = 65536) -> np.ndarray:
    """logsumexp over the whole catalog of each user's full score ``(b,)`` (float64), read by the
    exact retriever's chunks: the repeat mixture's normaliser (:mod:`prerec.repeats`)."""
    total = np.full(len(users), -np.inf)
    for _, s in exact_scores(items, users, pop, bonus, chunk):
        total = np.logaddexp(total, _row_logsumexp(s))
    return total


def _row_logsumexp(s: np.ndarray) -> np.ndarray:
    """logsumexp of each row (float64), -inf for a row of -inf only."""
    m = s.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(s - m).sum(axis=1, dtype=np.float64)) + m[:, 0].astype(np.float64)


def repeat_bonus(items: ItemVectors, users: np.ndarray, pop: PopularityTerm, tails: np.ndarray,
                 lengths: np.ndarray, bonus: Bonus | None = None) -> Bonus | None:
    """``bonus`` plus delta_h on each history's own catalog items: ``tails`` are the histories' last
    entries as catalog rows (-1: not a catalog item), left-aligned with ``lengths``."""
    R, T = repeat_counts(tails, lengths)
    own = [np.unique(t[:n][t[:n] >= 0]) for t, n in zip(tails, lengths, strict=True)]
    cands = np.full((len(own), max(1, max(len(o) for o in own))), -1, dtype=np.int64)
    for r, o in enumerate(own):
        cands[r, : len(o)] = o
    safe = np.maximum(cands, 0)
    vectors = items.table.take(safe.reshape(-1)).reshape(*cands.shape, -1)
    s = combine(users.astype(np.float32), vectors, pop.scores[safe]).astype(np.float64)
    if bonus is not None:
        s = s + bonus.lookup(cands)
    s[cands < 0] = -np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        z_hist = np.logaddexp.reduce(s, axis=1)
    z_all = log_partition(items, users, pop, bonus)
    delta = mixture_delta(repeat_rate(R, T), rest_partition(z_all, z_hist), z_hist)
    rows, cols = np.nonzero(cands >= 0)
    if not len(rows):
        return bonus
    extra = Bonus(rows.astype(np.int64), cands[rows, cols], delta[rows].astype(np.float32))
    return extra if bonus is None else merge_bonus(bonus, extra)
