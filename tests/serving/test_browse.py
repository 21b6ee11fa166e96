"""Search by words and by embedding similarity, today's most popular items, scores split in two."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from serving_helpers import DAY0, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Event, Service
from prerec.serving.app import create_app

NOW = (DAY0 + 45) * SECONDS_PER_DAY


def row_of(d, item_id: str) -> int:
    return list(d.item_ids).index(item_id)


def make() -> Service:
    s = Service(tiny_model(), clock=lambda: NOW)
    s.attach(tiny_domain())
    return s


def test_search_words_then_similarity():
    s = make()
    d = tiny_domain()
    found = s.search("tiny", "red mug", k=15)
    assert found["similarity"] is True and len(found["items"]) == 15
    words = [i for i in found["items"] if i["match"] == "words"]
    both = [i["item_id"] for i in words if {"red", "mug"} <= set(i["text"].split())]
    assert both == ["red-mug"] and words[0]["item_id"] == "red-mug"  # both words before one word
    assert all(("red" in i["text"].split()) or ("mug" in i["text"].split()) for i in words)
    n_one = sum(("red" in t.split()) != ("mug" in t.split()) for t in d.texts)
    assert len(words) == 1 + n_one  # every word match is listed first
    rest = found["items"][len(words):]
    assert [i["match"] for i in rest] == ["similar"] * len(rest)
    sims = [i["similarity"] for i in rest]
    assert sims == sorted(sims, reverse=True)
    # the similarity is the cosine of the text embeddings (checked against a direct computation)
    emb = s._state("tiny").snapshot.catalog.emb.take(np.arange(d.n_items))
    q = s.model.embed_texts(["red mug"])[0]
    cos = emb @ q / (np.linalg.norm(emb, axis=1) * np.linalg.norm(q))
    row = {i: n for n, i in enumerate(d.item_ids)}
    for i in found["items"]:
        assert abs(cos[row[i["item_id"]]] - i["similarity"]) < 1e-5
    some = d.item_ids[7]
    assert s.search("tiny", some)["items"][0]["item_id"] == some  # an id typed whole
    s.delete_item("tiny", "red-mug")
    assert "red-mug" not in [i["item_id"] for i in s.search("tiny", "red mug", k=60)["items"]]


def test_popular_follows_events_and_explain_splits_scores():
    s = make()
    c = TestClient(create_app(s), base_url="http://127.0.0.1")
    d = tiny_domain()
    before = c.get("/domains/tiny/popular", params={"k": 5}).json()["items"]
    g = s.popularity_scores("tiny")
    best = np.argsort(-g, kind="stable")[:5]
    assert [i["item_id"] for i in before] == [d.item_ids[j] for j in best]
    assert np.allclose([i["popularity"] for i in before], g[best])
    quiet = d.item_ids[int(np.argmin(g))]
    s.record("tiny", [Event(f"u{n}", quiet, NOW - SECONDS_PER_DAY) for n in range(40)])
    after = c.get("/domains/tiny/popular", params={"k": 5}).json()["items"]
    g2 = s.popularity_scores("tiny")  # (the tiny model's g is untrained: not monotone in the counts)
    assert g2[row_of(d, quiet)] != g[row_of(d, quiet)]  # 40 views yesterday moved its g(F) today
    best = np.argsort(-g2, kind="stable")[:5]
    assert [i["item_id"] for i in after] == [d.item_ids[j] for j in best]
    body = {"domain": "tiny", "history": [d.item_ids[0], {"text": "green lantern"}], "k": 6}
    plain = c.post("/recommend", json=body).json()["items"]
    assert set(plain[0]) == {"item_id", "score", "text"}
    explained = c.post("/recommend", json={**body, "explain": True}).json()["items"]
    assert [i["item_id"] for i in explained] == [i["item_id"] for i in plain]
    g = s.popularity_scores("tiny")
    row = {i: n for n, i in enumerate(d.item_ids)}
    for i in explained:
        assert abs(i["uv"] + i["popularity"] - i["score"]) < 1e-5
        assert abs(i["popularity"] - g[row[i["item_id"]]]) < 1e-6
    assert c.get("/domains/tiny/search", params={"q": "mug", "k": 3}).json()["items"][0]["match"] == "words"
    assert c.get("/domains/tiny/search", params={"q": ""}).status_code == 422
    assert c.get("/domains/nowhere/popular").status_code == 404
    assert c.get("/domains/tiny/popular", params={"k": 0}).status_code == 422
