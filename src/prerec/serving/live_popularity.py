"""Popularity factors that follow a growing log (SPEC.md section 3, served live).

:class:`LivePopularity` answers the same questions as :class:`prerec.popularity.PopularityIndex`
(``window(day)``, ``factors(days, items)``, ``item_factors(day, n)``) with identical numbers,
but accepts new interactions at any time without re-sorting the log: it keeps one
``(items, counts)`` pair per day, so a window is the sum of at most 15 days' counts (or of the
single most recent earlier day when the window had to be widened).

A domain without timestamps has one static window (SPEC.md: all interactions of its training
users); events recorded while serving are added to that window, whatever their timestamp.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

from prerec.popularity import N_FACTORS, WINDOW_DAYS, PopularityIndex, window_factors

_EMPTY = np.empty(0, np.int64)


def _merge(items_a: np.ndarray, counts_a: np.ndarray, items_b: np.ndarray,
           counts_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum two sparse count vectors given as (sorted unique items, counts)."""
    items = np.concatenate([items_a, items_b])
    counts = np.concatenate([counts_a, counts_b])
    uniq, inverse = np.unique(items, return_inverse=True)
    return uniq, np.bincount(inverse, weights=counts, minlength=len(uniq)).astype(np.int64)


class LivePopularity:
    """Per-day item counts of one domain; ``add`` new interactions, ask for any day's factors.

    ``days`` is ``None`` for a domain without timestamps (one static window). Not thread-safe
    on its own: the service mutates it only under its lock.
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
        """The distinct days of the log (``None`` without timestamps), like ``PopularityIndex.days``
        is ``None`` for such a domain."""
        return np.asarray(self._sorted_days, dtype=np.int64) if self.timed else None

    def add(self, items: np.ndarray, days: np.ndarray | None) -> None:
        """Count interactions ``items[k]`` on ``days[k]`` (``days`` ignored for an untimed domain)."""
        items = np.asarray(items, dtype=np.int64)
        if not len(items):
            return
        self.n_events += len(items)
        if not self.timed:
            uniq, counts = np.unique(items, return_counts=True)
            self._static = _merge(*self._static, uniq, counts)
            return
        if days is None:
            raise ValueError("a timed domain needs the day of every interaction")
        days = np.asarray(days, dtype=np.int64)
        pairs, counts = np.unique(np.stack([days, items], axis=1), axis=0, return_counts=True)
        bounds = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0], True])
        for a, b in itertools.pairwise(bounds):
            day = int(pairs[a, 0])
            new = (pairs[a:b, 1].copy(), counts[a:b].astype(np.int64))
            old = self._by_day.get(day)
            if old is None:
                bisect.insort(self._sorted_days, day)
                self._by_day[day] = new
            else:
                self._by_day[day] = _merge(*old, *new)

    def window(self, day: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Items with a positive count in the window of ``day`` and their counts (sorted by item)."""
        if not self.timed or day is None:
            return self._static
        hi = bisect.bisect_left(self._sorted_days, int(day))  # days strictly before ``day``
        if hi == 0:
            return _EMPTY, _EMPTY
        lo_day = min(int(day) - WINDOW_DAYS, self._sorted_days[hi - 1])
        lo = bisect.bisect_left(self._sorted_days, lo_day)
        parts = [self._by_day[d] for d in self._sorted_days[lo:hi]]
        if len(parts) == 1:
            return parts[0]
        items = np.concatenate([p[0] for p in parts])
        counts = np.concatenate([p[1] for p in parts])
        uniq, inverse = np.unique(items, return_inverse=True)
        return uniq, np.bincount(inverse, weights=counts, minlength=len(uniq)).astype(np.int64)

    def factors(self, days: np.ndarray | int | None, items: np.ndarray) -> np.ndarray:
        """F_j(d) for each pair ``(days[k], items[k])``: ``(n, 4)`` float32, as PopularityIndex."""
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros((len(items), N_FACTORS), dtype=np.float64)
        if not self.timed or days is None:
            query = {None: np.arange(len(items))}
        else:
            days = np.broadcast_to(np.asarray(days, dtype=np.int64), items.shape)
            query = {int(d): np.flatnonzero(days == d) for d in np.unique(days)}
        for day, rows in query.items():
            uniq, counts = self.window(day)
            if len(uniq):
                PopularityIndex._fill(out, rows, items[rows], uniq, counts, window_factors(counts))
        return out.astype(np.float32)

    def item_factors(self, day: int | None, n_items: int) -> np.ndarray:
        """F(d) for every item 0..n_items-1 on one day: ``(n_items, 4)``."""
        return self.factors(day, np.arange(n_items))

    def window_factors(self, day: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The items of ``day``'s window and their factors ``(m, 4)``; every other item has F = 0.

        This is all the service needs: g(F) is evaluated on these rows only, the rest share g(0).
        """
        uniq, counts = self.window(day)
        if not len(uniq):
            return _EMPTY, np.zeros((0, N_FACTORS), np.float32)
        f = counts[:, None].astype(np.float64) / window_factors(counts)[None, :]
        return uniq, f.astype(np.float32)
