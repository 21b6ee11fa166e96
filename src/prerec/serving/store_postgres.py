"""The shared store: a PostgreSQL database (``--db postgresql://...``); the interface is serving/store.py.

Several ``prerec serve`` processes on one database are replicas of one service:

- Connections come from a psycopg 3 pool (``psycopg_pool.ConnectionPool``); every write is one
  transaction, acknowledged after ``COMMIT`` returned (``synchronous_commit`` as the server
  sets it: on by default, so the commit is in the server's write-ahead log on disk).
- ``event_id`` is unique per domain by a unique constraint, so a retry is stored once whichever
  replica receives it.
- A writer takes a per-domain advisory lock (``pg_advisory_xact_lock``) before it draws
  sequence numbers, and keeps it until it commits: within a domain, ``seq`` (events) and
  ``version`` (items) grow in commit order, so a reader that has applied everything up to a
  position never misses an earlier commit that becomes visible later.
- Every write sends ``NOTIFY prerec_changes`` (delivered at commit); each replica LISTENs on a
  connection of its own (:meth:`PostgresStore.wait_for_change`) and also polls, in case a
  notification is lost while that connection is re-established.
- The schema is versioned in table ``prerec_schema`` and created or migrated on open, under an
  advisory lock, so replicas that start together do it once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

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
    StoreUnavailable,
    blob,
    event_frame,
    item_rows,
    stored_items,
)

log = logging.getLogger(__name__)
CHANNEL = "prerec_changes"
MIGRATION_LOCK = 0x70726572  # "prer"
SCHEMA_VERSION = 1
MIGRATIONS = {
    1: """
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    domain TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    event_id TEXT,
    CONSTRAINT events_domain_event_id UNIQUE (domain, event_id)
);
CREATE INDEX events_domain_seq ON events (domain, seq);
CREATE SEQUENCE item_versions;
CREATE TABLE items (
    pos BIGSERIAL,
    domain TEXT NOT NULL,
    item_id TEXT NOT NULL,
    text TEXT NOT NULL,
    emb BYTEA,
    encoder TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL,
    PRIMARY KEY (domain, item_id)
);
CREATE INDEX items_domain_version ON items (domain, version);
""",
}
ITEM_SELECT = ("SELECT item_id, text, emb, encoder, deleted, version FROM items "
               "WHERE domain = %s AND version > %s ORDER BY pos")
EVENT_SELECT = "SELECT item_id, ts, seq FROM events WHERE domain = %s AND seq > %s ORDER BY seq"
INSERT_EVENTS = """
INSERT INTO events (domain, user_id, item_id, ts, event_id)
SELECT %s, u, i, t, e FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[]) WITH ORDINALITY AS x(u, i, t, e, n)
ORDER BY n
ON CONFLICT (domain, event_id) DO NOTHING
RETURNING item_id, ts, seq, event_id
"""


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _psycopg():
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise PrerecError(f"--db postgresql://...: needs psycopg and psycopg-pool ({exc})") from exc
    return psycopg, psycopg_pool


class PostgresStore(Store):
    """Events and items of every domain in a PostgreSQL database shared by replicas."""

    kind = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 10.0) -> None:
        psycopg, psycopg_pool = _psycopg()
        self.url = url
        self._psycopg = psycopg
        self._pool_timeout = psycopg_pool.PoolTimeout
        try:
            self.pool = psycopg_pool.ConnectionPool(url, min_size=1, max_size=int(pool_size), open=True,
                                                    timeout=connect_timeout, name="prerec",
                                                    kwargs={"connect_timeout": int(max(1, connect_timeout))})
            self.pool.wait(timeout=connect_timeout)
            self._migrate()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            if hasattr(self, "pool"):
                self.pool.close()
            raise PrerecError(f"--db {redact(url)}: cannot use the database ({str(exc).strip()})") from exc
        self._listener = None
        self._listen_lock = threading.Lock()
        self._closed = threading.Event()

    def describe(self) -> str:
        return f"PostgreSQL {redact(self.url)}"

    @contextmanager
    def _conn(self) -> Iterator[object]:
        """A pooled connection; a lost or unreachable server becomes :class:`StoreUnavailable`."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (self._psycopg.OperationalError, self._pool_timeout) as exc:
            raise StoreUnavailable(f"the database {redact(self.url)} cannot be reached now "
                                   f"({str(exc).strip()[:200]})") from exc

    def close(self) -> None:
        self._closed.set()
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self.pool.close()

    def _migrate(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS prerec_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM prerec_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise PrerecError(f"--db {redact(self.url)}: schema version {version} was written by a newer "
                                  f"prerec (this one knows up to {SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[v])
                log.info("database %s: schema migrated to version %d", redact(self.url), v)
            if row is None:
                conn.execute("INSERT INTO prerec_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                conn.execute("UPDATE prerec_schema SET version = %s", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT version FROM prerec_schema").fetchone()[0])

    # ---- events ---------------------------------------------------------------------------

    def append_events(self, domain: str, events: Sequence[Event], since: int | None = None) -> Appended:
        cols = ([e.user_id for e in events], [e.item_id for e in events],
                [int(e.timestamp) for e in events], [e.event_id for e in events])
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("prerec:events:" + domain,))
            rows = [] if since is None else conn.execute(EVENT_SELECT, (domain, int(since))).fetchall()
            inserted = conn.execute(INSERT_EVENTS, (domain, *cols)).fetchall()
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, domain))
        keys = {r[3] for r in inserted if r[3] is not None}
        new = np.zeros(len(events), dtype=bool)
        for k, e in enumerate(events):  # the first of equal keys in a batch is the one stored
            if e.event_id is None:
                new[k] = True
            elif e.event_id in keys:
                new[k] = True
                keys.discard(e.event_id)
        return Appended(new, _feed(rows + [r[:3] for r in inserted], since or 0))

    def events_since(self, domain: str, since: int = 0) -> EventFeed:
        with self._conn() as conn:
            rows = conn.execute(EVENT_SELECT, (domain, int(since))).fetchall()
        return _feed(rows, since)

    def events(self, domain: str) -> pd.DataFrame:
        with self._conn() as conn:
            rows = conn.execute("SELECT user_id, item_id, ts, event_id FROM events WHERE domain = %s ORDER BY seq",
                                (domain,)).fetchall()
        return event_frame(rows)

    def count_events(self, domain: str | None = None) -> int:
        with self._conn() as conn:
            if domain is None:
                return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM events WHERE domain = %s", (domain,)).fetchone()[0])

    # ---- items ----------------------------------------------------------------------------

    def _item_write(self, domain: str, sql: str, rows: list[tuple], since: int | None) -> ItemWrite:
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("prerec:items:" + domain,))
            others = [] if since is None else stored_items(conn.execute(ITEM_SELECT, (domain, int(since))).fetchall())
            version = int(conn.execute("SELECT nextval('item_versions')").fetchone()[0])
            with conn.cursor() as cur:
                cur.executemany(sql, [(*r, version) for r in rows])
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, domain))
        return ItemWrite(version, others)

    def put_items(self, domain: str, items: Iterable[tuple[str, str]], emb: np.ndarray | None = None,
                  encoder: str | None = None, since: int | None = None) -> ItemWrite:
        return self._item_write(
            domain,
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted, version) "
            "VALUES (%s, %s, %s, %s, %s, FALSE, %s) ON CONFLICT (domain, item_id) DO UPDATE SET "
            "text = excluded.text, emb = excluded.emb, encoder = excluded.encoder, deleted = FALSE, "
            "version = excluded.version",
            item_rows(domain, items, emb, encoder), since)

    def delete_item(self, domain: str, item_id: str, since: int | None = None) -> ItemWrite:
        return self._item_write(
            domain,
            "INSERT INTO items (domain, item_id, text, emb, encoder, deleted, version) "
            "VALUES (%s, %s, '', NULL, NULL, TRUE, %s) ON CONFLICT (domain, item_id) DO UPDATE SET "
            "text = '', emb = NULL, encoder = NULL, deleted = TRUE, version = excluded.version",
            [(domain, str(item_id))], since)

    def set_embeddings(self, domain: str, item_ids: list[str], emb: np.ndarray, encoder: str) -> None:
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany("UPDATE items SET emb = %s, encoder = %s WHERE domain = %s AND item_id = %s",
                            [(blob(e), encoder, domain, str(i)) for i, e in zip(item_ids, emb)])

    def item_changes(self, domain: str, since: int = 0) -> tuple[list[StoredItem], int]:
        with self._conn() as conn:
            rows = conn.execute(ITEM_SELECT, (domain, int(since))).fetchall()
        return stored_items(rows), max([int(since), *(int(r[5]) for r in rows)])

    # ---- LISTEN/NOTIFY --------------------------------------------------------------------------

    def wait_for_change(self, timeout: float) -> None:
        """Wait for a NOTIFY of any replica's commit, at most ``timeout`` seconds."""
        if self._closed.is_set():
            return
        try:
            with self._listen_lock:
                if self._listener is None:
                    self._listener = self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                    self._listener.execute(f"LISTEN {CHANNEL}")
                listener = self._listener
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
        except self._psycopg.Error as exc:
            log.warning("LISTEN connection to %s lost (%s); polling until it is back", redact(self.url), exc)
            with self._listen_lock:
                if self._listener is not None:
                    self._listener.close()
                self._listener = None
            self._closed.wait(timeout)

    def wake(self) -> None:
        self._closed.set()


def _feed(rows: list[tuple], since: int) -> EventFeed:
    return EventFeed(np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=np.int64),
                     max([int(since), *(int(r[2]) for r in rows)]))

