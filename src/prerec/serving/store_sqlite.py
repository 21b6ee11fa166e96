"""The embedded store: one SQLite file (the default ``--db``); the interface is serving/store.py.

An event is acknowledged only after the transaction holding it has committed. The database
runs in WAL mode with ``synchronous=FULL``: every commit appends to the write-ahead log and
fsyncs it before ``COMMIT`` returns, so an acknowledged event survives a killed process
(``kill -9``) and also an operating-system crash or power loss. (``synchronous=NORMAL`` with
WAL would survive a killed process too, because the committed pages are already in the OS page
cache, but the last transactions could be lost on power failure; the service takes FULL, whose
cost is one fsync per request, amortised over the events of a batch.)

Writers take SQLite's write lock first (``BEGIN IMMEDIATE``), so sequence numbers and item
versions grow in commit order, also when several processes share the file. The schema version
is SQLite's ``user_version``: 0 (databases of the first releases, or a new file) is migrated
to 1 (events, items with embeddings and tombstones) and 2 (item versions) on open.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.errors import PrerecError
from prerec.serving.store import (
    Appended,
    Event,
    EventFeed,
    ItemWrite,
    Store,
    StoredItem,
    blob,
    event_frame,
    item_rows,
    stored_items,
)

SCHEMA_VERSION = 2
SCHEMA_V1 = """
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
V1_ITEM_COLUMNS = {"emb": "BLOB", "encoder": "TEXT", "deleted": "INTEGER NOT NULL DEFAULT 0"}
ITEM_SELECT = "SELECT item_id, text, emb, encoder, deleted, version FROM items WHERE domain = ? AND version > ? ORDER BY rowid"


def _migrate(db: sqlite3.Connection, path: str) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise PrerecError(f"--db {path}: schema version {version} was written by a newer prerec "
                          f"(this one knows up to {SCHEMA_VERSION})")
    if version < 1:
        for statement in SCHEMA_V1.split(";"):  # not executescript: it would commit the transaction
            if statement.strip():
                db.execute(statement)
        have = {row[1] for row in db.execute("PRAGMA table_info(items)")}
        for name, kind in V1_ITEM_COLUMNS.items():
            if name not in have:  # a database of the first release
                db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
    if version < 2:
        if "version" not in {row[1] for row in db.execute("PRAGMA table_info(items)")}:
            db.execute("ALTER TABLE items ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        db.execute("UPDATE items SET version = rowid")
        db.execute("CREATE INDEX IF NOT EXISTS items_domain_version ON items (domain, version)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class SQLiteStore(Store):
    """Events and items of every domain in one SQLite file.

    One connection shared by the service's threads behind a lock (SQLite serialises writers
    anyway); every write method is one transaction that has committed when it returns.
    """

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.parent.exists():
            raise PrerecError(f"--db {path}: directory {self.path.parent} does not exist")
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _migrate(self._db, str(path))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise PrerecError(f"--db {path}: cannot open as an SQLite database ({exc})") from exc
        self.journal_mode = str(mode).lower()
        self._lock = threading.Lock()
        self._woken = threading.Event()

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def close(self) -> None:
        self.wake()
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` (the write lock) ... ``COMMIT``, or ``ROLLBACK`` on any error."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    # ---- events ---------------------------------------------------------------------------

    def append_events(self, domain: str, events: Sequence[Event], since: int | None = None) -> Appended:
        new = np.zeros(len(events), dtype=bool)
        rows: list[tuple[str, int, int]] = []
        with self._transaction() as cur:
            if since is not None:
                rows = cur.execute("SELECT item_id, timestamp, seq FROM events WHERE domain = ? AND seq > ? "
                                   "ORDER BY seq", (domain, int(since))).fetchall()
            for k, e in enumerate(events):
                cur.execute("INSERT OR IGNORE INTO events (domain, user_id, item_id, timestamp, event_id) "
                            "VALUES (?, ?, ?, ?, ?)", (domain, e.user_id, e.item_id, int(e.timestamp), e.event_id))
                if cur.rowcount == 1:
                    new[k] = True
                    rows.append((e.item_id, int(e.timestamp), int(cur.lastrowid)))
        return Appended(new, _feed(rows, since or 0))

    def events_since(self, domain: str, since: int = 0) -> EventFeed:
        with self._lock:
            rows = self._db.execute("SELECT item_id, timestamp, seq FROM events WHERE domain = ? AND seq > ? "
                                    "ORDER BY seq", (domain, int(since))).fetchall()
        return _feed(rows, since)

    def events(self, domain: str) -> pd.DataFrame:
        with self._lock:
            rows = self._db.execute("SELECT user_id, item_id, timestamp, event_id FROM events WHERE domain = ? "
                                    "ORDER BY seq", (domain,)).fetchall()
        return event_frame(rows)

    def count_events(self, domain: str | None = None) -> int:
        with self._lock:
            if domain is None:
                return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM events WHERE domain = ?", (domain,)).fetchone()[0])

    # ---- items ----------------------------------------------------------------------------

    def _item_write(self, domain: str, sql: str, rows: list[tuple], since: int | None) -> ItemWrite:
        with self._transaction() as cur:
            others = [] if since is None else stored_items(cur.execute(ITEM_SELECT, (domain, int(since))).fetchall())
            version = int(cur.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM items").fetchone()[0])
            cur.executemany(sql, [(*r, version) for r in rows])
        return ItemWrite(version, others)

    def put_items(self, domain: str, items: Iterable[tuple[str, str]], emb: np.ndarray | None = None,
                  encoder: str | None = None, since: int | None = None) -> ItemWrite:
        return self._item_write(
            domain,
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted, version) VALUES (?, ?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (domain, item_id) DO UPDATE SET text = excluded.text, emb = excluded.emb, "
            "encoder = excluded.encoder, deleted = 0, version = excluded.version",
            item_rows(domain, items, emb, encoder), since)

    def delete_item(self, domain: str, item_id: str, since: int | None = None) -> ItemWrite:
        return self._item_write(
            domain,
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted, version) "
            "VALUES (?, ?, '', NULL, NULL, 1, ?) ON CONFLICT (domain, item_id) DO UPDATE SET text = '', "
            "emb = NULL, encoder = NULL, deleted = 1, version = excluded.version",
            [(domain, str(item_id))], since)

    def set_embeddings(self, domain: str, item_ids: list[str], emb: np.ndarray, encoder: str) -> None:
        with self._transaction() as cur:
            cur.executemany("UPDATE items SET emb = ?, encoder = ? WHERE domain = ? AND item_id = ?",
                            [(blob(e), encoder, domain, str(i)) for i, e in zip(item_ids, emb)])

    def item_changes(self, domain: str, since: int = 0) -> tuple[list[StoredItem], int]:
        with self._lock:
            rows = self._db.execute(ITEM_SELECT, (domain, int(since))).fetchall()
        return stored_items(rows), max([int(since), *(int(r[5]) for r in rows)])

    def wait_for_change(self, timeout: float) -> None:
        """SQLite cannot tell another process's commit: wait ``timeout`` (polling)."""
        self._woken.wait(timeout)

    def wake(self) -> None:
        self._woken.set()


def _feed(rows: list[tuple], since: int) -> EventFeed:
    return EventFeed(np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=np.int64),
                     max([int(since), *(int(r[2]) for r in rows)]))

