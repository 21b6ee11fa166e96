"""The Python API and the HTTP app (FastAPI TestClient) on a tiny domain and a tiny random model."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_helpers import DAY0, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.popularity import PopularityIndex
from prerec.serving import (
    Event,
    FaissRetriever,
    RequestError,
    Service,
    Text,
    UnknownDomainError,
    UnknownItemError,
)
from prerec.serving.app import create_app

TODAY = DAY0 + 45
NOW = TODAY * SECONDS_PER_DAY + 3600


def make_service(domain, model, retrieval="exact", store=None) -> Service:
    s = Service(model, retrieval=retrieval, store=store, clock=lambda: NOW)
    s.attach(domain)
    return s


def reference_scores(model, domain, histories, day, extra_items=None, extra_events=None) -> np.ndarray:
    """U . V + g(F) over the catalog, straight from the model and a fresh PopularityIndex."""
    texts = domain.texts.tolist() + [t for _, t in (extra_items or [])]
    ids = list(domain.item_ids) + [i for i, _ in (extra_items or [])]
    emb = model.embed_texts(texts)
    index = {i: k for k, i in enumerate(ids)}
    hist = np.full((len(histories), max(map(len, histories))), -1)
    for r, h in enumerate(histories):
        hist[r, : len(h)] = [index[i] for i in h]
    V = model.item_vectors(emb)
    U = model.user_vectors(V, hist, np.array([len(h) for h in histories]))
    seqs = domain.sequences
    items, days = seqs.items, seqs.days
    if extra_events:
        items = np.r_[items, [index[i] for i, _ in extra_events]]
        days = np.r_[days, [d for _, d in extra_events]]
    F = PopularityIndex(items, days).item_factors(day, len(ids))
    return U.astype(np.float64) @ V.T.astype(np.float64) + model.scorer.popularity(F)


def histories_of(domain):
    ids = list(domain.item_ids)
    return [[ids[0], ids[3], ids[7]], [ids[10]], ids[:20]]


@pytest.mark.parametrize("retrieval", ["exact", "flat", "hnsw"])
def test_recommend_returns_the_full_score_top_k(domain, model, retrieval):
    service = make_service(domain, model, retrieval)
    hs = histories_of(domain)
    recs = service.recommend(domain.name, hs, k=7)
    ref = reference_scores(model, domain, hs, TODAY)
    assert recs.item_ids.shape == (3, 7) and recs.scores.shape == (3, 7)
    for r in range(3):
        np.testing.assert_allclose(recs.scores[r], np.sort(ref[r])[::-1][:7], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ref[r, recs.indices[r]], recs.scores[r], rtol=1e-4, atol=1e-4)
        assert list(recs.item_ids[r]) == [domain.item_ids[j] for j in recs.indices[r]]
        assert list(recs.texts[r]) == [domain.texts.iloc[j] for j in recs.indices[r]]


def test_raw_text_in_history_is_encoded_on_the_fly(domain, model):
    service = make_service(domain, model)
    ids = list(domain.item_ids)
    as_ids = service.recommend(domain.name, [[ids[1], ids[2]]], k=5)
    as_text = service.recommend(domain.name, [[ids[1], Text(domain.texts.iloc[2])]], k=5)
    as_dict = service.recommend(domain.name, [[{"text": domain.texts.iloc[1]}, ids[2]]], k=5)
    for other in (as_text, as_dict):
        np.testing.assert_array_equal(other.item_ids, as_ids.item_ids)
        np.testing.assert_allclose(other.scores, as_ids.scores, rtol=1e-6)
    # a text no catalog has changes the user vector
    novel = service.recommend(domain.name, [[ids[1], Text("solar powered garden gnome")]], k=5)
    assert not np.allclose(novel.scores, as_ids.scores)


@pytest.mark.parametrize("retrieval", ["exact", "hnsw"])
def test_add_and_update_items(domain, model, retrieval):
    """Cold start: an added item is scored like any catalog item with its text; the retrieval
    index finds it without a rebuild (small candidate pools force the index path)."""
    retriever = retrieval if retrieval == "exact" else FaissRetriever("hnsw", overfetch=1, extra=0, n_pop=0)
    service = make_service(domain, model, retriever)
    ids = list(domain.item_ids)
    hs = [[ids[0], ids[3]]]
    before = service.recommend(domain.name, hs, k=3)
    best = before.item_ids[0, 0]
    best_text = domain.texts[best]
    out = service.add_items(domain.name, {"NEW-1": best_text, ids[5]: "a completely different thing"})
    assert out == {"added": 1, "updated": 1, "n_items": domain.n_items + 1}
    after = service.recommend(domain.name, hs, k=4)
    top2 = set(after.item_ids[0, :2])
    assert top2 == {best, "NEW-1"}  # same text, same vector; a new item has F = 0 like most
    extra = [("NEW-1", best_text)]
    texts = domain.texts.copy()
    texts[ids[5]] = "a completely different thing"
    changed = domain.__class__(domain.name, domain.interactions, texts)
    ref = reference_scores(model, changed, hs, TODAY, extra_items=extra)
    np.testing.assert_allclose(after.scores[0], np.sort(ref[0])[::-1][:4], rtol=1e-4, atol=1e-4)
    assert service.info(domain.name)["n_added_items"] == 1
    # the new item may appear in histories and events
    service.recommend(domain.name, [["NEW-1"]], k=2)
    service.record(domain.name, [Event("u", "NEW-1", NOW)])


def test_recorded_events_update_popularity(domain, model):
    service = make_service(domain, model)
    ids = list(domain.item_ids)
    hs = histories_of(domain)
    base = service.popularity_scores(domain.name)
    yesterday = (TODAY - 1) * SECONDS_PER_DAY + 10
    events = [Event(f"v{n}", ids[n % 4], yesterday + n) for n in range(9)]
    assert service.record(domain.name, events).accepted == 9
    after = service.popularity_scores(domain.name)
    ref = reference_scores(model, domain, hs, TODAY, extra_events=[(e.item_id, TODAY - 1) for e in events])
    recs = service.recommend(domain.name, hs, k=6)
    for r in range(3):
        np.testing.assert_allclose(recs.scores[r], np.sort(ref[r])[::-1][:6], rtol=1e-4, atol=1e-4)
    assert not np.allclose(base, after)
    # events of today count from tomorrow on (the window is the 15 days *before* a day)
    service.record(domain.name, [Event("w", ids[9], NOW)])
    np.testing.assert_array_equal(service.popularity_scores(domain.name), after)
    assert not np.array_equal(service.popularity_scores(domain.name, NOW + SECONDS_PER_DAY), after)


def test_exclude_seen(domain, model):
    service = make_service(domain, model)
    hs = histories_of(domain)
    plain = service.recommend(domain.name, hs, k=30)
    seen = service.recommend(domain.name, hs, k=30, exclude_seen=True)
    for r, h in enumerate(hs):
        assert not set(seen.item_ids[r]) & set(h)
        expected = [i for i in plain.item_ids[r] if i not in set(h)]
        assert list(seen.item_ids[r][: len(expected)]) == expected
    # k larger than what is left: padded with None / -inf, and the row helper drops them
    full = service.recommend(domain.name, [list(domain.item_ids[:-2])], k=5, exclude_seen=True)
    assert len(full.row(0)) == 2 and full.item_ids[0, 2] is None and np.isneginf(full.scores[0, 2])


def test_bad_requests(domain, model):
    service = make_service(domain, model)
    ids = list(domain.item_ids)
    with pytest.raises(UnknownDomainError, match=r"unknown domain 'Atlantis'.*tiny"):
        service.recommend("Atlantis", [[ids[0]]])
    with pytest.raises(UnknownItemError, match="history 0, entry 1: item 'nope'"):
        service.recommend(domain.name, [[ids[0], "nope"]])
    with pytest.raises(RequestError, match="history 1 is empty"):
        service.recommend(domain.name, [[ids[0]], []])
    with pytest.raises(RequestError, match="at most"):
        service.recommend(domain.name, [[ids[0]] * 2000])
    with pytest.raises(RequestError, match="k must be"):
        service.recommend(domain.name, [[ids[0]]], k=0)
    with pytest.raises(UnknownItemError, match="event 1"):
        service.record(domain.name, [Event("u", ids[0], NOW), Event("u", "nope", NOW)])
    with pytest.raises(RequestError, match="text must be"):
        service.add_items(domain.name, {"x": " "})
    assert service.info(domain.name)["n_events"] == 0  # nothing of a rejected batch was recorded


def test_matches_prerec_recommender(domain, model):
    """The service's scores are PreRecRecommender(run, "zero-shot").score's, item for item."""
    from prerec.config import TrainConfig
    from prerec.intervention import PreRecRecommender
    from prerec.run import Run

    run = Run(TrainConfig(encoder="hash:64"), model.scorer.model, "hash:64", "hash:64", [], {})
    rec = PreRecRecommender(run, "zero-shot")
    service = make_service(domain, model)
    prepared = model.prepare(domain)
    hs = histories_of(domain)
    hist = np.full((3, 20), -1)
    for r, h in enumerate(hs):
        hist[r, : len(h)] = [domain.item_index[i] for i in h]
    scores = rec.score(prepared, hist, np.array([len(h) for h in hs]), np.full(3, TODAY))
    recs = service.recommend(domain.name, hs, k=10)
    for r in range(3):
        np.testing.assert_allclose(recs.scores[r], scores[r, recs.indices[r]], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(recs.scores[r], np.sort(scores[r])[::-1][:10], rtol=1e-4, atol=1e-5)


def test_store_replay_rebuilds_state(domain, model, db):
    ids = list(domain.item_ids)
    first = make_service(domain, model, store=db)
    first.add_items(domain.name, {"NEW-1": "purple lunch bag", "NEW-2": "tiny red mug"})
    yesterday = (TODAY - 1) * SECONDS_PER_DAY
    first.record(domain.name, [Event("a", "NEW-1", yesterday, "e1"), Event("b", ids[2], yesterday, "e2")])
    first.record(domain.name, [Event("a", "NEW-1", yesterday, "e1")])  # a retry: not counted twice
    hs = [[ids[0], "NEW-2"], [Text("green doormat")]]
    expected = first.recommend(domain.name, hs, k=8)
    info = first.info(domain.name)
    first.close()
    second = make_service(domain, model, store=db)
    assert second.info(domain.name) == info and info["n_events"] == 2 and info["n_added_items"] == 2
    again = second.recommend(domain.name, hs, k=8)
    np.testing.assert_array_equal(again.item_ids, expected.item_ids)
    np.testing.assert_allclose(again.scores, expected.scores, rtol=1e-6)
    second.close()


def test_concurrent_reads_and_writes(domain, model):
    """Readers see consistent snapshots while writers add items and record events."""
    service = make_service(domain, model, "hnsw")
    ids = list(domain.item_ids)
    errors: list[BaseException] = []

    def reader():
        try:
            for _ in range(30):
                recs = service.recommend(domain.name, [[ids[1], ids[2]], [ids[4]]], k=5)
                assert (recs.indices >= 0).all() and np.isfinite(recs.scores).all()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer(w):
        try:
            for n in range(15):
                service.add_items(domain.name, {f"W{w}-{n}": f"writer {w} item {n} mug"})
                service.record(domain.name, [Event(f"u{w}", f"W{w}-{n}", NOW - SECONDS_PER_DAY)])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer, args=(w,))
                                                                     for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    info = service.info(domain.name)
    assert info["n_added_items"] == 30 and info["n_events"] == 30


# ---- HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def client(db):
    d = tiny_domain()
    service = make_service(d, tiny_model(), store=db)
    with TestClient(create_app(service), base_url="http://127.0.0.1") as c:
        c.domain = d
        c.service = service
        yield c
    service.close()


def test_http_recommend(client):
    ids = list(client.domain.item_ids)
    r = client.post("/recommend", json={"domain": "tiny", "history": [ids[0], {"text": "red tea cup"}], "k": 4})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 4 and set(items[0]) == {"item_id", "score", "text"}
    assert items[0]["text"] == client.domain.texts[items[0]["item_id"]]
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    r = client.post("/recommend", json={"domain": "tiny", "history": [ids[0]], "k": 3, "exclude_seen": True})
    assert ids[0] not in [i["item_id"] for i in r.json()["items"]]
    r = client.post("/recommend/batch", json={"domain": "tiny", "histories": [[ids[0]], [ids[1], ids[2]]], "k": 2})
    assert r.status_code == 200 and [len(x["items"]) for x in r.json()["results"]] == [2, 2]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"domain": "Atlantis", "history": ["x"], "k": 3}, 404, "unknown domain 'Atlantis'"),
    ({"domain": "tiny", "history": ["no-such-item"], "k": 3}, 404, "'no-such-item' is not in the catalog"),
    ({"domain": "tiny", "history": [], "k": 3}, 422, "at least 1"),
    ({"domain": "tiny", "history": ["x"] * 1025, "k": 3}, 422, "at most 1024"),
    ({"domain": "tiny", "history": ["x"], "k": 0}, 422, "greater than or equal to 1"),
    ({"history": ["x"], "k": 3}, 422, "domain"),
    ({"domain": "tiny", "history": "red-mug", "k": 3}, 422, "list"),
    ({"domain": "tiny", "history": [{"title": "x"}], "k": 3}, 422, "text"),
    ({"domain": "tiny", "history": ["x"], "k": 3, "colour": "red"}, 422, "colour"),
])
def test_http_recommend_errors(client, body, status, message):
    r = client.post("/recommend", json=body)
    assert r.status_code == status, r.text
    assert message in r.text


def test_http_malformed_json(client):
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_http_events_items_domains(client):
    ids = list(client.domain.item_ids)
    ts = NOW - SECONDS_PER_DAY
    body = {"domain": "tiny", "events": [{"user_id": "u1", "item_id": ids[0], "timestamp": ts, "event_id": "e1"},
                                         {"user_id": "u2", "item_id": ids[1], "timestamp": ts}]}
    r = client.post("/events", json=body)
    assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicates": 0}
    assert client.service.store.count_events("tiny") == 2  # durable when acknowledged
    r = client.post("/events", json={"domain": "tiny", "events": body["events"][:1]})
    assert r.json() == {"accepted": 1, "duplicates": 1}
    r = client.post("/events", json={"domain": "tiny", "events": [{"user_id": "u", "item_id": "zzz", "timestamp": 1}]})
    assert r.status_code == 404 and "zzz" in r.text
    r = client.post("/events", json={"domain": "tiny", "events": [{"user_id": "u", "item_id": ids[0]}]})
    assert r.status_code == 422 and "timestamp" in r.text
    r = client.post("/events", json={"domain": "nowhere", "events": body["events"]})
    assert r.status_code == 404

    r = client.put("/domains/tiny/items", json={"items": [{"item_id": "N1", "text": "glow in the dark mug"},
                                                          {"item_id": ids[0], "text": "renamed"}]})
    assert r.status_code == 200 and r.json() == {"added": 1, "updated": 1, "n_items": client.domain.n_items + 1}
    r = client.post("/recommend", json={"domain": "tiny", "history": ["N1"], "k": 3})
    assert r.status_code == 200
    assert client.put("/domains/nowhere/items", json={"items": [{"item_id": "a", "text": "b"}]}).status_code == 404
    assert client.put("/domains/tiny/items", json={"items": []}).status_code == 422

    r = client.get("/domains")
    (info,) = r.json()["domains"]
    assert info["name"] == "tiny" and info["n_events"] == 2 and info["n_added_items"] == 1
    assert client.get("/domains/tiny").json() == info
    assert client.get("/domains/nowhere").status_code == 404
    assert client.get("/healthz").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/events", "/domains", "/domains/{domain}/items", "/healthz"} <= set(schema["paths"])
