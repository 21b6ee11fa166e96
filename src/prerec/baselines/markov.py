"""``markov``: item-to-item transition counts from the source domains, by shared item id.

What a practitioner opening a new market tries first: count, over every user of every source
domain, how often item a is followed by item b (consecutive items of the user's time-ordered
sequence), with items matched across domains by their declared key space
(:mod:`prerec.data.identity`). A history scores item j by

    score(j) = sum over l = 0 .. L-1 of 2^-l * count(h_{t-l} -> j)

(the last item weighs 1, the one before 1/2, ...; history items without a known identity add
nothing). Ties are broken by the item's source count (its interactions over every source user);
items the sources never saw tie at the bottom. Optionally (``target_transitions``, on by
default) the target's own training transitions are added when ``fit`` is given a target with
data: every given target instance adds its (previous item -> item) pair, and its item to the
tie-breaking count. Where ids are not shared (no declared key space), ``fit`` raises a
:class:`~prerec.errors.PrerecError` saying why.

``score`` returns, per row, the dense rank of (transition score, tie count) as float32, so the
tie-breaking is exact and ties that remain are real (shared) ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prerec.data.identity import Identity, build_identity, match_target
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender

DEFAULT_LAST = 5


@dataclass(frozen=True)
class TransitionTable:
    """Transition counts over one target's catalog in CSR form, plus the tie-breaking counts."""

    indptr: np.ndarray  # (n + 1,) int64
    indices: np.ndarray  # (nnz,) int64: next item
    counts: np.ndarray  # (nnz,) float64
    tie: np.ndarray  # (n,) int64


def consecutive_pairs(items: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) of every pair of consecutive items within a sequence of a CSR log."""
    if len(items) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    starts = np.zeros(len(items), dtype=bool)
    starts[offsets[:-1][offsets[:-1] < len(items)]] = True
    nxt = np.flatnonzero(~starts)
    nxt = nxt[nxt > 0]
    return items[nxt - 1], items[nxt]


def count_pairs(a: np.ndarray, b: np.ndarray, n: int, weights: np.ndarray | None = None) -> TransitionTable:
    """CSR of the counts of pairs (a, b) over ``n`` items (tie counts left empty)."""
    code = a.astype(np.int64) * n + b.astype(np.int64)
    uniq, inverse = np.unique(code, return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=len(uniq)).astype(np.float64)
    rows = uniq // n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return TransitionTable(indptr, uniq % n, counts, np.zeros(n, dtype=np.int64))


def dense_ranks(primary: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Per row, the dense rank (0 = lowest) of the key (primary, tie): equal keys, equal ranks."""
    ties = np.broadcast_to(tie, primary.shape)
    order = np.lexsort((ties, primary), axis=-1)
    p = np.take_along_axis(primary, order, axis=1)
    t = np.take_along_axis(ties, order, axis=1)
    new = np.ones(primary.shape, dtype=np.int64)
    new[:, 0] = 0
    new[:, 1:] = (p[:, 1:] != p[:, :-1]) | (t[:, 1:] != t[:, :-1])
    out = np.empty(primary.shape, dtype=np.float32)
    np.put_along_axis(out, order, np.cumsum(new, axis=1).astype(np.float32), axis=1)
    return out


class MarkovBaseline(Recommender):
    """Source transitions by shared item id, last-``last`` weighted, plus the target's own."""

    name = "markov"

    def __init__(self, last: int = DEFAULT_LAST, target_transitions: bool = True) -> None:
        if not 1 <= int(last) <= 30:
            raise PrerecError(f"markov: last={last!r}: expected an integer from 1 to 30")
        self.last = int(last)
        self.target_transitions = target_transitions
        self.identity: Identity | None = None
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None  # identity codes, counts
        self._own: dict[str, Instances] = {}
        self._tables: dict[str, TransitionTable] = {}

    def fit(self, sources: list[PreparedDomain], target: PreparedDomain | None = None,
            instances: Instances | None = None) -> MarkovBaseline:
        """Count the sources' transitions by identity; with a target (and ``target_transitions``),
        also its ``instances`` (default: every instance of its training users)."""
        identity = build_identity(sources, target, required=True)
        n = len(identity)
        a_all, b_all = [], []
        for s in sources:
            seq = s.domain.sequences
            a, b = consecutive_pairs(identity.maps[s.name][seq.items], seq.offsets)
            keep = (a >= 0) & (b >= 0)
            a_all.append(a[keep])
            b_all.append(b[keep])
        code = np.concatenate(a_all) * n + np.concatenate(b_all)
        uniq, counts = np.unique(code, return_counts=True)
        self.identity, self._pairs, self._tables, self._own = identity, (uniq, counts), {}, {}
        if target is not None and self.target_transitions:
            self._own[target.name] = instances if instances is not None else make_instances(target.split.train)
        return self

    def table(self, target: PreparedDomain) -> TransitionTable:
        """The target's transition table (built once per target)."""
        if target.name in self._tables:
            return self._tables[target.name]
        if self.identity is None or self._pairs is None:
            raise PrerecError("markov: call fit(sources[, target]) before scoring")
        identity, n = self.identity, target.n_items
        if target.name not in identity.maps:
            match_target(identity, target, required=True)
        to_target = np.full(len(identity), -1, dtype=np.int64)
        m = identity.maps[target.name]
        to_target[m[m >= 0]] = np.flatnonzero(m >= 0)
        codes, counts = self._pairs
        a, b = to_target[codes // max(len(identity), 1)], to_target[codes % max(len(identity), 1)]
        keep = (a >= 0) & (b >= 0)
        a, b, w = a[keep], b[keep], counts[keep].astype(np.float64)
        tie = np.where(m >= 0, identity.support[np.maximum(m, 0)], 0).astype(np.int64)
        own = self._own.get(target.name)
        if own is not None and len(own):
            flat = own.flat
            a = np.concatenate([a, own.sequences.items[flat - 1]])
            b = np.concatenate([b, own.sequences.items[flat]])
            w = np.concatenate([w, np.ones(len(own))])
            tie = tie + np.bincount(own.sequences.items[flat], minlength=n)
        t = count_pairs(a, b, n, w)
        self._tables[target.name] = TransitionTable(t.indptr, t.indices, t.counts, tie)
        return self._tables[target.name]

    def transition_scores(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``(b, n_items)`` float64: sum over the last ``last`` items of 2^-l * count(item -> j)."""
        t = self.table(target)
        histories = np.asarray(histories, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        n, b = target.n_items, len(histories)
        rows, items, weights = [], [], []
        for lag in range(self.last):
            pos = lengths - 1 - lag
            ok = pos >= 0
            r = np.flatnonzero(ok)
            rows.append(r)
            items.append(histories[r, pos[ok]])
            weights.append(np.full(len(r), 2.0 ** -lag))
        r, it, w = np.concatenate(rows), np.concatenate(items), np.concatenate(weights)
        valid = it >= 0
        r, it, w = r[valid], it[valid], w[valid]
        start, lens = t.indptr[it], t.indptr[it + 1] - t.indptr[it]
        within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        take = np.repeat(start, lens) + within
        flat = np.repeat(r, lens) * n + t.indices[take]
        return np.bincount(flat, weights=np.repeat(w, lens) * t.counts[take], minlength=b * n).reshape(b, n)

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        primary = self.transition_scores(target, histories, lengths)
        return dense_ranks(primary, self.table(target).tie)
