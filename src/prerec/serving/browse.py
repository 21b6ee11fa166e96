"""Finding items by typing, and the most popular items of a day (mixed into ``Service``).

Both serve the web page at ``/`` (serving/web/) and anyone exploring a catalog:

- :meth:`Browse.search`: catalog items whose text holds the query's words (case-insensitive,
  most words matched first; an item id typed whole matches too), then the items whose text
  embedding is closest (cosine) to the query's, which is encoded by the run's text pipeline in
  the bounded pool. When the pool is saturated the answer has the word matches only
  (``similarity: False``). The scan is linear in the catalog: fine for the B1 catalogs
  (thousands of items); for millions it is a demo, not a search engine.
- :meth:`Browse.popular`: the ``k`` items with the highest popularity term g(F_j(today)),
  i.e. today's most popular items as the model sees them.
"""

from __future__ import annotations

import re

import numpy as np

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving.encoding import EncoderBusy
from prerec.serving.histories import RequestError

WORD = re.compile(r"\w+", re.UNICODE)


class Browse:
    """Methods of ``Service`` for browsing a domain's catalog (see the module docstring)."""

    def search(self, domain: str, query: str, k: int = 20) -> dict:
        """Items for a typed ``query``: ``{"items": [{item_id, text, match, similarity}], "similarity": bool}``."""
        state = self._state(domain)
        query = query.strip()
        if not query:
            raise RequestError("query: must not be blank")
        if not 1 <= int(k) <= self.max_k:
            raise RequestError(f"k must be between 1 and {self.max_k}, got {k}")
        cat = state.snapshot.catalog
        rows = np.arange(cat.n)
        if cat.hidden:
            rows = rows[~np.isin(rows, list(cat.hidden))]
        texts = cat.texts.take(rows)
        ids = cat.ids.take(rows)
        words = {w.lower() for w in WORD.findall(query)}
        hits = np.array([len(words & {w.lower() for w in WORD.findall(str(t))}) for t in texts], dtype=np.int64)
        hits += np.array([str(i) == query for i in ids], dtype=np.int64) * (len(words) + 1)
        sim = np.zeros(len(rows), np.float32)
        try:
            q = np.asarray(self.texts.encode([query]), np.float32)[0]
            emb = cat.emb.take(rows)
            sim = emb @ q / np.maximum(np.linalg.norm(emb, axis=1) * np.linalg.norm(q), 1e-12)
            similarity = True
        except EncoderBusy:
            similarity = False
        by_words = [int(r) for r in np.lexsort((-sim, -hits)) if hits[r] > 0][:k]
        seen = set(by_words)
        by_sim = [int(r) for r in np.argsort(-sim, kind="stable") if int(r) not in seen] if similarity else []
        chosen = by_words + by_sim[: k - len(by_words)]
        return {"similarity": similarity, "items": [
            {"item_id": str(ids[r]), "text": str(texts[r]), "match": "words" if hits[r] > 0 else "similar",
             "similarity": float(sim[r])} for r in chosen]}

    def popular(self, domain: str, k: int = 10, timestamp: float | None = None) -> list[dict]:
        """The ``k`` items with the highest g(F_j(today)) (``today`` from ``timestamp``)."""
        state = self._state(domain)
        if not 1 <= int(k) <= self.max_k:
            raise RequestError(f"k must be between 1 and {self.max_k}, got {k}")
        day = int((self.clock() if timestamp is None else timestamp) // SECONDS_PER_DAY)
        snap, term = self._read(state, day)
        g = term.scores
        order = np.argsort(-g, kind="stable")[: int(k)]
        order = order[np.isfinite(g[order])]
        cat = snap.catalog
        return [{"item_id": str(i), "text": str(t), "popularity": float(s)}
                for i, t, s in zip(cat.ids.take(order), cat.texts.take(order), g[order])]
