"""A request's histories parsed into the user tower's input (item ids and raw item texts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from prerec.errors import PrerecError
from prerec.scoring import last_items
from prerec.serving.layered import Layered
from prerec.serving.model import ServingModel


class UnknownItemError(PrerecError):
    """The request names an item id that is not in the domain's catalog (HTTP 404)."""


class RequestError(PrerecError):
    """A request that is well-formed JSON but cannot be served as asked (HTTP 422)."""


@dataclass(frozen=True)
class Text:
    """A history entry given by its text: an item the catalog does not have."""

    text: str


HistoryEntry = str | Text | Mapping[str, str]


def history_vectors(histories: Sequence[Sequence[HistoryEntry]], lookup: Callable[[str], int | None],
                    catalog_vectors: Layered, model: ServingModel, embed: Callable[[list[str]], np.ndarray],
                    domain: str, limit: int, max_items: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Parse a batch of histories: each history's catalog rows (for ``exclude_seen``) and the
    user tower's input, the vectors of the batch's distinct entries (catalog rows and raw texts,
    once each) with each history's last ``limit`` entries as rows into them (older entries cannot
    reach the user tower, so their texts are never encoded)."""
    known_rows: list[np.ndarray] = []  # every catalog item of each history (for exclude_seen)
    tail_keys: list[list[tuple[str, object]]] = []  # the last ``limit`` entries, as ("id", j) / ("text", s)
    for r, history in enumerate(histories):
        if isinstance(history, str | bytes):
            raise RequestError(f"history {r}: expected a list of entries, got a string")
        if not len(history):
            raise RequestError(f"history {r} is empty; give at least one item id or item text")
        if len(history) > max_items:
            raise RequestError(f"history {r} holds {len(history)} entries; at most {max_items}")
        keys: list[tuple[str, object]] = []
        for p, entry in enumerate(history):
            if isinstance(entry, Text | Mapping):
                text = entry.text if isinstance(entry, Text) else entry.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise RequestError(f"history {r}, entry {p}: an item text must be a non-empty string")
                keys.append(("text", text))
            else:
                j = lookup(str(entry))
                if j is None:
                    raise UnknownItemError(
                        f"history {r}, entry {p}: item {str(entry)!r} is not in the catalog of domain "
                        f"{domain!r} (give {{\"text\": ...}} for an item the catalog does not have)")
                keys.append(("id", j))
        known_rows.append(np.unique(np.array([j for kind, j in keys if kind == "id"], dtype=np.int64)))
        kept, _ = last_items(np.arange(len(keys))[None, :], np.array([len(keys)]), limit)
        tail_keys.append([keys[i] for i in kept[0]])
    # the user tower's input: the distinct catalog rows and raw texts of the batch, once each
    ids = sorted({j for keys in tail_keys for kind, j in keys if kind == "id"})
    texts = sorted({s for keys in tail_keys for kind, s in keys if kind == "text"})
    row_of = {("id", j): n for n, j in enumerate(ids)}
    row_of.update({("text", s): len(ids) + n for n, s in enumerate(texts)})
    vectors = catalog_vectors.take(np.array(ids, dtype=np.int64))
    if texts:
        vectors = np.vstack([vectors, model.item_vectors(embed(texts))])
    lengths = np.array([len(keys) for keys in tail_keys], dtype=np.int64)
    hist = np.full((len(tail_keys), int(lengths.max())), -1, dtype=np.int64)
    for r, keys in enumerate(tail_keys):
        hist[r, : len(keys)] = [row_of[key] for key in keys]
    return known_rows, vectors, hist, lengths


def catalog_tails(histories: Sequence[Sequence[HistoryEntry]], lookup: Callable[[str], int | None], n_catalog: int,
                  last: int) -> tuple[np.ndarray, np.ndarray]:
    """Each history's last ``last`` entries as rows of the domain's own catalog, for the transition
    head: -1 for a raw text or an item added since (neither has a count). ``(b, w)`` left-aligned
    rows and their lengths. The histories were checked by :func:`history_vectors`."""
    tails = []
    for history in histories:
        rows = []
        for entry in list(history)[-last:]:
            j = None if isinstance(entry, Text | Mapping) else lookup(str(entry))
            rows.append(j if j is not None and j < n_catalog else -1)
        tails.append(rows)
    lengths = np.array([len(t) for t in tails], dtype=np.int64)
    out = np.full((len(tails), max(int(lengths.max(initial=0)), 1)), -1, dtype=np.int64)
    for r, t in enumerate(tails):
        out[r, : len(t)] = t
    return out, lengths
