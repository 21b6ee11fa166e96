"""Popularity factors F_j(d) (docs/method.md, "Popularity factors"): one index that grows by events.

For day d the window is the 15 days [d-15, d-1]; if it holds no interaction it is widened one
day at a time into the past until it does (so it reaches back to the most recent earlier day
of the log). With c_j the count of item j in the window and J the items with c_j >= 1,

    s_p = (mean_{i in J} c_i^p)^(1/p),  F_j(d) = [c_j/s_1, c_j/s_2, c_j/s_3, c_j/s_4],

and F_j(d) = 0 when j is not in the window and when nothing precedes d (the first day).
The factors are comparable across domains of very different traffic, which is what makes
the popularity head transferable.

:class:`PopularityIndex` keeps one sorted ``(items, counts)`` pair per day of the log, so a
window is the sum of at most 15 days' counts and new interactions (``add``) cost only their own
days. Only the requested (day, item) pairs are computed; no days x items tensor is ever built.
Training (its factor table), evaluation and the live service all ask this one index.

These are the paper's factors, the default set. The index computes every other factor set of
:mod:`prerec.popularity_factors` (the ``popularity_factors`` key: L2 only, raw or log counts, rank
percentile, several windows and a trend, days since last seen) from the same per-day counts:
``window_factors(day, factor_set)``, ``factors(days, items, factor_set)``.

A domain without timestamps has one static window (all interactions of its training users,
see :func:`prerec.data.prepared.domain_popularity_index`); interactions added later join that
window whatever their day.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

from prerec.constants import DEFAULT_FACTORS, N_FACTORS, WINDOW_DAYS
from prerec.popularity_factors import factor_width, get_factor_set, window_factors

_EMPTY = np.empty(0, np.int64)


def _sum_counts(items: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique items and their summed counts."""
    uniq, inverse = np.unique(items, return_inverse=True)
    return uniq, np.bincount(inverse, weights=counts, minlength=len(uniq)).astype(np.int64)


