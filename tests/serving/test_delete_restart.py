"""Deleting items (added and catalog ones) and restarting without re-encoding added items."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_helpers import DAY0, counting, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Event, RequestError, Service, Text, UnknownItemError
from prerec.serving.app import create_app
from prerec.serving.stores import open_store

NOW = (DAY0 + 45) * SECONDS_PER_DAY
YESTERDAY = NOW - SECONDS_PER_DAY


def start(db, model=None, identity: str | None = "pipeline-A") -> Service:
    model = model or counting(tiny_model())
    if identity is not None:
        model.text_identity = identity
    s = Service(model, store=db, clock=lambda: NOW)
    model.encoded.clear()
    s.attach(tiny_domain())
    return s


def every_item(service: Service, history) -> dict[str, float]:
    n = service.info("tiny")["n_items"]
    recs = service.recommend("tiny", [history], k=n + 5)
    return {i: s for i, s, _ in recs.row(0)}


def test_delete_added_and_catalog_items(db):
    s = start(db)
    ids = list(tiny_domain().item_ids)
    n0 = s.info("tiny")["n_items"]
    s.add_items("tiny", {"NEW-1": "glow in the dark mug", "NEW-2": "paper lantern"})
    s.record("tiny", [Event("u", "NEW-1", YESTERDAY), Event("u", ids[3], YESTERDAY)])
    assert s.delete_item("tiny", "NEW-1") == {"deleted": "NEW-1", "catalog_item": False, "n_items": n0 + 1}
    assert s.delete_item("tiny", ids[3])["catalog_item"] is True
    info = s.info("tiny")
    assert (info["n_items"], info["n_added_items"], info["n_catalog_items"], info["n_deleted_items"]) == \
        (n0, 1, n0 - 1, 2)
    scores = every_item(s, [ids[0], Text("glow in the dark mug")])
    assert "NEW-1" not in scores and ids[3] not in scores and "NEW-2" in scores and len(scores) == n0
    for gone in ("NEW-1", ids[3]):
        with pytest.raises(UnknownItemError):
            s.recommend("tiny", [[gone]])
        with pytest.raises(UnknownItemError):
            s.record("tiny", [Event("u", gone, NOW)])
        with pytest.raises(UnknownItemError):
            s.delete_item("tiny", gone)
    with pytest.raises(UnknownItemError):
        s.delete_item("tiny", "never-there")
    with pytest.raises(RequestError, match="surrogate"):
        s.add_items("tiny", {"bad": "mug \udc80"})
    # adding the id again brings it back with its new text
    assert s.add_items("tiny", {"NEW-1": "blue teapot"})["added"] == 1
    assert "NEW-1" in every_item(s, [ids[0]])
    s.close()


def test_restart_keeps_deletions_and_scores_without_reencoding(db):
    s = start(db)
    ids = list(tiny_domain().item_ids)
    s.add_items("tiny", {f"A{n}": f"added thing number {n} mug" for n in range(30)})
    s.add_items("tiny", {ids[5]: "re-texted catalog lantern"})
    s.record("tiny", [Event(f"u{n}", f"A{n % 7}", YESTERDAY - n) for n in range(20)])
    s.delete_item("tiny", "A3")  # it had events: they still count in the normalisers
    s.delete_item("tiny", ids[7])
    hist = [ids[0], "A1", Text("green doormat")]
    before, info = every_item(s, hist), s.info("tiny")
    s.close()

    again = start(db)
    assert again.model.encoded == []  # nothing re-encoded at start
    assert again.info("tiny") == info
    after = every_item(again, hist)
    assert after.keys() == before.keys()
    np.testing.assert_allclose([after[k] for k in before], list(before.values()), rtol=1e-6, atol=1e-6)
    again.close()


def test_changed_text_pipeline_is_detected_and_reencoded_once(db):
    s = start(db, identity="pipeline-A")
    s.add_items("tiny", {f"A{n}": f"added thing {n}" for n in range(12)})
    s.delete_item("tiny", "A0")
    s.close()
    other = counting(tiny_model(seed=3))  # the same encoder here, but named as another pipeline
    s = start(db, model=other, identity="pipeline-B")
    assert sorted(t for batch in other.encoded for t in batch) == sorted(f"added thing {n}" for n in range(1, 12))
    store = open_store(db)
    rows = store.item_rows("tiny")
    store.close()
    assert {r.encoder for r in rows if not r.deleted} == {s.text_identity}
    s.close()
    s = start(db, model=other, identity="pipeline-B")
    assert other.encoded == []
    s.close()


def test_identity_without_a_name_comes_from_the_pipeline(tmp_path):
    a, b = Service(tiny_model(seed=0)), Service(tiny_model(seed=1))
    assert a.text_identity == b.text_identity  # same encoder, other user tower
    from prerec.serving.model import ServingModel
    from prerec.text import HashEncoder

    m = tiny_model()
    other = ServingModel.from_module(m.scorer.model, HashEncoder(64).encode, m._prepare)
    other._embed = lambda texts: HashEncoder(64).encode([t.upper() + " x" for t in texts])
    assert Service(other).text_identity != a.text_identity


def test_database_of_the_earlier_version_is_migrated(tmp_path):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript("CREATE TABLE items (domain TEXT NOT NULL, item_id TEXT NOT NULL, text TEXT NOT NULL, "
                          "PRIMARY KEY (domain, item_id));")
        con.execute("INSERT INTO items VALUES ('tiny', 'OLD-1', 'an old added mug')")
    s = start(db)
    assert s.model.encoded == [["an old added mug"]] and s.info("tiny")["n_added_items"] == 1
    s.close()
    s = start(db)
    assert s.model.encoded == []
    s.close()


def test_http_delete(db):
    s = start(db)
    ids = list(tiny_domain().item_ids)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        assert c.put("/domains/tiny/items", json={"items": [{"item_id": "N-1", "text": "a lamp"}]}).status_code == 200
        r = c.delete("/domains/tiny/items/N-1")
        assert r.status_code == 200 and r.json()["deleted"] == "N-1" and not r.json()["catalog_item"]
        assert c.delete("/domains/tiny/items/N-1").status_code == 404
        assert c.delete(f"/domains/tiny/items/{ids[2]}").json()["catalog_item"]
        assert c.post("/recommend", json={"domain": "tiny", "history": [ids[2]]}).status_code == 404
        assert c.delete("/domains/nowhere/items/x").status_code == 404
        assert c.put("/domains/tiny/items", json={"items": [{"item_id": "a/b c", "text": "a jar"}]}).status_code == 200
        assert c.delete("/domains/tiny/items/a%2Fb%20c").json()["deleted"] == "a/b c"
        assert c.get("/domains/tiny").json()["n_deleted_items"] == 3
    s.close()
