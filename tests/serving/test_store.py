"""Live popularity equals PopularityIndex on the grown log; both stores (SQLite, PostgreSQL) are
durable and idempotent, versioned, and give the feeds replicas follow each other by."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.errors import PrerecError
from prerec.popularity import PopularityIndex
from prerec.serving.store import Event
from prerec.serving.store_sqlite import SQLiteStore
from prerec.serving.stores import open_store


def random_log(rng: np.random.Generator, n: int, n_items: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    days = 1000 + np.sort(rng.integers(0, span, n))
    if n > 4:  # a gap longer than the window, so widening is exercised
        days[n // 2:] += 40
    return rng.integers(0, n_items, n), days


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 120), n_new=st.integers(0, 60),
       batches=st.integers(1, 4))
def test_live_equals_index_on_grown_log(seed, n, n_new, batches):
    """Factors after adding events in batches == a fresh PopularityIndex over log + events."""
    rng = np.random.default_rng(seed)
    items, days = random_log(rng, n, 15, 60)
    live = PopularityIndex(items, days)
    all_items, all_days = [items], [days]
    for part in np.array_split(np.arange(n_new), batches):
        new_items = rng.integers(0, 18, len(part))  # items 15..17 were "added" to the catalog
        new_days = rng.integers(990, 1110, len(part))  # new events may be older than the log
        live.add(new_items, new_days)
        all_items.append(new_items)
        all_days.append(new_days)
    index = PopularityIndex(np.concatenate(all_items), np.concatenate(all_days))
    q_days = np.r_[rng.integers(985, 1120, 60), 1200, 5000]
    q_items = rng.integers(0, 18, len(q_days))
    np.testing.assert_array_equal(live.factors(q_days, q_items), index.factors(q_days, q_items))
    for day in (985, 1000, 1030, 1061, 1120, 3000):
        np.testing.assert_array_equal(live.item_factors(day, 18), index.item_factors(day, 18))
        items_w, f = live.window_factors(day)
        dense = np.zeros((18, 4), np.float32)
        dense[items_w] = f
        np.testing.assert_array_equal(dense, index.item_factors(day, 18))


def test_live_untimed_domain():
    rng = np.random.default_rng(0)
    items = rng.integers(0, 10, 50)
    live = PopularityIndex(items, None)
    live.add(np.array([3, 3, 11]), np.array([5, 9, 7]))  # days are ignored: one window
    index = PopularityIndex(np.r_[items, 3, 3, 11], None)
    np.testing.assert_array_equal(live.factors(None, np.arange(12)), index.factors(None, np.arange(12)))
    assert live.days is None and live.n_events == 53


def test_store_roundtrip_and_idempotency(db):
    store = open_store(db)
    new = store.append_events("de", [Event("u1", "a", 100, "k1"), Event("u1", "b", 200, "k2"), Event("u2", "a", 300)])
    assert new.new.tolist() == [True, True, True]
    new = store.append_events("de", [Event("u1", "a", 100, "k1"), Event("u3", "c", 400, "k3"), Event("u2", "a", 300),
                                     Event("u4", "d", 500, "k4"), Event("u4", "d", 500, "k4")])
    assert new.new.tolist() == [False, True, True, True, False]  # k1 again, k4 twice: stored once; no key: always
    assert store.append_events("fr", [Event("u1", "a", 100, "k1")]).new.tolist() == [True]  # keys are per domain
    store.put_items("de", [("n1", "first"), ("n2", "second")])
    store.put_items("de", [("n1", "first, changed"), ("n3", "third")])
    store.close()

    again = open_store(db)
    ev = again.events("de")
    assert ev["item_id"].tolist() == ["a", "b", "a", "c", "a", "d"]
    assert ev["timestamp"].tolist() == [100, 200, 300, 400, 300, 500]
    assert ev["event_id"].tolist()[:2] == ["k1", "k2"] and ev["user_id"].tolist()[-1] == "u4"
    assert again.items("de") == [("n1", "first, changed"), ("n2", "second"), ("n3", "third")]
    assert again.count_events() == 7 and again.count_events("fr") == 1
    again.close()


def test_sqlite_pragmas_and_schema_version(tmp_path):
    store = SQLiteStore(tmp_path / "events.sqlite")
    assert store.journal_mode == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == 2
    store._db.execute("PRAGMA user_version = 9")
    store.close()
    with pytest.raises(PrerecError, match="schema version 9 was written by a newer prerec"):
        SQLiteStore(tmp_path / "events.sqlite")


def test_sqlite_database_of_the_first_release_is_migrated(tmp_path):
    """A file written before embeddings, tombstones and versions existed opens and keeps its data."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript("""
            CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, domain TEXT NOT NULL, user_id TEXT NOT NULL,
                item_id TEXT NOT NULL, timestamp INTEGER NOT NULL, event_id TEXT, UNIQUE (domain, event_id));
            CREATE TABLE items (domain TEXT NOT NULL, item_id TEXT NOT NULL, text TEXT NOT NULL,
                PRIMARY KEY (domain, item_id));
            INSERT INTO events (domain, user_id, item_id, timestamp, event_id) VALUES ('de', 'u', 'a', 5, 'k');
            INSERT INTO items VALUES ('de', 'n1', 'old one'), ('de', 'n2', 'old two');
        """)
    store = SQLiteStore(path)
    assert store.items("de") == [("n1", "old one"), ("n2", "old two")]
    rows, head = store.item_changes("de", 0)
    assert [r.encoder for r in rows] == [None, None] and head == 2
    assert store.append_events("de", [Event("u", "a", 5, "k")]).new.tolist() == [False]
    assert store.put_items("de", [("n3", "new")]).version == 3


def test_postgres_schema_is_versioned(postgres):
    from prerec.serving.store_postgres import PostgresStore

    url = postgres.create_database()
    first, second = PostgresStore(url), PostgresStore(url)  # a second replica: nothing migrated twice
    assert first.schema_version() == second.schema_version() == 1
    with first.pool.connection() as conn:
        conn.execute("UPDATE prerec_schema SET version = 7")
    with pytest.raises(PrerecError, match="schema version 7 was written by a newer prerec"):
        PostgresStore(url)
    first.close()
    second.close()


def test_postgres_unreachable_is_one_clear_error():
    import pg_server

    from prerec.serving.store_postgres import PostgresStore

    port = pg_server.free_port()  # nothing listens there
    with pytest.raises(PrerecError, match=r"--db postgresql://u:\*\*\*@127.0.0.1.*cannot use the database"):
        PostgresStore(f"postgresql://u:secret@127.0.0.1:{port}/x", connect_timeout=1)


def test_store_bad_path(tmp_path):
    with pytest.raises(PrerecError, match="does not exist"):
        SQLiteStore(tmp_path / "no" / "dir" / "x.sqlite")
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PrerecError, match="cannot open"):
        SQLiteStore(bad)


def test_store_transaction_is_atomic(db):
    """A batch that fails half-way stores none of its events."""
    store = open_store(db)
    with pytest.raises(ValueError):  # the second event's timestamp fails
        store.append_events("de", [Event("u", "a", 1), Event("u", "b", "not a number")])  # type: ignore[arg-type]
    assert store.count_events() == 0
    assert store.append_events("de", [Event("u", "a", 1)]).new.tolist() == [True]  # usable afterwards
    store.close()


def test_store_items_with_embeddings_and_tombstones(db):
    store = open_store(db)
    emb = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    store.put_items("de", [("n1", "first"), ("n2", "second"), ("n3", "third")], emb, "enc-A")
    store.put_items("de", [("n4", "no embedding")])
    store.delete_item("de", "n2")
    store.delete_item("de", "catalog-9")  # a catalog item hidden: a tombstone of its own
    store.set_embeddings("de", ["n4"], np.ones((1, 4), np.float32), "enc-B")
    store.close()

    again = open_store(db)
    rows = {r.item_id: r for r in again.item_rows("de")}
    assert list(rows) == ["n1", "n2", "n3", "n4", "catalog-9"]  # order of first insertion
    np.testing.assert_array_equal(rows["n3"].emb, emb[2])
    assert rows["n1"].encoder == "enc-A" and rows["n4"].encoder == "enc-B"
    assert rows["n2"].deleted and rows["n2"].emb is None and rows["n2"].text == "" and rows["catalog-9"].deleted
    assert again.items("de") == [("n1", "first"), ("n3", "third"), ("n4", "no embedding")]
    again.put_items("de", [("n2", "back again")], np.zeros((1, 4), np.float32), "enc-A")
    assert [r.item_id for r in again.item_rows("de") if not r.deleted] == ["n1", "n2", "n3", "n4"]
    again.close()


def test_feeds_of_two_processes(db):
    """Two stores on one database, as two replicas: each write returns what the other committed
    since the writer's position, so each sees every event once, in commit order."""
    a, b = open_store(db), open_store(db)
    heads = {"a": 0, "b": 0}
    seen: dict[str, list[str]] = {"a": [], "b": []}
    for n in range(6):
        name, store = ("a", a) if n % 2 == 0 else ("b", b)
        done = store.append_events("de", [Event("u", f"i{n}", n, f"e{n}"), Event("u", f"j{n}", n)], since=heads[name])
        seen[name] += done.feed.item_ids.tolist()
        heads[name] = done.feed.head
    dup = b.append_events("de", [Event("u", "i0", 0, "e0")], since=heads["b"])  # a retry through the other one
    assert dup.new.tolist() == [False]
    seen["b"] += dup.feed.item_ids.tolist()
    heads["b"] = dup.feed.head
    everything = [x for n in range(6) for x in (f"i{n}", f"j{n}")]
    assert seen["b"] == everything and seen["a"] == everything[:10]
    rest = a.events_since("de", heads["a"])
    assert rest.item_ids.tolist() == everything[10:] and rest.head == heads["b"]
    assert len(a.events_since("de", rest.head)) == 0 and a.events_since("de", rest.head).head == rest.head
    assert rest.timestamps.dtype == np.int64 and rest.timestamps.tolist() == [5, 5]

    w1 = a.put_items("de", [("x", "ex")], since=0)
    w2 = b.put_items("de", [("y", "why")], since=0)
    assert w1.others == [] and [r.item_id for r in w2.others] == ["x"] and w2.version > w1.version
    w3 = a.delete_item("de", "x", since=w1.version)
    assert [r.item_id for r in w3.others] == ["y"]
    rows, head = b.item_changes("de", w2.version)
    assert [(r.item_id, r.deleted) for r in rows] == [("x", True)] and head == w3.version
    assert b.item_changes("de", head) == ([], head)
    a.close()
    b.close()