class PopularityIndex:
    """Per-day item counts of one domain's log; ask for any day's factors, ``add`` new events.

    ``days`` is ``None`` for a domain without timestamps (one static window). Not thread-safe
    on its own: the service mutates it only under its domain lock.
    """

    def __init__(self, items: np.ndarray, days: np.ndarray | None = None) -> None:
        self.timed = days is not None
        self._by_day: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._sorted_days: list[int] = []
        self._static = (_EMPTY, _EMPTY)
        self.n_events = 0
        self.add(np.asarray(items, dtype=np.int64), None if days is None else np.asarray(days, np.int64))

    @property
    def days(self) -> np.ndarray | None:
        """The distinct days of the log, sorted (``None`` for a domain without timestamps)."""
        return np.asarray(self._sorted_days, dtype=np.int64) if self.timed else None

    def add(self, items: np.ndarray, days: np.ndarray | None) -> None:
        """Count interactions ``items[k]`` on ``days[k]`` (``days`` ignored for an untimed domain)."""
        items = np.asarray(items, dtype=np.int64)
        if not len(items):
            return
        self.n_events += len(items)
        if not self.timed:
            uniq, counts = np.unique(items, return_counts=True)
            self._static = _sum_counts(np.r_[self._static[0], uniq], np.r_[self._static[1], counts])
            return
        if days is None:
            raise ValueError("a timed domain needs the day of every interaction")
        days = np.asarray(days, dtype=np.int64)
        order = np.lexsort((items, days))
        d, it = days[order], items[order]
        new_pair = np.r_[True, (d[1:] != d[:-1]) | (it[1:] != it[:-1])]
        starts = np.flatnonzero(new_pair)
        pair_days, pair_items = d[starts], it[starts]
        pair_counts = np.diff(np.r_[starts, len(d)])
        bounds = np.r_[np.flatnonzero(np.r_[True, pair_days[1:] != pair_days[:-1]]), len(pair_days)]
        for a, b in itertools.pairwise(bounds):
            day = int(pair_days[a])
            new = (pair_items[a:b].copy(), pair_counts[a:b].astype(np.int64))
            old = self._by_day.get(day)
            if old is None:
                bisect.insort(self._sorted_days, day)
                self._by_day[day] = new
            else:
                self._by_day[day] = _sum_counts(np.r_[old[0], new[0]], np.r_[old[1], new[1]])

    def _window_days(self, day: int, width: int) -> list[int]:
        """The log days of ``day``'s window of ``width`` days, widened back to the last earlier day."""
        hi = bisect.bisect_left(self._sorted_days, int(day))  # days strictly before ``day``
        if hi == 0:
            return []
        lo_day = min(int(day) - width, self._sorted_days[hi - 1])
        return self._sorted_days[bisect.bisect_left(self._sorted_days, lo_day):hi]

    def window(self, day: int | None, width: int = WINDOW_DAYS) -> tuple[np.ndarray, np.ndarray]:
        """Items with a positive count in the window of ``day`` and their counts (sorted by item).

        The window is the ``width`` days before ``day`` (widened back to the most recent earlier
        day of the log when they hold nothing); the static window for an untimed domain."""
        if not self.timed or day is None:
            return self._static
        days = self._window_days(day, width)
        if not days:
            return _EMPTY, _EMPTY
        parts = [self._by_day[d] for d in days]
        if len(parts) == 1:
            return parts[0]
        return _sum_counts(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def days_since(self, day: int | None, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Items of ``day``'s window of ``width`` days and the days since each was last seen
        (>= 1, sorted by item). An untimed domain: the static window's items, each at 1 day."""
        if not self.timed or day is None:
            return self._static[0], np.ones(len(self._static[0]), np.int64)
        days = self._window_days(day, width)
        if not days:
            return _EMPTY, _EMPTY
        items = np.concatenate([self._by_day[d][0] for d in days])
        when = np.repeat(np.asarray(days, np.int64), [len(self._by_day[d][0]) for d in days])
        order = np.lexsort((when, items))
        items, when = items[order], when[order]
        last = np.r_[items[1:] != items[:-1], True]  # each item's latest day
        return items[last], int(day) - when[last]

    def window_factors(self, day: int | None, factor_set: str = DEFAULT_FACTORS) -> tuple[np.ndarray, np.ndarray]:
        """The items whose factors on ``day`` are not all 0 and their factors ``(m, k)`` float32;
        every other item has F = 0. ``factor_set``: one of :data:`prerec.popularity_factors.FACTOR_SETS`
        (default: the paper's four factors, ``k`` = 4)."""
        if factor_set != DEFAULT_FACTORS:
            return get_factor_set(factor_set).compute(self, day)
        uniq, counts = self.window(day)
        if not len(uniq):
            return _EMPTY, np.zeros((0, N_FACTORS), np.float32)
        return uniq, (counts[:, None] / window_factors(counts)[None, :]).astype(np.float32)

    def factors(self, days: np.ndarray | int | None, items: np.ndarray,
                factor_set: str = DEFAULT_FACTORS) -> np.ndarray:
        """F_j(d) for each pair ``(days[k], items[k])`` as float32 ``(n, k)`` (``k`` = 4 by default).

        ``days`` may be a scalar (one day for all items), or ``None`` (an untimed domain).
        """
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros((len(items), factor_width(factor_set)), dtype=np.float32)
        if not len(items):
            return out
        if not self.timed or days is None:
            groups = [(None, np.arange(len(items)))]
        else:
            days = np.broadcast_to(np.asarray(days, dtype=np.int64), items.shape)
            order = np.argsort(days, kind="stable")
            sorted_days = days[order]
            cuts = np.r_[np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]]), len(order)]
            groups = [(int(sorted_days[a]), order[a:b]) for a, b in itertools.pairwise(cuts)]
        for day, rows in groups:
            uniq, f = self.window_factors(day, factor_set)
            if len(uniq):
                pos = np.minimum(np.searchsorted(uniq, items[rows]), len(uniq) - 1)
                found = uniq[pos] == items[rows]
                out[rows[found]] = f[pos[found]]
        return out

    def item_factors(self, day: int | None, n_items: int, factor_set: str = DEFAULT_FACTORS) -> np.ndarray:
        """F(d) for every item 0..n_items-1 of the catalog on one day: ``(n_items, k)``."""
        return self.factors(day, np.arange(n_items), factor_set)
