"""The serving API in Python: a loaded model, target domains attached from their catalogs, and
batch-first recommendation (in the spirit of ``implicit``'s ``recommend``).

    from prerec.serving import Service, Text
    service = Service.load("runs/b1", retrieval="hnsw", store="events.sqlite")  # or "postgresql://..."
    service.attach("Germany=online-retail:online_retail_2010_2011.parquet#Germany")
    recs = service.recommend("Germany", [["22423", "85123A"], [Text("red retrospot tea cup")]], k=10)
    recs.item_ids, recs.scores                           # (2, 10) each, best first
    service.add_items("Germany", {"NEW-1": "blue polka dot mug"})         # cold start
    service.delete_item("Germany", "NEW-1")
    service.record("Germany", [Event("u1", "NEW-1", 1323993600)])          # popularity

Attaching a domain encodes its item texts (no training). A history may mix catalog item ids
and raw item texts (``Text(...)`` or ``{"text": ...}``) of items the catalog does not have:
those are embedded on the fly (V = W x), in a bounded pool of encoder threads, each cut to
one encoder window (serving/encoding.py). Scores are U . V_j + g(F_j(today)) with the domain's
popularity factors of "today" (docs/method.md, "Popularity factors": the 15 days before today, from the domain's
log plus every event recorded since), so recorded events change the next request's ranking
from the day after they happened (today's events are outside today's window, as in training).

Concurrency: request threads read immutable snapshots without locks; every mutation (added
or deleted items, recorded events) runs under its domain's lock, is made durable first (when a
store is given) and then publishes a new snapshot. The catalog mutations live in
serving/mutations.py. Several processes on one store (PostgreSQL, or one SQLite file) are
replicas: each follows the others' writes (serving/replication.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prerec.data.domain import SECONDS_PER_DAY, Domain
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.popularity import PopularityIndex
from prerec.serving.browse import Browse
from prerec.serving.encoding import TextPool, text_identity, window_cutter
from prerec.serving.histories import (
    HistoryEntry,
    RequestError,
    Text,
    UnknownItemError,
    catalog_tails,
    history_vectors,
)
from prerec.serving.layered import Layered
from prerec.serving.limits import MAX_TIMESTAMP
from prerec.serving.model import ServingModel
from prerec.serving.mutations import CatalogMutations
from prerec.serving.replication import StoreFollower
from prerec.serving.retrieval import (
    Bonus,
    ItemVectors,
    PopularityTerm,
    Retriever,
    make_retriever,
)
from prerec.serving.store import Event, Store
from prerec.serving.stores import open_store
from prerec.serving.terms import repeat_bonus
from prerec.serving.threads import one_thread_per_request  # noqa: F401 (re-exported)
from prerec.transitions import TransitionTable

log = logging.getLogger(__name__)

MAX_HISTORY_ITEMS = 1024  # a longer history is a client bug (only the last 64 items count)
MAX_K = 1000
MAX_BATCH = 1024


class UnknownDomainError(PrerecError):
    """The request names a domain the service has not attached (HTTP 404)."""




@dataclass(frozen=True)
class Recommendations:
    """Top-k per history, best first: ids ``(b, k)`` (``None`` where fewer than k items were
    left), full scores (``-inf`` there), catalog texts and catalog indices (``-1`` there), and
    each score's popularity part g(F_j(today)) (the rest, ``scores - popularity``, is U . V_j)."""

    item_ids: np.ndarray
    scores: np.ndarray
    texts: np.ndarray
    indices: np.ndarray
    popularity: np.ndarray | None = None

    def row(self, r: int) -> list[tuple[str, float, str]]:
        """The ``r``-th history's recommendations as ``(item_id, score, text)`` triples."""
        return [(str(i), float(s), str(t)) for i, s, t, j in
                zip(self.item_ids[r], self.scores[r], self.texts[r], self.indices[r]) if j >= 0]


@dataclass(frozen=True)
class Recorded:
    """Result of :meth:`Service.record`: events now durable, and how many of them were repeats
    of an already stored ``event_id`` (stored once, counted once)."""

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class _Catalog:
    """One immutable version of a domain's catalog."""

    ids: Layered  # (n,) object: item id strings
    texts: Layered  # (n,) object
    emb: Layered  # (n, F) float32 text embeddings
    vectors: ItemVectors  # V (n, H) and the retrieval index
    base_index: dict[str, int]  # id -> row of the base rows (shared between versions, never mutated)
    added_index: dict[str, int]  # id -> row of items added since the base was built (copied on write)
    hidden: frozenset[int] = frozenset()  # rows of deleted items (never recommended, never looked up)

    @property
    def n(self) -> int:
        return self.ids.n

    def row_of(self, item_id: str) -> int | None:
        """The item's row, deleted or not."""
        j = self.added_index.get(item_id)
        return self.base_index.get(item_id) if j is None else j

    def lookup(self, item_id: str) -> int | None:
        """The row of a current (not deleted) item."""
        j = self.row_of(item_id)
        return None if j in self.hidden else j


