"""Replicas: a ``Service`` follows its store, so that every process on one database serves the
same catalog and the same popularity (mixed into :class:`prerec.serving.Service`).

Each domain remembers the last event position (``event_head``) and item version
(``item_head``) it applied. Three paths bring changes in, all under the domain's lock and all
through :meth:`_apply_events` / :meth:`_apply_item_rows`, so nothing is applied twice:

- **start** (:meth:`_replay`): every stored item, then every stored event;
- **own writes**: a write hands the store the heads; the store returns what other processes
  committed since, and the write applies theirs and its own (serving/store.py);
- **others' writes**: a follower thread waits on :meth:`Store.wait_for_change` (PostgreSQL:
  LISTEN/NOTIFY, at most ``sync_interval`` seconds; SQLite: every ``sync_interval`` seconds)
  and pulls every domain's new items, then new events.

An event may name an item this process has not seen yet (added on another replica a moment
before): the items are pulled first, and once more if an event still names an unknown item.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import numpy as np

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving.store import EventFeed, StoredItem

log = logging.getLogger(__name__)


class StoreFollower:
    """Methods of ``Service`` that keep its domains equal to the store (see the module docstring)."""

    # ---- applying ---------------------------------------------------------------------------

    def _apply_events(self, state: object, feed: EventFeed) -> None:
        """Count ``feed``'s events in the domain's popularity (call under the domain's lock)."""
        if len(feed):
            rows = self._rows_of(state, feed.item_ids)
            if (rows < 0).any():
                self._sync_items(state)  # added on another replica after our last pull
                rows = self._rows_of(state, feed.item_ids)
            known = rows >= 0
            if not known.all():
                log.warning("%s: %d stored events name items no longer in the catalog; ignored",
                            state.name, int((~known).sum()))
            state.popularity.add(rows[known], feed.timestamps[known] // SECONDS_PER_DAY)
            snap = state.snapshot
            state.snapshot = type(snap)(snap.catalog, snap.version + 1, snap.n_events + int(known.sum()))
        state.event_head = max(state.event_head, feed.head)

    @staticmethod
    def _rows_of(state: object, item_ids: np.ndarray) -> np.ndarray:
        cat = state.snapshot.catalog  # a deleted item's events still count
        return np.array([-1 if (j := cat.row_of(i)) is None else j for i in item_ids], dtype=np.int64)

    def _apply_item_rows(self, state: object, rows: list[StoredItem]) -> None:
        """Bring stored item states in (added, re-texted, deleted), re-encoding those whose
        embedding was computed by another text pipeline (call under the domain's lock)."""
        if not rows:
            return
        cat = state.snapshot.catalog
        dim = cat.emb.base.shape[1] if cat.emb.base.ndim == 2 else 0
        stale = [r for r in rows if not r.deleted and (r.encoder != self.text_identity or r.emb is None
                                                       or len(r.emb) != dim)]
        fresh = {}
        if stale:
            log.warning("%s: %d stored items were encoded by another text pipeline (or none); re-encoding them "
                        "with %s", state.name, len(stale), self.text_identity)
            emb = self._encode_all([r.text for r in stale], f"re-encode {state.name} items")
            self.store.set_embeddings(state.name, [r.item_id for r in stale], emb, self.text_identity)
            fresh = {r.item_id: e for r, e in zip(stale, emb)}
        ids, texts, embs, hide, hide_catalog = [], [], [], [], set()
        for r in rows:
            j = cat.row_of(r.item_id)
            if r.deleted and j is not None and j < state.n_catalog:
                hide_catalog.add(j)  # a hidden catalog item keeps its catalog row and text
                continue
            if r.deleted:
                hide.append(len(ids))
            ids.append(r.item_id)
            texts.append(r.text)
            embs.append(np.zeros(dim, np.float32) if r.deleted else fresh.get(r.item_id, r.emb))
        if ids:
            self._upsert(state, ids, texts, persist=False, emb=np.vstack(embs), hide=hide)
        if hide_catalog:
            cat = state.snapshot.catalog
            self._publish(state, replace(cat, hidden=cat.hidden | hide_catalog))

    # ---- pulling ----------------------------------------------------------------------------

    def _sync_items(self, state: object) -> None:
        rows, head = self.store.item_changes(state.name, state.item_head)
        self._apply_item_rows(state, rows)
        state.item_head = max(state.item_head, head)

    def _replay(self, state: object) -> None:
        """Rebuild a domain's items and popularity from the store (at attach)."""
        with state.lock:
            self._sync_items(state)
            self._apply_events(state, self.store.events_since(state.name, state.event_head))

    def sync(self, domain: str | None = None) -> None:
        """Pull what other processes wrote to the store (every domain, or one)."""
        if self.store is None:
            return
        for state in [self._state(domain)] if domain is not None else list(self._domains.values()):
            with state.lock:
                self._sync_items(state)
                self._apply_events(state, self.store.events_since(state.name, state.event_head))

    # ---- the follower thread ------------------------------------------------------------------

    def _start_follower(self) -> None:
        if self.store is None or self.sync_interval is None or self._follower is not None:
            return
        self._stop_following = threading.Event()
        self._follower = threading.Thread(target=self._follow, name="prerec-store-follower", daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        failing = False
        while not self._stop_following.is_set():
            self.store.wait_for_change(self.sync_interval)
            if self._stop_following.is_set():
                break
            try:
                self.sync()
                if failing:
                    log.warning("store %s reachable again", self.store.describe())
                failing = False
            except Exception as exc:  # the store may be down for a while: keep serving, retry
                if not failing:
                    log.warning("cannot pull changes from %s (%s); retrying", self.store.describe(), exc)
                failing = True
                self._stop_following.wait(self.sync_interval)

    def _stop_follower(self) -> None:
        if self._follower is not None:
            self._stop_following.set()
            self.store.wake()
            self._follower.join(timeout=10)
            self._follower = None
