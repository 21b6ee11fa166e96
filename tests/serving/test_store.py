"""Live popularity equals PopularityIndex on the grown log; the SQLite store is durable and idempotent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.popularity import PopularityIndex
from prerec.serving.store import Event, EventStore


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


def test_store_roundtrip_idempotency_and_pragmas(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    assert store.journal_mode == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    new = store.append_events("de", [Event("u1", "a", 100, "k1"), Event("u1", "b", 200, "k2"), Event("u2", "a", 300)])
    assert new.tolist() == [True, True, True]
    new = store.append_events("de", [Event("u1", "a", 100, "k1"), Event("u3", "c", 400, "k3"), Event("u2", "a", 300)])
    assert new.tolist() == [False, True, True]  # k1 again: not stored twice; no key: always stored
    assert store.append_events("fr", [Event("u1", "a", 100, "k1")]).tolist() == [True]  # keys are per domain
    store.put_items("de", [("n1", "first"), ("n2", "second")])
    store.put_items("de", [("n1", "first, changed"), ("n3", "third")])
    store.close()

    again = EventStore(path)
    ev = again.events("de")
    assert ev["item_id"].tolist() == ["a", "b", "a", "c", "a"] and ev["timestamp"].tolist() == [100, 200, 300, 400, 300]
    assert again.items("de") == [("n1", "first, changed"), ("n2", "second"), ("n3", "third")]
    assert again.count_events() == 6 and again.count_events("fr") == 1
    again.close()


def test_store_bad_path(tmp_path):
    from prerec.errors import PrerecError

    with pytest.raises(PrerecError, match="does not exist"):
        EventStore(tmp_path / "no" / "dir" / "x.sqlite")
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PrerecError, match="cannot open"):
        EventStore(bad)


def test_store_transaction_is_atomic(tmp_path):
    """A batch that fails half-way stores none of its events."""
    store = EventStore(tmp_path / "e.sqlite")

    with pytest.raises(ValueError):  # the second event's timestamp fails inside the transaction
        store.append_events("de", [Event("u", "a", 1), Event("u", "b", "not a number")])  # type: ignore[arg-type]
    assert store.count_events() == 0
    assert store.append_events("de", [Event("u", "a", 1)]).tolist() == [True]  # usable afterwards


def test_store_items_with_embeddings_and_tombstones(tmp_path):
    path = tmp_path / "items.sqlite"
    store = EventStore(path)
    emb = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    store.put_items("de", [("n1", "first"), ("n2", "second"), ("n3", "third")], emb, "enc-A")
    store.put_items("de", [("n4", "no embedding")])
    store.delete_item("de", "n2")
    store.delete_item("de", "catalog-9")  # a catalog item hidden: a tombstone of its own
    store.set_embeddings("de", ["n4"], np.ones((1, 4), np.float32), "enc-B")
    store.close()

    again = EventStore(path)
    rows = {r.item_id: r for r in again.item_rows("de")}
    assert list(rows) == ["n1", "n2", "n3", "n4", "catalog-9"]  # order of first insertion
    np.testing.assert_array_equal(rows["n3"].emb, emb[2])
    assert rows["n1"].encoder == "enc-A" and rows["n4"].encoder == "enc-B"
    assert rows["n2"].deleted and rows["n2"].emb is None and rows["n2"].text == "" and rows["catalog-9"].deleted
    assert again.items("de") == [("n1", "first"), ("n3", "third"), ("n4", "no embedding")]
    again.put_items("de", [("n2", "back again")], np.zeros((1, 4), np.float32), "enc-A")
    assert [r.item_id for r in again.item_rows("de") if not r.deleted] == ["n1", "n2", "n3", "n4"]
    again.close()
