"""Popularity factor sets: what the popularity head reads, named by the ``popularity_factors`` key.

Every set is computed by the one :class:`prerec.popularity.PopularityIndex` from its per-day
counts, for any (day, item), and gives F = 0 to every item outside its windows (so g(0) is the
score every such item shares, as with the paper's factors). With c_j^W the count of item j in
the window of W days before the request day (widened back to the most recent earlier day of the
log when those W days hold nothing, docs/method.md) and s_p^W = (mean of c^p over the window's
items)^(1/p):

==============  =====================================================  ===============
set             factors of item j on day d                             baseline ranks by
==============  =====================================================  ===============
``paper``       c/s_1, c/s_2, c/s_3, c/s_4 (W = 15; the default)       c/s_2
``l2``          c/s_2 (W = 15)                                         it
``count``       c (W = 15)                                             it
``log``         log(1 + c) (W = 15)                                    it
``rank``        share of the window's items with a count <= c_j        it
``windows``     c^W/s_2^W for W = 1, 7, 15, 30; trend = F^7 - F^30     mean of the four
``last-seen``   1 / (days since j's last interaction), W = 90          it
==============  =====================================================  ===============

``count``, ``log`` and ``rank`` (like ``paper`` and ``l2``) are increasing functions of c_j
within one window, so their training-free rankings equal the ``popularity`` baseline's; they
differ only in what a trained head sees across days and domains. An untimed domain has one static
window: every W is that window (the trend is 0) and every item in it was seen "1 day ago".
The choice between sets is docs/popularity.md ("Alternative factor sets").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prerec.constants import DEFAULT_FACTORS, N_FACTORS, WINDOW_DAYS
from prerec.errors import PrerecError

WINDOWS = (1, 7, 15, 30)  # the ``windows`` set's windows, in days
TREND = (7, 30)  # trend = F of the recent window minus F of the older one
LAST_SEEN_DAYS = 90  # ``last-seen`` looks this far back: an item unseen for longer has F = 0

Factors = tuple[np.ndarray, np.ndarray]  # (items sorted, factors (m, k) float32)
POWERS = np.arange(1, N_FACTORS + 1, dtype=np.float64)
_EMPTY = np.empty(0, np.int64)


class CountIndex(Protocol):
    """What a factor set reads from :class:`prerec.popularity.PopularityIndex` (which imports this module)."""

    def window(self, day: int | None, width: int = WINDOW_DAYS) -> tuple[np.ndarray, np.ndarray]: ...

    def days_since(self, day: int | None, width: int) -> tuple[np.ndarray, np.ndarray]: ...

    def window_factors(self, day: int | None, factor_set: str = DEFAULT_FACTORS) -> Factors: ...


def window_factors(counts: np.ndarray) -> np.ndarray:
    """The paper's normalisers s_1..s_4 of one window, from the positive counts of its items."""
    c = counts.astype(np.float64)
    return np.mean(c[None, :] ** POWERS[:, None], axis=1) ** (1.0 / POWERS)


@dataclass(frozen=True)
class FactorSet:
    """One named set of popularity factors and the training-free ranking it defines."""

    name: str
    columns: tuple[str, ...]  # a name per factor (``prerec data popularity``'s columns)
    baseline: tuple[float, ...]  # weights of the factors in the training-free ranking score
    description: str
    compute: Callable[[CountIndex, int | None], Factors]

    @property
    def n_factors(self) -> int:
        return len(self.columns)

    def ranking(self, factors: np.ndarray) -> np.ndarray:
        """The baseline score ``(m,)`` float32 of factor rows ``(m, k)`` (exact for one weight of 1)."""
        w = np.asarray(self.baseline, np.float64)
        hot = np.flatnonzero(w)
        if len(hot) == 1 and w[hot[0]] == 1.0:
            return np.asarray(factors[:, hot[0]], np.float32)
        return (np.asarray(factors, np.float64) @ w).astype(np.float32)


