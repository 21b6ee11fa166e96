"""Top-k retrieval of the full PreRec score s_j = U . V_j + g(F_j), exact or through FAISS.

One interface, :class:`Retriever`: ``build(base)`` makes the index over a catalog's item
vectors (once), ``top_k(items, users, pop, k, exclude)`` returns the best ``k`` items per user.

- ``exact``: chunked matrix product over the whole catalog plus the popularity term, a running
  top-k per chunk. The reference.
- ``flat`` (FAISS ``IndexFlatIP``) and ``hnsw`` (FAISS ``IndexHNSWFlat``, inner product): the
  index knows only U . V. g(F) is not an inner product, so the candidates are
  (a) the ``c`` best items by U . V from the index, ``c = max(overfetch * k', k' + extra)``
  with ``k' = k + #excluded``; (b) the ``p`` items with the highest popularity score g(F)
  (precomputed once per popularity snapshot); (c) every item added or changed since the index
  was built. All candidates are re-scored exactly with U . V + g(F) and the best ``k`` kept.
  Certificate: an item outside the candidates has U . V <= D_c (the c-th inner product the
  index returned) and g(F) <= P_p (the best popularity score left out), so if the k-th
  re-scored candidate reaches ``D_c + P_p`` no item outside can beat it. For ``flat`` (exact
  inner products) this makes the answer exact; rows that are not certified are retried with 4x
  more candidates (at most ``rounds`` times, then the exact path answers them). For ``hnsw``
  the same rule is applied with its approximate D_c, so it only widens the search where the
  popularity term could matter; recall is measured in ``benchmarks/retrieval.py``.

Every structure a search reads is immutable, so any number of threads may search at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from prerec.errors import PrerecError
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


@dataclass(frozen=True)
class PopularityTerm:
    """g(F_j) of every item for one day; ``top(p)`` gives the ``p`` best and the best left out."""

    scores: np.ndarray  # (n,) float32

    @cached_property
    def _top(self) -> np.ndarray:
        n = len(self.scores)
        m = n if n <= 65536 else 8193
        part = np.argpartition(-self.scores, m - 1)[:m] if m < n else np.arange(n)
        return part[np.argsort(-self.scores[part], kind="stable")]

    def top(self, p: int) -> tuple[np.ndarray, float]:
        """The ``p`` items with the highest score and the highest score of the others (-inf if none)."""
        n = len(self.scores)
        p = min(int(p), n)
        order = self._top
        if p + 1 > len(order) and len(order) < n:
            part = np.argpartition(-self.scores, p)[: p + 1] if p < n else np.arange(n)
            order = part[np.argsort(-self.scores[part], kind="stable")]
        bound = float(self.scores[order[p]]) if p < n else -np.inf
        return order[:p], bound


def _exclusion_mask(cands: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
    """Boolean (b, c): candidate is one of the row's excluded items."""
    mask = np.zeros(cands.shape, dtype=bool)
    if exclude:
        for r, ex in enumerate(exclude):
            if len(ex):
                mask[r] = np.isin(cands[r], ex)
    return mask


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
              exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Item indices ``(b, k)`` and full scores, best first; -1 / -inf where fewer remain."""


class ExactRetriever(Retriever):
    """U . V + g(F) over every item, by chunks of ``chunk`` items (bounded memory)."""

    name = "exact"

    def __init__(self, chunk: int = 65536) -> None:
        self.chunk = int(chunk)

    def top_k(self, items: ItemVectors, users: np.ndarray, pop: PopularityTerm, k: int,
              exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        users = np.ascontiguousarray(users, dtype=np.float32)
        b = len(users)
        table = items.table
        k = max(1, min(int(k), table.n))
        best_ids = np.full((b, 0), -1, np.int64)
        best_s = np.full((b, 0), -np.inf, np.float32)
        stale = table.over_ids[table.over_ids < table.n_base]
        for start in range(0, table.n_base, self.chunk):
            stop = min(start + self.chunk, table.n_base)
            s = users @ table.base[start:stop].T
            s += pop.scores[start:stop]
            ids = np.broadcast_to(np.arange(start, stop, dtype=np.int64), s.shape)
            in_chunk = stale[(stale >= start) & (stale < stop)]
            s[:, in_chunk - start] = -np.inf  # their current vector is in the layer
            s[_exclusion_mask(ids, exclude)] = -np.inf
            best_ids, best_s = _best_k(np.hstack([best_ids, ids]), np.hstack([best_s, s]), k)
        if table.n_over:
            s = users @ table.over.T + pop.scores[table.over_ids]
            ids = np.broadcast_to(table.over_ids, s.shape)
            s[_exclusion_mask(ids, exclude)] = -np.inf
            best_ids, best_s = _best_k(np.hstack([best_ids, ids]), np.hstack([best_s, s]), k)
        return best_ids, best_s.astype(np.float32)


class FaissRetriever(Retriever):
    """FAISS inner-product candidates plus the most popular items, re-scored exactly."""

    def __init__(self, kind: str = "hnsw", *, m: int = 32, ef_construction: int = 64,
                 ef_search: int = 128, overfetch: int = 4, extra: int = 64, n_pop: int = 64,
                 rounds: int = 2, threads: int | None = None) -> None:
        if kind not in ("flat", "hnsw"):
            raise PrerecError(f"unknown FAISS retrieval {kind!r}; use flat or hnsw")
        self.name = kind
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.overfetch, self.extra, self.n_pop, self.rounds = int(overfetch), int(extra), int(n_pop), int(rounds)
        self.threads = threads
        self.stats = {"rows": 0, "certified": 0, "widened": 0, "fallback": 0}

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
              exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
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
        for round_ in range(self.rounds + 1):
            if table.n_base and c >= table.n_base:
                break  # the index would return everything: the exact path is cheaper
            u = users[todo]
            ex = [exclude[r] for r in todo] if exclude else None
            ids, scores, ok = self._round(items, u, pop, k, ex, c, p)
            out_ids[todo], out_s[todo] = ids, scores
            if round_ == 0:
                self.stats["certified"] += int(ok.sum())
            todo = todo[~ok]
            if not len(todo):
                break
            if round_ < self.rounds:
                self.stats["widened"] += len(todo)
                c, p = 4 * c, 4 * p
        if len(todo) and (self.name == "flat" or (table.n_base and c >= table.n_base)):
            # flat promises the exact answer; a catalog smaller than the candidate pool too
            self.stats["fallback"] += len(todo)
            ids, scores = ExactRetriever().top_k(items, users[todo], pop, k,
                                                 [exclude[r] for r in todo] if exclude else None)
            out_ids[todo], out_s[todo] = ids, scores
        return out_ids, out_s

    def _round(self, items: ItemVectors, u: np.ndarray, pop: PopularityTerm, k: int,
               ex: list[np.ndarray] | None, c: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One search with ``c`` index candidates and ``p`` popular ones: best ids, scores and
        whether each row is certified (see the module docstring)."""
        table = items.table
        b = len(u)
        if table.n_base:
            ip, ann = self._search(items.index, u, c)
        else:
            ip, ann = np.empty((b, 0), np.float32), np.empty((b, 0), np.int64)
        top_pop, pop_bound = pop.top(p)
        cands = np.hstack([ann, np.broadcast_to(top_pop, (b, len(top_pop))),
                           np.broadcast_to(table.over_ids, (b, table.n_over))])
        cands = np.sort(cands, axis=1)
        invalid = (cands < 0) | np.hstack([np.zeros((b, 1), bool), cands[:, 1:] == cands[:, :-1]])
        invalid |= _exclusion_mask(cands, ex)
        safe = np.where(invalid, 0, cands)
        s = np.einsum("bch,bh->bc", table.take(safe), u) + pop.scores[safe]
        s[invalid] = -np.inf
        ids, scores = _best_k(cands, s.astype(np.float32), k)
        if not table.n_base:
            return ids, scores, np.ones(b, dtype=bool)
        # an item outside the candidates scores at most D_c + P_p
        complete = (ann >= 0).all(axis=1)
        bound = np.where(complete, ip[:, -1], np.inf) + pop_bound
        return ids, scores, scores[:, -1] >= bound


def make_retriever(kind: str, **options: object) -> Retriever:
    """``exact``, ``flat`` or ``hnsw`` (options go to :class:`FaissRetriever`)."""
    if kind == "exact":
        return ExactRetriever()
    if kind in ("flat", "hnsw"):
        return FaissRetriever(kind, **options)  # type: ignore[arg-type]
    raise PrerecError(f"unknown retrieval {kind!r}; use one of {', '.join(RETRIEVALS)}")
