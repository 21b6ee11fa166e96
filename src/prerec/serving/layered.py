"""An immutable row table that grows and changes without copying its large part.

The service publishes immutable snapshots that request threads read without locks. Copying a
catalog's arrays (a million item vectors) on every added item would be too slow, so a
:class:`Layered` table is a large ``base`` array that is never written after construction,
plus a small ``over`` layer holding the rows added or updated since; a change builds a new
small layer (cost proportional to the layer) and shares the base. When the layer grows past a
fraction of the base, :meth:`compact` folds it in (one copy, amortised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layered:
    """Rows ``0 .. n-1``: row ``j`` is ``over[k]`` if ``over_ids[k] == j``, else ``base[j]``."""

    base: np.ndarray  # (n0, ...) never written
    over_ids: np.ndarray  # (m,) sorted int64 row numbers whose current value is in ``over``
    over: np.ndarray  # (m, ...)
    n: int

    @classmethod
    def of(cls, base: np.ndarray) -> Layered:
        base = np.asarray(base)
        return cls(base, np.empty(0, np.int64), base[:0].copy(), len(base))

    @property
    def n_base(self) -> int:
        return len(self.base)

    @property
    def n_over(self) -> int:
        return len(self.over_ids)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The current values of ``rows`` (any shape of int row numbers < n), as a new array."""
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.reshape(-1)
        if self.n_base:
            out = self.base[np.clip(flat, 0, self.n_base - 1)]
        else:
            out = np.empty((len(flat), *self.over.shape[1:]), dtype=self.over.dtype)
        if self.n_over:
            pos = np.minimum(np.searchsorted(self.over_ids, flat), self.n_over - 1)
            hit = self.over_ids[pos] == flat
            out[hit] = self.over[pos[hit]]
        return out.reshape(*rows.shape, *out.shape[1:])

    def with_rows(self, rows: np.ndarray, values: np.ndarray) -> Layered:
        """A new table where ``rows`` hold ``values`` (rows >= n append; they must be contiguous)."""
        rows = np.asarray(rows, dtype=np.int64)
        values = np.asarray(values, dtype=self.base.dtype)
        ids = np.concatenate([self.over_ids, rows])
        vals = np.concatenate([self.over, values])
        # keep the last value given for each row
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        ids, vals = ids[keep], vals[keep]
        order = np.argsort(ids, kind="stable")
        n = max(self.n, int(rows.max()) + 1 if len(rows) else 0)
        return Layered(self.base, ids[order], vals[order], n)

    def compact(self) -> Layered:
        """Fold the layer into a new base."""
        return Layered.of(self.take(np.arange(self.n)))
