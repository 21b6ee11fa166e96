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

import numpy as np

from prerec.data.identity import Identity, build_identity, match_target
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender
from prerec.transitions import (
    DEFAULT_LAST,
    TransitionTable,
    catalog_table,
    identity_pairs,
    transition_scores,
)


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
        pairs = identity_pairs(identity.maps, sources, len(identity))
        self.identity, self._pairs, self._tables, self._own = identity, pairs, {}, {}
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
        m = identity.maps[target.name]
        tie = np.where(m >= 0, identity.support[np.maximum(m, 0)], 0).astype(np.int64)
        own, extra = self._own.get(target.name), None
        if own is not None and len(own):
            flat = own.flat
            extra = (own.sequences.items[flat - 1], own.sequences.items[flat])
            tie = tie + np.bincount(own.sequences.items[flat], minlength=n)
        t = catalog_table(*self._pairs, len(identity), m, extra)
        self._tables[target.name] = TransitionTable(t.indptr, t.indices, t.counts, tie)
        return self._tables[target.name]

    def transition_scores(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``(b, n_items)`` float64: sum over the last ``last`` items of 2^-l * count(item -> j)."""
        return transition_scores(self.table(target), histories, lengths, self.last)

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        primary = self.transition_scores(target, histories, lengths)
        return dense_ranks(primary, self.table(target).tie)
