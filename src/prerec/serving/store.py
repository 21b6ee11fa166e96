"""The service's durable state: one store interface, two implementations.

- :class:`prerec.serving.store_sqlite.SQLiteStore`: an embedded SQLite file (the default;
  one machine, one or several processes).
- :class:`prerec.serving.store_postgres.PostgresStore`: a PostgreSQL database shared by
  several ``prerec serve`` processes (replicas), through a psycopg 3 connection pool.

The service uses both through :class:`Store` only, with one code path. What a store keeps:

- **Events**, append-only, each with a sequence number ``seq`` that grows in commit order
  within a domain (SQLite: one writer at a time; PostgreSQL: a per-domain advisory lock held
  by the writing transaction until it commits). An event is acknowledged only after its
  transaction committed. An optional ``event_id`` is unique per domain (a unique
  constraint): an event whose key is already stored is not stored again, whichever process
  stored it first.
- **Items** added, re-texted or deleted through the service, each row the item's latest state
  with its text embedding (float32) and the identity of the text pipeline that computed it, a
  tombstone when deleted, and a ``version`` that grows in commit order within a domain.

Replicas follow each other through these two counters: a process remembers, per domain, the
last ``seq`` and ``version`` it applied and asks for what came after (:meth:`Store.events_since`,
:meth:`Store.item_changes`). A write returns what other processes committed before it, so the
writer applies theirs and its own under one lock and never counts an event twice.
:meth:`Store.wait_for_change` blocks until another process may have written (PostgreSQL:
LISTEN/NOTIFY) or the polling interval passed (SQLite: polling only).

Schemas are versioned and created or migrated by the store itself when it opens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prerec.errors import PrerecError

EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "event_id"]


class StoreUnavailable(PrerecError):
    """The store cannot be reached now (HTTP 503); nothing of the request was committed."""


@dataclass(frozen=True)
class StoredItem:
    """One stored item: its text embedding (``None`` if not stored) and the identity of the
    text pipeline that computed it; a tombstone when ``deleted``."""

    item_id: str
    text: str
    emb: np.ndarray | None
    encoder: str | None
    deleted: bool


@dataclass(frozen=True)
class Event:
    """One interaction as recorded: who, what, when (unix seconds), and an optional idempotency key."""

    user_id: str
    item_id: str
    timestamp: int
    event_id: str | None = None


@dataclass(frozen=True)
class EventFeed:
    """Events committed after a ``since`` position, in commit order, and the new position."""

    item_ids: np.ndarray  # (n,) object
    timestamps: np.ndarray  # (n,) int64
    head: int

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True)
class Appended:
    """Result of :meth:`Store.append_events`: which of the given events were newly stored
    (``False``: their ``event_id`` was already stored), and every event committed after
    ``since`` up to and including these (other processes' and the new ones)."""

    new: np.ndarray  # (len(events),) bool
    feed: EventFeed


@dataclass(frozen=True)
class ItemWrite:
    """Result of an item write: the changes other processes committed after ``since`` and
    before this write (latest state per item, in order of first insertion), and the version
    of this write."""

    version: int
    others: list[StoredItem] = field(default_factory=list)


def blob(row: np.ndarray) -> bytes:
    """An embedding row as little-endian float32 bytes."""
    return np.ascontiguousarray(row, dtype="<f4").tobytes()


def unblob(data: bytes | memoryview | None) -> np.ndarray | None:
    return None if data is None else np.frombuffer(bytes(data), dtype="<f4").astype(np.float32)


def stored_items(rows: list[tuple]) -> list[StoredItem]:
    """``items`` table rows (item_id, text, emb, encoder, deleted, version) as :class:`StoredItem`."""
    return [StoredItem(i, t, unblob(e), enc, bool(d)) for i, t, e, enc, d, _ in rows]


def item_rows(domain: str, items: Iterable[tuple[str, str]], emb: np.ndarray | None,
              encoder: str | None) -> list[tuple]:
    """(domain, item_id, text, emb blob, encoder) per item to upsert, the same for every backend."""
    pairs = [(str(i), str(t)) for i, t in items]
    blobs = [None] * len(pairs) if emb is None else [blob(e) for e in emb]
    if len(blobs) != len(pairs):
        raise PrerecError(f"put_items: {len(pairs)} items but {len(blobs)} embeddings")
    return [(domain, i, t, b, None if b is None else encoder) for (i, t), b in zip(pairs, blobs)]


def event_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


class Store(ABC):
    """Events and items of every domain (see the module docstring); thread-safe."""

    kind: str  # "sqlite" or "postgresql"

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs (never a password)."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- events ---------------------------------------------------------------------------

    @abstractmethod
    def append_events(self, domain: str, events: Sequence[Event], since: int | None = None) -> Appended:
        """Store ``events`` in one transaction (all or none). ``since``: the last position the
        caller applied (``None``: it follows nothing, and the feed holds the new events only)."""

    @abstractmethod
    def events_since(self, domain: str, since: int = 0) -> EventFeed:
        """Events of ``domain`` committed after position ``since``, in commit order."""

    @abstractmethod
    def events(self, domain: str) -> pd.DataFrame:
        """Every stored event of ``domain`` (user_id, item_id, timestamp, event_id) in commit order."""

    @abstractmethod
    def count_events(self, domain: str | None = None) -> int: ...

    # ---- items ----------------------------------------------------------------------------

    @abstractmethod
    def put_items(self, domain: str, items: Iterable[tuple[str, str]], emb: np.ndarray | None = None,
                  encoder: str | None = None, since: int | None = None) -> ItemWrite:
        """Insert or update ``(item_id, text)`` pairs in one transaction, with their embeddings
        ``(n, F)`` and the identity of the pipeline that computed them (an update keeps the
        item's original position, so replay order is the order of first insertion)."""

    @abstractmethod
    def delete_item(self, domain: str, item_id: str, since: int | None = None) -> ItemWrite:
        """Leave a tombstone for ``item_id`` (its text and embedding are erased)."""

    @abstractmethod
    def set_embeddings(self, domain: str, item_ids: list[str], emb: np.ndarray, encoder: str) -> None:
        """Store freshly computed embeddings of stored items (the text pipeline changed); not a
        change other processes need to apply, so versions stay as they are."""

    @abstractmethod
    def item_changes(self, domain: str, since: int = 0) -> tuple[list[StoredItem], int]:
        """Items of ``domain`` changed after version ``since`` (latest state, tombstones
        included, in order of first insertion) and the newest version seen."""

    def item_rows(self, domain: str) -> list[StoredItem]:
        """Every stored item of ``domain`` (tombstones included) in order of first insertion."""
        return self.item_changes(domain, 0)[0]

    def items(self, domain: str) -> list[tuple[str, str]]:
        """Every stored, not deleted ``(item_id, text)`` of ``domain`` in order of first insertion."""
        return [(r.item_id, r.text) for r in self.item_rows(domain) if not r.deleted]

    # ---- following other processes --------------------------------------------------------------

    @abstractmethod
    def wait_for_change(self, timeout: float) -> None:
        """Return when another process may have written, or after ``timeout`` seconds."""

    @abstractmethod
    def wake(self) -> None:
        """Make a pending :meth:`wait_for_change` return soon (used when closing)."""
