"""Popularity factors F_j(d) (SPEC.md section 3), computed sparsely.

For day d the window is the 15 days [d-15, d-1]; if it holds no interaction it is widened one
day at a time into the past until it does (so it reaches back to the most recent earlier day
of the log). With c_j the count of item j in the window and J the items with c_j >= 1,

    s_p = (mean_{i in J} c_i^p)^(1/p),  F_j(d) = [c_j/s_1, c_j/s_2, c_j/s_3, c_j/s_4],

and F_j(d) = 0 when j is not in the window and when nothing precedes d (the first day).
The factors are comparable across domains of very different traffic, which is what makes
the popularity head transferable.

Only the requested (day, item) pairs are computed: per distinct requested day, one slice of
the day-sorted log is counted. No days x items tensor is ever built.
A domain without timestamps gets one window: every interaction of its training users.
"""

from __future__ import annotations

import numpy as np

WINDOW_DAYS = 15
N_FACTORS = 4
POWERS = np.arange(1, N_FACTORS + 1, dtype=np.float64)


def window_factors(counts: np.ndarray) -> np.ndarray:
    """The normalisers s_1..s_4 of one window, from the positive counts of its items."""
    c = counts.astype(np.float64)
    return np.mean(c[None, :] ** POWERS[:, None], axis=1) ** (1.0 / POWERS)


class PopularityIndex:
    """The popularity factors of one domain's log, for any (day, item) asked for.

    ``days`` is ``None`` for a domain without timestamps: every query then gets the factors
    of the single window formed by ``items``.
    """

    def __init__(self, items: np.ndarray, days: np.ndarray | None = None) -> None:
        items = np.asarray(items, dtype=np.int64)
        if days is None:
            self.days = None
            self.items = items
            uniq, counts = np.unique(items, return_counts=True)
            self._static = (uniq, counts, window_factors(counts) if len(counts) else None)
        else:
            days = np.asarray(days, dtype=np.int64)
            # sorted by day, and by item within a day: a window is a slice made of sorted runs,
            # which a stable (merge) sort counts about 2.5x faster than an unsorted slice
            order = np.lexsort((items, days))
            self.days = days[order]
            self.items = items[order]

    def window(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Items with a positive count in the window of ``day`` and their counts (sorted by item)."""
        if self.days is None:
            return self._static[0], self._static[1]
        hi = int(np.searchsorted(self.days, day, side="left"))  # interactions strictly before d
        if hi == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        lo_day = min(day - WINDOW_DAYS, int(self.days[hi - 1]))
        lo = int(np.searchsorted(self.days, lo_day, side="left"))
        x = np.sort(self.items[lo:hi], kind="stable")
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        return x[starts], np.diff(np.r_[starts, len(x)])

    def factors(self, days: np.ndarray | int | None, items: np.ndarray) -> np.ndarray:
        """F_j(d) for each pair (days[k], items[k]) as a float32 array ``(n, 4)``.

        ``days`` may be a scalar (one day for all items) or ignored (``None``) for a domain
        without timestamps.
        """
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros((len(items), N_FACTORS), dtype=np.float32)  # computed in float64, stored as float32
        if self.days is None or days is None:
            uniq, counts, s = self._static
            if s is not None:
                self._fill(out, np.arange(len(items)), items, uniq, counts, s)
            return out
        days = np.broadcast_to(np.asarray(days, dtype=np.int64), items.shape)
        if not len(items):
            return out
        # group the queries by day with one sort; one window per distinct day
        order = np.argsort(days, kind="stable")
        sorted_days = days[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]]), len(order)]
        for k in range(len(bounds) - 1):
            rows = order[bounds[k] : bounds[k + 1]]
            uniq, counts = self.window(int(sorted_days[bounds[k]]))
            if len(uniq):
                self._fill(out, rows, items[rows], uniq, counts, window_factors(counts))
        return out

    @staticmethod
    def _fill(out: np.ndarray, rows: np.ndarray, items: np.ndarray, uniq: np.ndarray,
              counts: np.ndarray, s: np.ndarray) -> None:
        pos = np.searchsorted(uniq, items)
        pos_c = np.minimum(pos, len(uniq) - 1)
        found = uniq[pos_c] == items
        out[rows[found]] = counts[pos_c[found], None] / s[None, :]

    def item_factors(self, day: int | None, n_items: int) -> np.ndarray:
        """F(d) for every item 0..n_items-1 of the catalog on one day: ``(n_items, 4)``."""
        return self.factors(day, np.arange(n_items))