@dataclass(frozen=True)
class _Snapshot:
    catalog: _Catalog
    version: int
    n_events: int  # events recorded through the service (and replayed from its store)
    pop_cache: dict = field(default_factory=dict)  # day -> PopularityTerm, filled under the lock


@dataclass
class _DomainState:
    name: str
    prepared: PreparedDomain
    popularity: PopularityIndex  # the prepared domain's index, grown by recorded events
    snapshot: _Snapshot
    lock: threading.RLock = field(default_factory=threading.RLock)
    n_catalog: int = 0  # items of the domain's own catalog (the rest were added)
    transitions: TransitionTable | None = None  # the transition head's counts over the own catalog
    event_head: int = 0  # the store's last event position applied here
    item_head: int = 0  # the store's last item version applied here


def _as_event(e: Event | Mapping | Sequence, where: str) -> Event:
    if isinstance(e, Event):
        return e
    if isinstance(e, Mapping):
        try:
            return Event(str(e["user_id"]), str(e["item_id"]), int(e["timestamp"]),
                         None if e.get("event_id") is None else str(e["event_id"]))
        except KeyError as exc:
            raise RequestError(f"{where}: missing field {exc.args[0]!r}") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise RequestError(f"{where}: timestamp must be an integer (unix seconds)") from exc
    try:
        return Event(str(e[0]), str(e[1]), int(e[2]), str(e[3]) if len(e) > 3 and e[3] is not None else None)
    except (TypeError, ValueError, IndexError) as exc:
        raise RequestError(f"{where}: expected (user_id, item_id, timestamp[, event_id])") from exc


