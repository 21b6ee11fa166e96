"""Top-k retrieval of the full PreRec score s_j = U . V_j + g(F_j), exact or through FAISS.

Every score is computed by :func:`prerec.scoring.combine` (the exact path over the catalog, and
the exact re-scoring of the ANN candidates).

One interface, :class:`Retriever`: ``build(base)`` makes the index over a catalog's item
vectors (once), ``top_k(items, users, pop, k, exclude)`` returns the best ``k`` items per user.

- ``exact``: chunked matrix product over the whole catalog plus the popularity term, a running
  top-k per chunk. The reference.
- ``flat`` (FAISS ``IndexFlatIP``) and ``hnsw`` (FAISS ``IndexHNSWFlat``, inner product): the
  index knows only U . V. g(F) is not an inner product, so the candidates are
  (a) the ``c`` best items by U . V from the index, ``c = max(overfetch * k', k' + extra)``
  with ``k' = k + #excluded``; (b) the ``p`` items with the highest popularity score g(F);
  (c) every item added or changed since the index was built. All candidates are re-scored
  exactly with U . V + g(F) and the best ``k`` kept.

  Certificate (a threshold algorithm over the two sorted lists "by U . V" and "by g(F)"): an
  item outside the candidates has U . V <= D_c (the c-th inner product the index returned)
  and g(F) <= P_p (the best popularity score left out), so once the k-th re-scored score S_k
  reaches D_c + P_p nothing outside can beat it. When it does not, the items that could are
  exactly those with g(F) > S_k - D_c: a second round adds all of them (S_k only grows, so the
  answer is then certified), provided they are at most ``max_pop`` items; otherwise ``c`` is
  quadrupled. Only the items of today's popularity window have g(F) other than g(0), and the
  popularity term keeps them sorted, so the count is one binary search. With ``flat`` (exact
  inner products) the answer is therefore exact; a row still uncertified after ``rounds``
  rounds is answered by the exact path. With ``hnsw`` D_c is itself approximate, so the same
  rule only widens the search where the popularity term could matter; recall is measured in
  ``benchmarks/retrieval.py``.

A per-history ``bonus`` (the transition head's beta log(1 + T), :mod:`prerec.transitions`, and the
repeat mixture's delta on the history's own items, :mod:`prerec.repeats`) is sparse: a few items
per history. Exact retrieval adds it to those items; the FAISS retrievers add
those items to the row's candidates and re-score them, so every item outside the candidates has
no bonus and the certificate above holds unchanged.

Every structure a search reads is immutable, so any number of threads may search at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from prerec.errors import PrerecError
from prerec.scoring import combine
from prerec.serving.layered import Layered

RETRIEVALS = ("exact", "flat", "hnsw")


@dataclass(frozen=True)
class ItemVectors:
    """A catalog's item vectors (base rows indexed once, plus a layer of added/changed rows)
    and the index over the base rows (``None`` for exact retrieval)."""

    table: Layered
    index: object | None = None

    @property
    def n_items(self) -> int:
        return self.table.n


class PopularityTerm:
    """g(F_j) of every item for one day, with its items above the common value sorted.

    ``base`` is the score most items share (g(0): every item outside the day's popularity
    window) and ``special`` the items that may differ from it (the window's items). Without
    them every item is "special" (fine for small catalogs and tests).
    """

    def __init__(self, scores: np.ndarray, base: float | None = None, special: np.ndarray | None = None) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)
        n = len(self.scores)
        if special is None or base is None:
            special, base = np.arange(n), -np.inf
        special = np.asarray(special, dtype=np.int64)
        vals = self.scores[special]
        keep = vals > base
        order = np.argsort(-vals[keep], kind="stable")
        self.above = special[keep][order]  # items with a score above ``base``, best first
        self.above_scores = vals[keep][order]
        self.base = float(base)
        # the highest score among items not in ``above`` (<= base)
        self.rest_max = float(base) if n > len(self.above) else -np.inf

    def top(self, p: int) -> tuple[np.ndarray, float]:
        """The ``p`` (at most) best items above the common value, and the best score left out."""
        p = min(int(p), len(self.above))
        bound = float(self.above_scores[p]) if p < len(self.above) else self.rest_max
        return self.above[:p], bound

    def needed(self, threshold: np.ndarray) -> np.ndarray:
        """How many of the best items must be candidates so that no item left out scores above
        ``threshold`` (per row); ``len(scores)`` means all of them."""
        threshold = np.asarray(threshold, dtype=np.float64)
        count = np.searchsorted(-self.above_scores.astype(np.float64), -threshold, side="left")
        return np.where(threshold >= self.rest_max, count, len(self.scores))


def _exclusion_mask(cands: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
    """Boolean (b, c): candidate is one of the row's excluded items."""
    mask = np.zeros(cands.shape, dtype=bool)
    if exclude:
        for r, ex in enumerate(exclude):
            if len(ex):
                mask[r] = np.isin(cands[r], ex)
    return mask


@dataclass(frozen=True)
class Bonus:
    """A sparse per-history addition to the score: ``values[e]`` for item ``items[e]`` of history
    ``rows[e]`` (at most one entry per (row, item))."""

    rows: np.ndarray  # (m,) int64
    items: np.ndarray  # (m,) int64
    values: np.ndarray  # (m,) float32

    def subset(self, rows: np.ndarray) -> Bonus:
        """The entries of histories ``rows`` (renumbered 0 .. len(rows) - 1)."""
        new = np.full(int(max(self.rows.max(initial=-1), rows.max(initial=-1))) + 1, -1, np.int64)
        new[rows] = np.arange(len(rows))
        keep = new[self.rows] >= 0
        return Bonus(new[self.rows[keep]], self.items[keep], self.values[keep])

    def of_row(self, r: int) -> np.ndarray:
        return self.items[self.rows == r]

    def lookup(self, cands: np.ndarray) -> np.ndarray:
        """The bonus of every candidate ``(b, c)`` (0 where it has none)."""
        if not len(self.rows):
            return np.zeros(cands.shape, np.float32)
        n = int(max(self.items.max(), cands.max(initial=0))) + 1
        codes = self.rows * n + self.items
        order = np.argsort(codes)
        codes, values = codes[order], self.values[order]
        want = np.arange(len(cands))[:, None] * n + np.maximum(cands, 0)
        at = np.minimum(np.searchsorted(codes, want), len(codes) - 1)
        return np.where((codes[at] == want) & (cands >= 0), values[at], 0).astype(np.float32)


def _best_k(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row, sorted by score (ties: smaller item index first); -inf entries get id -1."""
    k = min(k, ids.shape[1])
    if k < ids.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        ids, scores = np.take_along_axis(ids, part, 1), np.take_along_axis(scores, part, 1)
    order = np.lexsort((ids, -scores), axis=1)
    ids, scores = np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)
    ids = np.where(np.isneginf(scores), -1, ids)
    return ids, scores


class Retriever(ABC):
    """Finds the top-k items of the full score for a batch of user vectors."""

    name: str = "retriever"

    def build(self, base: np.ndarray) -> object | None:
        """The index over a catalog's base item vectors (``None`` when none is needed)."""
        return None

    def vectors(self, table: Layered) -> ItemVectors:
        return ItemVectors(table, self.build(np.ascontiguousarray(table.base, dtype=np.float32)))

    @abstractmethod
    def top_k(self, items: ItemVectors, users: np.ndarray, pop: PopularityTerm, k: int,
              exclude: list[np.ndarray] | None = None, bonus: Bonus | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Item indices ``(b, k)`` and full scores, best first; -1 / -inf where fewer remain."""


def exact_scores(items: ItemVectors, users: np.ndarray, pop: PopularityTerm, bonus: Bonus | None = None,
                 chunk: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The full score of every current catalog item, by chunks: ``(ids, scores)`` pairs of shape
    ``(b, c)`` (a base row replaced in the layer scores -inf in its base chunk)."""
    users = np.ascontiguousarray(users, dtype=np.float32)
    table = items.table
    stale = table.over_ids[table.over_ids < table.n_base]
    for start in range(0, table.n_base, chunk):
        stop = min(start + chunk, table.n_base)
        s = combine(users, table.base[start:stop], pop.scores[start:stop])
        in_chunk = stale[(stale >= start) & (stale < stop)]
        s[:, in_chunk - start] = -np.inf  # their current vector is in the layer
        if bonus is not None:
            inside = (bonus.items >= start) & (bonus.items < stop)
            np.add.at(s, (bonus.rows[inside], bonus.items[inside] - start), bonus.values[inside])
        yield np.broadcast_to(np.arange(start, stop, dtype=np.int64), s.shape), s
    if table.n_over:
        s = combine(users, table.over, pop.scores[table.over_ids])
        ids = np.broadcast_to(table.over_ids, s.shape)
        if bonus is not None:
            s = s + bonus.lookup(np.ascontiguousarray(ids))
        yield ids, s


class ExactRetriever(Retriever):
    """U . V + g(F) over every item, by chunks of ``chunk`` items (bounded memory)."""

    name = "exact"

    def __init__(self, chunk: int = 65536) -> None:
        self.chunk = int(chunk)

    def top_k(self, items: ItemVectors, users: np.ndarray, pop: PopularityTerm, k: int,
              exclude: list[np.ndarray] | None = None, bonus: Bonus | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(int(k), items.table.n))
        best_ids = np.full((len(users), 0), -1, np.int64)
        best_s = np.full((len(users), 0), -np.inf, np.float32)
        for ids, s in exact_scores(items, users, pop, bonus, self.chunk):
            s[_exclusion_mask(ids, exclude)] = -np.inf
            best_ids, best_s = _best_k(np.hstack([best_ids, ids]), np.hstack([best_s, s]), k)
        return best_ids, best_s.astype(np.float32)


class FaissRetriever(Retriever):
    """FAISS inner-product candidates plus the most popular items, re-scored exactly."""

    def __init__(self, kind: str = "hnsw", *, m: int = 32, ef_construction: int = 40,
                 ef_search: int = 128, overfetch: int = 4, extra: int = 64, n_pop: int = 64,
                 max_pop: int = 32768, rounds: int = 3, threads: int | None = None) -> None:
        if kind not in ("flat", "hnsw"):
            raise PrerecError(f"unknown FAISS retrieval {kind!r}; use flat or hnsw")
        self.name = kind
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.overfetch, self.extra, self.n_pop, self.max_pop = int(overfetch), int(extra), int(n_pop), int(max_pop)
        self.rounds = int(rounds)
        self.threads = threads
        self.stats = {"rows": 0, "certified": 0, "pop_round": 0, "widened": 0, "fallback": 0}

    def build(self, base: np.ndarray) -> object:
        import faiss

        if self.threads:
            faiss.omp_set_num_threads(int(self.threads))
        dim = base.shape[1]
        if self.name == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, self.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        if len(base):
            index.add(np.ascontiguousarray(base, dtype=np.float32))
        return index

    def _search(self, index: object, users: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        if self.name == "hnsw":
            import faiss

            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, c))
            return index.search(users, c, params=params)
        return index.search(users, c)

    def top_k(self, items: ItemVectors, users: np.ndarray, pop: PopularityTerm, k: int,
              exclude: list[np.ndarray] | None = None, bonus: Bonus | None = None) -> tuple[np.ndarray, np.ndarray]:
        users = np.ascontiguousarray(users, dtype=np.float32)
        table = items.table
        b = len(users)
        k = max(1, min(int(k), table.n))
        n_ex = max((len(e) for e in exclude), default=0) if exclude else 0
        kk = k + n_ex
        c = max(self.overfetch * kk, kk + self.extra)
        p = max(self.n_pop, kk)
        out_ids = np.full((b, k), -1, np.int64)
        out_s = np.full((b, k), -np.inf, np.float32)
        todo = np.arange(b)
        self.stats["rows"] += b
        ann = None
        for round_ in range(self.rounds):
            if table.n_base and c >= table.n_base:
                break  # the index would return everything: the exact path is cheaper
            u = users[todo]
            ex = [exclude[r] for r in todo] if exclude else None
            if ann is None:
                ip, ann = self._candidates(items, u, c)
            ids, scores = self._rescore(table, u, pop, k, ex, ann, p, None if bonus is None else bonus.subset(todo))
            out_ids[todo], out_s[todo] = ids, scores
            # items outside the candidates score at most D_c + g(F): those that could still
            # beat the k-th have g(F) > S_k - D_c
            complete = (ann >= 0).all(axis=1)
            last_ip = ip[:, -1] if ip.shape[1] else np.full(len(todo), -np.inf, np.float32)
            threshold = np.where(complete, scores[:, -1].astype(np.float64) - last_ip, -np.inf)
            need = pop.needed(threshold)
            ok = need <= p
            if round_ == 0:
                self.stats["certified"] += int(ok.sum())
            todo, ip, ann, need = todo[~ok], ip[~ok], ann[~ok], need[~ok]
            if not len(todo):
                break
            if need.max() <= self.max_pop:
                p = int(need.max())  # one more round with the same index candidates: certified
                self.stats["pop_round"] += len(todo)
            else:
                c, ann = 4 * c, None
                self.stats["widened"] += len(todo)
        if len(todo) and (self.name == "flat" or (table.n_base and c >= table.n_base)):
            # flat promises the exact answer; a catalog smaller than the candidate pool too
            self.stats["fallback"] += len(todo)
            ids, scores = ExactRetriever().top_k(items, users[todo], pop, k,
                                                 [exclude[r] for r in todo] if exclude else None,
                                                 None if bonus is None else bonus.subset(todo))
            out_ids[todo], out_s[todo] = ids, scores
        return out_ids, out_s

    def _candidates(self, items: ItemVectors, u: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """The index's ``c`` best by inner product: (scores, ids) ``(b, c)``, -1 ids where short."""
        if not items.table.n_base:
            return np.empty((len(u), 0), np.float32), np.empty((len(u), 0), np.int64)
        return self._search(items.index, u, c)

    def _rescore(self, table: Layered, u: np.ndarray, pop: PopularityTerm, k: int,
                 ex: list[np.ndarray] | None, ann: np.ndarray, p: int,
                 bonus: Bonus | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` of the index candidates, the ``p`` most popular, the changed items and the
        items with a bonus."""
        b = len(u)
        top_pop, _ = pop.top(p)
        parts = [ann, np.broadcast_to(top_pop, (b, len(top_pop))), np.broadcast_to(table.over_ids, (b, table.n_over))]
        if bonus is not None and len(bonus.rows):
            width = int(np.bincount(bonus.rows, minlength=b).max())
            extra = np.full((b, width), -1, np.int64)
            for r in range(b):
                own = bonus.of_row(r)
                extra[r, : len(own)] = own
            parts.append(extra)
        cands = np.hstack(parts)
        cands = np.sort(cands, axis=1)
        invalid = (cands < 0) | np.hstack([np.zeros((b, 1), bool), cands[:, 1:] == cands[:, :-1]])
        invalid |= _exclusion_mask(cands, ex)
        safe = np.where(invalid, 0, cands)
        s = combine(u, table.take(safe), pop.scores[safe])
        if bonus is not None:
            s = s + bonus.lookup(safe)
        s[invalid] = -np.inf
        return _best_k(cands, s.astype(np.float32), k)


def make_retriever(kind: str, **options: object) -> Retriever:
    """``exact``, ``flat`` or ``hnsw`` (options go to :class:`FaissRetriever`)."""
    if kind == "exact":
        return ExactRetriever()
    if kind in ("flat", "hnsw"):
        return FaissRetriever(kind, **options)  # type: ignore[arg-type]
    raise PrerecError(f"unknown retrieval {kind!r}; use one of {', '.join(RETRIEVALS)}")
