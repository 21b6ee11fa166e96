"""Every request limit and the strict input rules of the HTTP app (FastAPI TestClient, loopback
base URL), plus a property-based test: generated bodies on every endpoint never get a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import DAY0, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Service
from prerec.serving.app import create_app
from prerec.serving.limits import MAX_TIMESTAMP, Limits

NOW = (DAY0 + 45) * SECONDS_PER_DAY
SMALL = Limits(max_body_bytes=64_000, max_id_chars=32, max_text_chars=500, max_history=50, max_batch=8,
               max_k=20, max_results=60, max_texts=4, max_events=20, max_items=5)
BIG = "x" * 20_000  # far over every string limit of SMALL


def _client(tmp_path, limits: Limits = SMALL) -> TestClient:
    d = tiny_domain()
    service = Service(tiny_model(), store=tmp_path / "events.sqlite", clock=lambda: NOW,
                      max_k=limits.max_k, max_history_items=limits.max_history)
    service.attach(d)
    c = TestClient(create_app(service, limits=limits), base_url="http://127.0.0.1")
    c.service, c.ids = service, list(d.item_ids)
    return c


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    c = _client(tmp_path_factory.mktemp("limits"))
    yield c
    c.service.close()


def post_raw(client, path: str, text: str, method: str = "POST"):
    return client.request(method, path, content=text.encode(), headers={"content-type": "application/json"})


def assert_short_answer(r, status: int, field: str | None = None):
    assert r.status_code == status, r.text[:500]
    assert len(r.content) < 2_000, f"answer of {len(r.content)} bytes echoes the input"
    assert BIG not in r.text
    if field is not None:
        assert field in r.text, r.text


def rec(client, **over):
    return {"domain": "tiny", "history": [client.ids[0]], "k": 3, **over}


def ev(client, **over):
    return {"domain": "tiny", "events": [{"user_id": "u", "item_id": client.ids[0], "timestamp": NOW, **over}]}


# ---- each limit ------------------------------------------------------------------------------


def test_body_size_limit(client):
    r = post_raw(client, "/recommend", json.dumps(rec(client, history=[client.ids[0]] * 20_000)))
    assert_short_answer(r, 413, "64,000")

    def chunks():  # no Content-Length: counted while read
        yield b'{"domain": "tiny", "history": ['
        for _ in range(100):
            yield b'"' + b"y" * 1000 + b'",'
        yield b'"z"]}'

    r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert_short_answer(r, 413)
    assert client.post("/recommend", json=rec(client)).status_code == 200  # the service is fine


@pytest.mark.parametrize(("path", "make", "field"), [
    ("/recommend", lambda c: rec(c, domain="d" * 33), "domain"),
    ("/recommend", lambda c: rec(c, history=[c.ids[0], "i" * 33]), "history"),
    ("/events", lambda c: ev(c, user_id="u" * 33), "user_id"),
    ("/events", lambda c: ev(c, item_id="i" * 33), "item_id"),
    ("/events", lambda c: ev(c, event_id="e" * 33), "event_id"),
])
def test_id_length_limit(client, path, make, field):
    assert_short_answer(client.post(path, json=make(client)), 422, field)


def test_id_length_limit_in_items_and_paths(client):
    assert_short_answer(client.put("/domains/tiny/items", json={"items": [{"item_id": BIG, "text": "a"}]}),
                        422, "item_id")
    assert_short_answer(client.delete("/domains/tiny/items/" + "i" * 33), 422, "item_id")
    assert_short_answer(client.get("/domains/" + "d" * 33), 422, "domain")


def test_text_length_limit(client):
    r = client.post("/recommend", json=rec(client, history=[{"text": "t" * 501}]))
    assert_short_answer(r, 422, "text")
    assert "at most 500 characters" in r.text
    r = client.put("/domains/tiny/items", json={"items": [{"item_id": "n", "text": BIG}]})
    assert_short_answer(r, 422, "text")
    assert client.post("/recommend", json=rec(client, history=[{"text": "t" * 500}])).status_code == 200


def test_history_batch_k_and_answer_size_limits(client):
    ids = client.ids
    assert_short_answer(client.post("/recommend", json=rec(client, history=ids[:1] * 51)), 422, "history")
    assert client.post("/recommend", json=rec(client, history=ids[:1] * 50)).status_code == 200
    batch = {"domain": "tiny", "histories": [[ids[0]]] * 9, "k": 1}
    assert_short_answer(client.post("/recommend/batch", json=batch), 422, "histories")
    assert_short_answer(client.post("/recommend", json=rec(client, k=21)), 422, "k")
    assert client.post("/recommend", json=rec(client, k=20)).status_code == 200
    r = client.post("/recommend/batch", json={"domain": "tiny", "histories": [[ids[0]]] * 4, "k": 16})
    assert_short_answer(r, 422, "64 results")  # 4 x 16 > 60
    r = client.post("/recommend/batch", json={"domain": "tiny", "histories": [[ids[0]]] * 3, "k": 20})
    assert r.status_code == 200 and all(len(x["items"]) == 20 for x in r.json()["results"])


def test_texts_events_items_limits(client):
    texts = [{"text": f"thing {n}"} for n in range(5)]
    assert_short_answer(client.post("/recommend", json=rec(client, history=texts)), 422, "5 distinct item texts")
    assert client.post("/recommend", json=rec(client, history=texts[:4] + texts[:2])).status_code == 200
    many = ev(client)["events"] * 21
    assert_short_answer(client.post("/events", json={"domain": "tiny", "events": many}), 422, "events")
    items = [{"item_id": f"n{n}", "text": "a mug"} for n in range(6)]
    assert_short_answer(client.put("/domains/tiny/items", json={"items": items}), 422, "items")


# ---- strict input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "raw", "field"), [
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": true}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": "5"}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": 5.0}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": NaN}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": Infinity}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": -Infinity}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": 100000000000000000000000}', "k"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "exclude_seen": 1}', "exclude_seen"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "exclude_seen": "true"}', "exclude_seen"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "timestamp": NaN}', "timestamp"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "timestamp": "1300000000"}', "timestamp"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "timestamp": -1}', "timestamp"),
    ("/recommend", '{"domain": "tiny\\ud800", "history": ["%s"]}', "domain"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", "\\udfff"]}', "history"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", {"text": "a\\ud800b"}]}', "text"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", true]}', "history"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", null]}', "history"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", 1.5]}', "history"),
    ("/recommend", '{"domain": "tiny", "history": ["%s", "   "]}', "history"),
    ("/recommend", '{"domain": "tiny", "history": ["%s"], "k": 1%s}', "body"),  # a 5,000-digit k
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": NaN}]}', "timestamp"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": Infinity}]}',
     "timestamp"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": 1e9}]}', "timestamp"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": 100000000000000000000}]}',
     "timestamp"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": 9223372036854775807}]}',
     "timestamp"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "\\ud83d", "item_id": "%s", "timestamp": 1}]}', "user_id"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": true, "item_id": "%s", "timestamp": 1}]}', "user_id"),
    ("/events", '{"domain": "tiny", "events": [{"user_id": "u", "item_id": "%s", "timestamp": 1, "event_id": 1.5}]}',
     "event_id"),
])
def test_strict_input(client, path, raw, field):
    n = client.service.info("tiny")["n_events"]
    body = raw.replace("%s", client.ids[0], 1).replace("%s", "0" * 5000)
    assert_short_answer(post_raw(client, path, body), 422, field)
    assert client.service.info("tiny")["n_events"] == n


def test_timestamp_range(client):
    assert client.post("/events", json=ev(client, timestamp=MAX_TIMESTAMP + 1)).status_code == 422
    assert client.post("/recommend", json=rec(client, timestamp=MAX_TIMESTAMP + 1)).status_code == 422
    assert client.post("/recommend", json=rec(client, timestamp=MAX_TIMESTAMP)).status_code == 200
    assert client.post("/events", json=ev(client, timestamp=0)).status_code == 200


def test_integer_ids_are_kept_and_unknown_ids_are_quoted_briefly(client):
    r = client.post("/recommend", json=rec(client, history=[client.ids[0], 12345]))
    assert_short_answer(r, 404, "'12345'")


# ---- property: no 500 on any endpoint ---------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc00" * 3])
TEXT = st.one_of(st.text(max_size=40), SURROGATES, st.sampled_from(["tiny", "red-mug", "0", "", " "]))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                    st.dictionaries(TEXT, inner, max_size=6)), max_leaves=25)


def _valid(ids: list[str]) -> dict[str, dict]:
    return {
        "/recommend": {"domain": "tiny", "history": [ids[0], {"text": "red mug"}], "k": 3, "exclude_seen": True,
                       "timestamp": NOW},
        "/recommend/batch": {"domain": "tiny", "histories": [[ids[1]], [ids[2], {"text": "jar"}]], "k": 2},
        "/events": {"domain": "tiny", "events": [{"user_id": "u", "item_id": ids[3], "timestamp": NOW,
                                                  "event_id": "e1"}]},
        "/domains/tiny/items": {"items": [{"item_id": "gen-1", "text": "a generated thing"}]},
    }


@st.composite
def bodies(draw, valid: dict) -> object:
    """Any JSON value, or a valid body with one field (at any depth) replaced."""
    if draw(st.booleans()):
        return draw(JSON)
    body = json.loads(json.dumps(valid))
    node = body
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(JSON)
        return body


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    c = _client(tmp_path_factory.mktemp("fuzz"))
    yield c
    c.service.close()


@pytest.mark.parametrize("path", ["/recommend", "/recommend/batch", "/events", "/domains/tiny/items"])
def test_generated_bodies_never_500(fuzz_client, path):
    method = "PUT" if path.endswith("/items") else "POST"

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies(_valid(fuzz_client.ids)[path]))
    def check(body):
        r = fuzz_client.request(method, path, content=json.dumps(body).encode(),
                                headers={"content-type": "application/json"})
        assert r.status_code < 500, (body, r.text[:300])
        assert r.status_code in (200, 404, 413, 422), (body, r.status_code, r.text[:300])
        r.json()  # every answer is JSON

    check()


@settings(max_examples=80, deadline=None)
@given(domain=TEXT, item=TEXT)
def test_generated_paths_never_500(fuzz_client, domain, item):
    from urllib.parse import quote

    d, i = quote(domain.encode("utf-8", "surrogatepass"), safe=""), quote(item.encode("utf-8", "surrogatepass"), safe="")
    for method, path in (("GET", f"/domains/{d}"), ("DELETE", f"/domains/{d}/items/{i}")):
        if not d or (method == "DELETE" and not i):
            continue
        r = fuzz_client.request(method, path)
        assert r.status_code < 500, (method, path, r.text[:300])