class Service(CatalogMutations, StoreFollower, Browse):
    """A loaded model serving any number of attached target domains (thread-safe).

    Raw texts are encoded in a bounded pool (``encode_workers`` threads, ``encode_queue`` jobs
    waiting, ``encode_timeout`` seconds; ``EncoderBusy`` beyond), each cut to one encoder
    window and to ``max_text_chars`` characters. ``store``: a :class:`Store`, an SQLite path or
    a ``postgresql://`` URL; other processes' writes to it are pulled every ``sync_interval``
    seconds at most (sooner on PostgreSQL's NOTIFY; ``None``: only at attach and on writes).
    """

    def __init__(self, model: ServingModel, *, retrieval: str | Retriever = "exact",
                 store: Store | str | Path | None = None, clock: Callable[[], float] = time.time,
                 max_history_items: int = MAX_HISTORY_ITEMS, max_k: int = MAX_K,
                 compact_fraction: float = 0.125, max_text_chars: int = 10_000, encode_workers: int = 1,
                 encode_queue: int = 8, encode_timeout: float = 30.0, sync_interval: float | None = 1.0) -> None:
        self.model = model
        self.retriever = make_retriever(retrieval) if isinstance(retrieval, str) else retrieval
        self.store = None if store is None else open_store(store)
        self.sync_interval = sync_interval
        self._follower: threading.Thread | None = None
        self.clock = clock
        self.max_history_items = int(max_history_items)
        self.max_k = int(max_k)
        self.compact_fraction = float(compact_fraction)
        self._domains: dict[str, _DomainState] = {}
        self._attach_lock = threading.Lock()
        cut, window = window_cutter(model, int(max_text_chars))
        self.text_identity = text_identity(model, window)
        self.texts = TextPool(model.embed_texts, cut, workers=encode_workers, queue=encode_queue,
                              timeout=encode_timeout)

    @classmethod
    def load(cls, run_dir: str | Path, inference: str = "auto", repeat_mixture: str = "run",
             **options: object) -> Service:
        """Load a run once (in one inference mode; ``auto``: in-domain for a domain the run has
        learned, e.g. a fine-tuned target, zero-shot for a new one; ``repeat_mixture`` as for
        :meth:`ServingModel.from_run`); ``options`` as for the constructor."""
        return cls(ServingModel.from_run(run_dir, inference, repeat_mixture), **options)  # type: ignore[arg-type]

    def close(self) -> None:
        self.texts.close()
        if self.store is not None:
            self._stop_follower()
            self.store.close()

    # ---- domains --------------------------------------------------------------------------

    def attach(self, domain: Domain | str, *, name: str | None = None) -> dict:
        """Attach a target domain (a :class:`Domain` or ``NAME=FORMAT:PATH``): encode its item
        texts, build the retrieval index, then replay the items and events of the store."""
        if isinstance(domain, str):
            from prerec.data.readers import load_domain

            domain = load_domain(domain)
        name = name or domain.name
        t0 = time.perf_counter()
        prepared = self.model.prepare(domain)
        self.model.observe(name, prepared)
        emb = np.ascontiguousarray(prepared.item_emb, dtype=np.float32)
        ids = np.asarray(domain.item_ids, dtype=object)
        vectors = np.ascontiguousarray(self.model.item_vectors(emb, domain), dtype=np.float32)
        catalog = _Catalog(
            ids=Layered.of(ids), texts=Layered.of(domain.texts.to_numpy(dtype=object)), emb=Layered.of(emb),
            vectors=self.retriever.vectors(Layered.of(vectors)),
            base_index={str(i): k for k, i in enumerate(ids)}, added_index={},
        )
        state = _DomainState(name, prepared, prepared.popularity, _Snapshot(catalog, 0, 0), n_catalog=len(ids),
                             transitions=self.model.transition_table(domain))
        if self.store is not None:
            self._replay(state)
        with self._attach_lock:
            if name in self._domains:
                raise PrerecError(f"domain {name!r} is already attached")
            self._domains[name] = state
        self._start_follower()
        log.info("attached %s: %d items (%d added), %d events replayed, %s retrieval, %.1fs", name,
                 state.snapshot.catalog.n, state.snapshot.catalog.n - state.n_catalog,
                 state.snapshot.n_events, self.retriever.name, time.perf_counter() - t0)
        return self.info(name)

    def _state(self, domain: str) -> _DomainState:
        state = self._domains.get(domain)
        if state is None:
            known = ", ".join(sorted(self._domains)) or "none"
            raise UnknownDomainError(f"unknown domain {domain!r}; attached domains: {known}")
        return state

    @property
    def domain_names(self) -> list[str]:
        return sorted(self._domains)

    def info(self, domain: str) -> dict:
        """What is served for a domain: catalog size, added items, recorded events."""
        state = self._state(domain)
        snap = state.snapshot
        cat = snap.catalog
        n_deleted_catalog = sum(j < state.n_catalog for j in cat.hidden)
        return {"name": state.name, "n_items": cat.n - len(cat.hidden),
                "n_catalog_items": state.n_catalog - n_deleted_catalog,
                "n_added_items": cat.n - state.n_catalog - (len(cat.hidden) - n_deleted_catalog),
                "n_deleted_items": len(cat.hidden), "n_events": snap.n_events,
                "timed": state.popularity.timed, "retrieval": self.retriever.name}

    # ---- reads ------------------------------------------------------------------------------

    def _read(self, state: _DomainState, day: int | None) -> tuple[_Snapshot, PopularityTerm]:
        """A snapshot and its popularity term for ``day`` (computed once per snapshot and day)."""
        key = day if state.popularity.timed else None
        snap = state.snapshot
        term = snap.pop_cache.get(key)
        if term is not None:
            return snap, term
        with state.lock:
            snap = state.snapshot
            term = snap.pop_cache.get(key)
            if term is None:
                z = self.model.popularity_scores(state.popularity, key, snap.catalog.n)
                z.scores[list(snap.catalog.hidden)] = -np.inf  # deleted items are never recommended
                term = PopularityTerm(z.scores, base=z.base, special=z.special)
                if len(snap.pop_cache) >= 8:
                    snap.pop_cache.clear()
                snap.pop_cache[key] = term
        return snap, term

    def popularity_scores(self, domain: str, timestamp: float | None = None) -> np.ndarray:
        """g(F_j(today)) of every catalog item ``(n_items,)`` (``today`` from ``timestamp``)."""
        state = self._state(domain)
        day = int((self.clock() if timestamp is None else timestamp) // SECONDS_PER_DAY)
        return self._read(state, day)[1].scores

    def recommend(self, domain: str, histories: Sequence[Sequence[HistoryEntry]], k: int = 10,
                  exclude_seen: bool = False, *, timestamp: float | None = None) -> Recommendations:
        """Top-``k`` items for each history of the batch, best first.

        A history entry is a catalog item id or the text of an item (``Text`` or
        ``{"text": ...}``). ``exclude_seen`` drops the history's catalog items from its answer.
        ``timestamp`` (unix seconds, default now) decides "today" for the popularity factors.
        """
        state = self._state(domain)
        if not len(histories):
            raise RequestError("no histories given")
        if len(histories) > MAX_BATCH:
            raise RequestError(f"{len(histories)} histories in one call; at most {MAX_BATCH}")
        if not 1 <= int(k) <= self.max_k:
            raise RequestError(f"k must be between 1 and {self.max_k}, got {k}")
        day = int((self.clock() if timestamp is None else timestamp) // SECONDS_PER_DAY)
        snap, pop = self._read(state, day)
        cat = snap.catalog
        L = self.model.max_history
        known_rows, vectors, hist, lengths = history_vectors(
            histories, cat.lookup, cat.vectors.table, self.model, self.texts.encode, state.name, L,
            self.max_history_items)
        users = self.model.user_vectors(vectors, hist, lengths, state.name)
        bonus = self._transition_bonus(state, histories, cat)
        if self.model.repeat_mixture:  # the history's own items placed by the repeat mixture
            tails, tail_lengths = catalog_tails(histories, cat.lookup, cat.n, L)
            bonus = repeat_bonus(cat.vectors, users, pop, tails, tail_lengths, bonus)
        top, scores = self.retriever.top_k(cat.vectors, users, pop, int(k), known_rows if exclude_seen else None,
                                           bonus)
        valid = top >= 0
        safe = np.where(valid, top, 0)
        item_ids = np.where(valid, cat.ids.take(safe), None)
        item_texts = np.where(valid, cat.texts.take(safe), None)
        return Recommendations(item_ids, scores, item_texts, top, np.where(valid, pop.scores[safe], np.nan))

    def _transition_bonus(self, state: _DomainState, histories: Sequence[Sequence[HistoryEntry]],
                          cat: _Catalog) -> Bonus | None:
        """beta log(1 + T_h(j)) of each history's items with a count (None without a head)."""
        head = self.model.transitions
        if head is None or state.transitions is None:
            return None
        tails, lengths = catalog_tails(histories, cat.lookup, state.n_catalog, head.last)
        rows, items, values = head.terms(state.transitions, tails, lengths)
        return Bonus(rows, items, values.astype(np.float32))

    # ---- mutations ----------------------------------------------------------------------------

    @staticmethod
    def _event_rows(state: _DomainState, evs: list[Event]) -> np.ndarray:
        """The events' catalog rows (-1: not a current item); bad timestamps or ids raise."""
        cat = state.snapshot.catalog  # an item deleted meanwhile may still get these events
        idx = np.empty(len(evs), dtype=np.int64)
        for n, e in enumerate(evs):
            if not 0 <= e.timestamp <= MAX_TIMESTAMP:
                raise RequestError(f"event {n}: timestamp must be unix seconds in [0, {MAX_TIMESTAMP}], "
                                   f"got {e.timestamp}")
            if "\x00" in e.user_id + (e.event_id or ""):
                raise RequestError(f"event {n}: user_id or event_id holds a NUL character")
            j = cat.lookup(e.item_id)
            idx[n] = -1 if j is None else j
        return idx

    def record(self, domain: str, events: Iterable[Event | Mapping | Sequence]) -> Recorded:
        """Record interactions; they are durable (in the store) when this returns, and update
        the domain's popularity factors for the following requests. An event whose
        ``event_id`` is already stored is acknowledged but not counted again."""
        state = self._state(domain)
        evs = [_as_event(e, f"event {n}") for n, e in enumerate(events)]
        if not evs:
            raise RequestError("no events given")
        idx = self._event_rows(state, evs)
        if (idx < 0).any() and self.store is not None:
            with state.lock:
                self._sync_items(state)  # added on another replica a moment ago?
            idx = self._event_rows(state, evs)
        if (idx < 0).any():
            n = int(np.argmax(idx < 0))
            raise UnknownItemError(f"event {n}: item {evs[n].item_id!r} is not in the catalog of domain "
                                   f"{state.name!r} (add it with PUT /domains/{state.name}/items first)")
        with state.lock:
            if self.store is None:
                new = np.ones(len(evs), bool)
                days = np.array([e.timestamp for e in evs], dtype=np.int64) // SECONDS_PER_DAY
                state.popularity.add(idx, days)
                snap = state.snapshot
                state.snapshot = _Snapshot(snap.catalog, snap.version + 1, snap.n_events + len(evs))
            else:  # ours and what other replicas committed since this one last looked, once each
                done = self.store.append_events(state.name, evs, since=state.event_head)
                new = done.new
                self._apply_events(state, done.feed)
        return Recorded(len(evs), int((~new).sum()))


__all__ = ["MAX_BATCH", "MAX_HISTORY_ITEMS", "MAX_K", "HistoryEntry", "Recommendations", "Recorded", "RequestError",
           "Service", "Text", "UnknownDomainError", "UnknownItemError"]