def _l2(counts: np.ndarray) -> np.ndarray:
    """c / s_2 in float64, the same operations as the paper's second factor."""
    return counts / window_factors(counts)[1]


def _single(index: CountIndex, day: int | None, f: Callable[[np.ndarray], np.ndarray]) -> Factors:
    items, counts = index.window(day, WINDOW_DAYS)
    if not len(items):
        return _EMPTY, np.zeros((0, 1), np.float32)
    return items, np.asarray(f(counts), np.float64).astype(np.float32)[:, None]


def _rank(counts: np.ndarray) -> np.ndarray:
    """#{i in window: c_i <= c_j} / |window|: 1 for the window's most frequent items."""
    return np.searchsorted(np.sort(counts), counts, side="right") / len(counts)


def _windows(index: CountIndex, day: int | None) -> Factors:
    """c^W/s_2^W for each W of :data:`WINDOWS`, then the trend; items: the union of the windows."""
    parts = {w: index.window(day, w) for w in WINDOWS}
    items = np.unique(np.concatenate([p[0] for p in parts.values()]))
    out = np.zeros((len(items), len(WINDOWS) + 1), np.float64)
    if not len(items):
        return _EMPTY, out.astype(np.float32)
    for col, w in enumerate(WINDOWS):
        its, counts = parts[w]
        if len(its):
            out[np.searchsorted(items, its), col] = _l2(counts)
    out[:, -1] = out[:, WINDOWS.index(TREND[0])] - out[:, WINDOWS.index(TREND[1])]
    return items, out.astype(np.float32)


def _last_seen(index: CountIndex, day: int | None) -> Factors:
    items, since = index.days_since(day, LAST_SEEN_DAYS)
    return items, (1.0 / since.astype(np.float64)).astype(np.float32)[:, None]


def _paper(index: CountIndex, day: int | None) -> Factors:
    return index.window_factors(day)


FACTOR_SETS: dict[str, FactorSet] = {s.name: s for s in (
    FactorSet("paper", ("f1", "f2", "f3", "f4"), (0.0, 1.0, 0.0, 0.0),
              "the paper's c/s_p, p = 1..4, over 15 days", _paper),
    FactorSet("l2", ("f2",), (1.0,), "c/s_2 over 15 days", lambda ix, d: _single(ix, d, _l2)),
    FactorSet("count", ("count",), (1.0,), "the raw count c over 15 days",
              lambda ix, d: _single(ix, d, lambda c: c)),
    FactorSet("log", ("log_count",), (1.0,), "log(1 + c) over 15 days", lambda ix, d: _single(ix, d, np.log1p)),
    FactorSet("rank", ("rank_pct",), (1.0,), "the item's rank percentile in its 15-day window",
              lambda ix, d: _single(ix, d, _rank)),
    FactorSet("windows", (*(f"w{w}" for w in WINDOWS), "trend"), (0.25, 0.25, 0.25, 0.25, 0.0),
              "c/s_2 over 1, 7, 15 and 30 days, and the trend (7 days minus 30)", _windows),
    FactorSet("last-seen", ("recency",), (1.0,), "1 / days since the item's last interaction (within 90 days)",
              _last_seen),
)}
assert DEFAULT_FACTORS in FACTOR_SETS


def factor_width(name: str) -> int:
    """Factors per (day, item) of the set ``name`` (the popularity head's input width)."""
    return get_factor_set(name).n_factors


def get_factor_set(name: str) -> FactorSet:
    """The factor set ``name``; a :class:`PrerecError` naming the known sets otherwise."""
    if name not in FACTOR_SETS:
        raise PrerecError(f"popularity_factors {name!r}: expected one of {', '.join(FACTOR_SETS)}")
    return FACTOR_SETS[name]


__all__ = ["FACTOR_SETS", "LAST_SEEN_DAYS", "TREND", "WINDOWS", "FactorSet", "factor_width", "get_factor_set",
           "window_factors"]
