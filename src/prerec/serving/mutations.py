"""The catalog-changing half of :class:`prerec.serving.Service`: add, re-text, delete, replay.

Mixed into ``Service`` (serving/api.py holds the domain state, reads and events). Every change
runs under the domain's lock, is made durable first (when a store is given) and then
publishes a new immutable snapshot.

- Added items are encoded through the service's bounded text pool (serving/encoding.py) and
  stored *with their embeddings* and the identity of the text pipeline, so a restart replays
  them without encoding anything, unless the pipeline changed (another encoder, other
  post-processing, another window): then the stale ones are re-encoded once and stored again.
- Deleting an item hides its row: it is never recommended, and a history or an event naming it
  is answered 404 like an unknown id. An added item's text and embedding are erased from the
  store; a tombstone row stays so that a restart rebuilds the same rows and the popularity
  normalisers still count its past events (as they did before the restart). Adding the id
  again brings the item back with its new text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from prerec.serving.histories import RequestError, UnknownItemError
from prerec.serving.limits import excerpt
from prerec.serving.retrieval import ItemVectors

log = logging.getLogger(__name__)
REENCODE_CHUNK = 256


class CatalogMutations:
    """Methods of ``Service`` that change a domain's catalog (see the module docstring)."""

    def add_items(self, domain: str, items: Mapping[str, str] | Iterable[tuple[str, str] | Mapping]) -> dict:
        """Add items by text, or change the text of existing ones (cold start: the texts are
        encoded, the item matrix and the retrieval index extended). Durable before it returns."""
        state = self._state(domain)
        pairs = list(items.items()) if isinstance(items, Mapping) else [
            (i["item_id"], i["text"]) if isinstance(i, Mapping) else tuple(i) for i in items]
        if not pairs:
            raise RequestError("no items given")
        latest: dict[str, str] = {}
        for n, (item_id, text) in enumerate(pairs):
            if not isinstance(item_id, str) or not item_id.strip():
                raise RequestError(f"item {n}: item_id must be a non-empty string")
            if not isinstance(text, str) or not text.strip():
                raise RequestError(f"item {n} ({excerpt(item_id)}): text must be a non-empty string")
            if not (item_id + text).isascii():
                try:
                    (item_id + text).encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise RequestError(f"item {n} ({excerpt(item_id)}): holds a lone surrogate") from exc
            if "\x00" in item_id + text:
                raise RequestError(f"item {n} ({excerpt(item_id)}): holds a NUL character")
            latest[item_id] = text
        return self._upsert(state, list(latest), list(latest.values()), persist=True)

    def delete_item(self, domain: str, item_id: str) -> dict:
        """Delete an added item or hide a catalog item (durable before it returns)."""
        state = self._state(domain)
        with state.lock:
            if state.snapshot.catalog.lookup(item_id) is None and self.store is not None:
                self._sync_items(state)  # it may have been added on another replica
            j = state.snapshot.catalog.lookup(item_id)
            if j is None:
                raise UnknownItemError(f"item {excerpt(item_id)} is not in the catalog of domain {state.name!r}")
            if self.store is not None:
                write = self.store.delete_item(state.name, item_id, since=state.item_head)
                self._apply_item_rows(state, write.others)  # other replicas' changes come first
                state.item_head = write.version
            cat = state.snapshot.catalog
            cat = self._publish(state, replace(cat, hidden=cat.hidden | {cat.row_of(item_id)}))
        return {"deleted": item_id, "catalog_item": j < state.n_catalog, "n_items": cat.n - len(cat.hidden)}

    def _publish(self, state: object, catalog: object) -> object:
        """Make ``catalog`` the domain's current one (a new snapshot; call under the lock)."""
        snap = state.snapshot
        state.snapshot = type(snap)(catalog, snap.version + 1, snap.n_events)
        return catalog

    def _upsert(self, state: object, item_ids: list[str], texts: list[str], *, persist: bool,
                emb: np.ndarray | None = None, hide: Iterable[int] = ()) -> dict:
        """Add or update items (``emb``: their embeddings, else encoded in the text pool); the
        items at positions ``hide`` are left hidden (tombstones, at replay)."""
        if emb is None:
            emb = self.texts.encode(texts)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        vecs = self.model.item_vectors(emb).astype(np.float32)
        with state.lock:
            if persist and self.store is not None:
                write = self.store.put_items(state.name, zip(item_ids, texts), emb, self.text_identity,
                                             since=state.item_head)
                self._apply_item_rows(state, write.others)  # other replicas' changes come first
                state.item_head = write.version
            cat = state.snapshot.catalog
            added = dict(cat.added_index)
            rows = np.empty(len(item_ids), dtype=np.int64)
            n = cat.n
            for k, item_id in enumerate(item_ids):
                j = cat.row_of(item_id)
                if j is None:
                    j = added[item_id] = n
                    n += 1
                rows[k] = j
            revived = cat.hidden & set(rows.tolist())
            hidden = (cat.hidden - revived) | {int(rows[k]) for k in hide}
            n_new = n - cat.n + len(revived)
            ids = cat.ids.with_rows(rows, np.array(item_ids, dtype=object))
            txt = cat.texts.with_rows(rows, np.array(texts, dtype=object))
            embs = cat.emb.with_rows(rows, emb)
            table = cat.vectors.table.with_rows(rows, vecs)
            if table.n_over > max(1024, self.compact_fraction * table.n_base):
                ids, txt, embs, table = ids.compact(), txt.compact(), embs.compact(), table.compact()
                cat = type(cat)(ids, txt, embs, self.retriever.vectors(table), {**cat.base_index, **added}, {},
                                hidden=frozenset(hidden))
                log.info("%s: folded %d added/changed items into the index", state.name, table.n)
            else:
                cat = type(cat)(ids, txt, embs, ItemVectors(table, cat.vectors.index), cat.base_index, added,
                                hidden=frozenset(hidden))
            self._publish(state, cat)
        return {"added": int(n_new), "updated": len(item_ids) - int(n_new), "n_items": cat.n - len(cat.hidden)}

    def _encode_all(self, texts: list[str], what: str) -> np.ndarray:
        """Encode many texts at start (no pool timeout), with progress."""
        out = []
        with tqdm(total=len(texts), desc=what, unit="text", disable=len(texts) < 1000) as bar:
            for a in range(0, len(texts), REENCODE_CHUNK):
                out.append(np.asarray(self.model.embed_texts(self.texts.cut(texts[a: a + REENCODE_CHUNK])),
                                      np.float32))
                bar.update(min(REENCODE_CHUNK, len(texts) - a))
        return np.vstack(out)
