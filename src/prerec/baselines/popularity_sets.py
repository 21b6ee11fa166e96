"""Training-free popularity rows, one per popularity factor set (docs/popularity.md).

``popularity-<set>`` ranks the target's catalog by its factor set's baseline score of the request
day (:meth:`prerec.popularity_factors.FactorSet.ranking`), computed by the target's one
popularity index; items outside the set's windows all score 0 and tie. The ``popularity`` row
(:class:`prerec.baselines.simple.PopularityBaseline`) is the ``paper`` and ``l2`` sets' row.
"""

from __future__ import annotations

import numpy as np

from prerec.data.prepared import PreparedDomain
from prerec.popularity_factors import get_factor_set
from prerec.recommender import Recommender

ROWS = {  # factor set -> what its row ranks by (the registry's description)
    "count": "the target's raw 15-day count (ranks as popularity)",
    "log": "the target's log(1 + 15-day count) (ranks as popularity)",
    "rank": "the target's rank percentile in the 15-day window (ranks as popularity)",
    "windows": "the target's mean of c/s_2 over 1, 7, 15 and 30 days",
    "last-seen": "the target's 1 / days since the item's last interaction (within 90 days)",
}


class FactorSetBaseline(Recommender):
    """Items ranked by one factor set's baseline score of the request day's windows."""

    def __init__(self, factor_set: str) -> None:
        self.factor_set = get_factor_set(factor_set)
        self.name = f"popularity-{factor_set}"

    def day_scores(self, target: PreparedDomain, day: int | None) -> np.ndarray:
        """The baseline score of every catalog item on ``day`` ``(n_items,)`` float32."""
        items, factors = target.popularity.window_factors(day, self.factor_set.name)
        out = np.zeros(target.n_items, np.float32)
        out[items] = self.factor_set.ranking(factors)
        return out

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        days = np.broadcast_to(np.asarray(days if days is not None else -1, dtype=np.int64), (len(histories),))
        out = np.empty((len(days), target.n_items), dtype=np.float32)
        if not target.popularity.timed:  # one static window: every row is the same
            out[:] = self.day_scores(target, None)
            return out
        for day in np.unique(days):
            out[days == day] = self.day_scores(target, int(day))
        return out
