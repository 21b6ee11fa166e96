"""The service's durable state: an embedded SQLite database of events and added items.

An event is acknowledged only after the transaction holding it has committed. The database
runs in WAL mode with ``synchronous=FULL``: every commit appends to the write-ahead log and
fsyncs it before ``COMMIT`` returns, so an acknowledged event survives a killed process
(``kill -9``) and also an operating-system crash or power loss. (``synchronous=NORMAL`` with
WAL would survive a killed process too, because the committed pages are already in the OS page
cache, but the last transactions could be lost on power failure; the service takes FULL, whose
cost is one fsync per request, amortised over the events of a batch.)

Events may carry an idempotency key (``event_id``): a key already stored for the domain is not
stored again, so a client that retries a request whose answer it never saw cannot double it.
On start the service replays ``item_rows(domain)`` and then ``events(domain)`` to rebuild its
catalog and popularity state.

An item is stored with its text embedding (float32 bytes) and the identity of the text
pipeline that computed it, so a restart does not re-encode added items unless the pipeline
changed. A deleted item keeps a tombstone row (no text, no embedding): its events still count
in the popularity normalisers after a restart, exactly as before it, and a deleted catalog
item stays hidden. Databases written before these columns existed are migrated on open.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.errors import PrerecError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    event_id TEXT,
    UNIQUE (domain, event_id)
);
CREATE INDEX IF NOT EXISTS events_domain ON events (domain, seq);
CREATE TABLE IF NOT EXISTS items (
    domain TEXT NOT NULL,
    item_id TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (domain, item_id)
);
"""
ITEM_COLUMNS = {"emb": "BLOB", "encoder": "TEXT", "deleted": "INTEGER NOT NULL DEFAULT 0"}


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


class EventStore:
    """Append-only events and upserted items of every domain, in one SQLite file.

    One connection shared by the service's threads behind a lock (SQLite serialises writers
    anyway); every write method is one transaction that has committed when it returns.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.parent.exists():
            raise PrerecError(f"--db {path}: directory {self.path.parent} does not exist")
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
            for name, kind in ITEM_COLUMNS.items():
                if name not in have:  # a database of an earlier version
                    self._db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
        except sqlite3.DatabaseError as exc:
            raise PrerecError(f"--db {path}: cannot open as an SQLite database ({exc})") from exc
        self.journal_mode = str(mode).lower()
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append_events(self, domain: str, events: Sequence[Event]) -> np.ndarray:
        """Store the events in one transaction; return a boolean mask of those newly stored
        (``False``: its ``event_id`` was already stored for this domain)."""
        new = np.zeros(len(events), dtype=bool)
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for k, e in enumerate(events):
                    cur.execute(
                        "INSERT OR IGNORE INTO events (domain, user_id, item_id, timestamp, event_id) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (domain, e.user_id, e.item_id, int(e.timestamp), e.event_id),
                    )
                    new[k] = cur.rowcount == 1
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return new

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(sql, rows)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def put_items(self, domain: str, items: Iterable[tuple[str, str]], emb: np.ndarray | None = None,
                  encoder: str | None = None) -> None:
        """Insert or update ``(item_id, text)`` pairs in one transaction, with their embeddings
        ``(n, F)`` and the identity of the pipeline that computed them (an update keeps the
        item's original position, so replay order is the order of first insertion)."""
        pairs = [(str(i), str(t)) for i, t in items]
        blobs = [None] * len(pairs) if emb is None else [_blob(e) for e in emb]
        if len(blobs) != len(pairs):
            raise PrerecError(f"put_items: {len(pairs)} items but {len(blobs)} embeddings")
        self._write(
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted) VALUES (?, ?, ?, ?, ?, 0) "
            "ON CONFLICT (domain, item_id) DO UPDATE SET text = excluded.text, emb = excluded.emb, "
            "encoder = excluded.encoder, deleted = 0",
            [(domain, i, t, b, None if b is None else encoder) for (i, t), b in zip(pairs, blobs)])

    def delete_item(self, domain: str, item_id: str) -> None:
        """Leave a tombstone for ``item_id`` (its text and embedding are erased)."""
        self._write(
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted) VALUES (?, ?, '', NULL, NULL, 1) "
            "ON CONFLICT (domain, item_id) DO UPDATE SET text = '', emb = NULL, encoder = NULL, deleted = 1",
            [(domain, str(item_id))])

    def set_embeddings(self, domain: str, item_ids: list[str], emb: np.ndarray, encoder: str) -> None:
        """Store freshly computed embeddings of stored items (after the text pipeline changed)."""
        self._write("UPDATE items SET emb = ?, encoder = ? WHERE domain = ? AND item_id = ?",
                    [(_blob(e), encoder, domain, str(i)) for i, e in zip(item_ids, emb)])

    def events(self, domain: str) -> pd.DataFrame:
        """Every stored event of ``domain`` in the order it was stored."""
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id, item_id, timestamp, event_id FROM events WHERE domain = ? ORDER BY seq",
                (domain,),
            ).fetchall()
        return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_id"])

    def items(self, domain: str) -> list[tuple[str, str]]:
        """Every stored, not deleted ``(item_id, text)`` of ``domain`` in order of first insertion."""
        return [(r.item_id, r.text) for r in self.item_rows(domain) if not r.deleted]

    def item_rows(self, domain: str) -> list[StoredItem]:
        """Every stored item of ``domain`` (tombstones included) in order of first insertion."""
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id, text, emb, encoder, deleted FROM items WHERE domain = ? ORDER BY rowid", (domain,)
            ).fetchall()
        return [StoredItem(i, t, None if e is None else np.frombuffer(e, dtype="<f4").astype(np.float32),
                           enc, bool(d)) for i, t, e, enc, d in rows]

    def count_events(self, domain: str | None = None) -> int:
        with self._lock:
            if domain is None:
                return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM events WHERE domain = ?", (domain,)).fetchone()[0])


def _blob(row: np.ndarray) -> bytes:
    return np.ascontiguousarray(row, dtype="<f4").tobytes()
