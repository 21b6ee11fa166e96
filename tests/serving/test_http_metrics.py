"""GET /metrics (Prometheus text format) and the JSON access-log line of every request."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import DAY0, counting, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Service
from prerec.serving.app import create_app
from prerec.serving.security import ApiKeys

NOW = (DAY0 + 45) * SECONDS_PER_DAY
KEY = "metrics-test-key-0123456789"


def scrape(c: TestClient) -> dict[tuple[str, tuple], float]:
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client():
    s = Service(tiny_model(), clock=lambda: NOW, store=":memory:")
    s.attach(tiny_domain())
    yield TestClient(create_app(s, keys=ApiKeys([KEY])), base_url="http://127.0.0.1")
    s.close()


def test_requests_latency_events_items(client):
    ids = list(tiny_domain().item_ids)
    before = scrape(client)
    assert value(before, "prerec_items", domain="tiny") == len(ids)
    assert value(before, "prerec_text_encoding_capacity") == 9 and value(before, "prerec_text_encoding_jobs") == 0
    for _ in range(3):
        assert client.post("/recommend", json={"domain": "tiny", "history": [ids[0]], "k": 3}).status_code == 200
    assert client.post("/recommend", json={"domain": "nowhere", "history": [ids[0]]}).status_code == 404
    assert client.post("/events", json={"domain": "tiny", "events": []}).status_code == 401  # no key
    events = [{"user_id": "u", "item_id": ids[n % 3], "timestamp": NOW, "event_id": f"e{n}"} for n in range(5)]
    h = {"X-API-Key": KEY}
    assert client.post("/events", json={"domain": "tiny", "events": events}, headers=h).json() == \
        {"accepted": 5, "duplicates": 0}
    assert client.post("/events", json={"domain": "tiny", "events": events[:2]}, headers=h).json() == \
        {"accepted": 2, "duplicates": 2}
    r = client.put("/domains/tiny/items", json={"items": [{"item_id": "NEW-1", "text": "a lamp"}]}, headers=h)
    assert r.status_code == 200
    assert client.get("/no/such/path").status_code == 404
    m = scrape(client)
    ok = {"method": "POST", "endpoint": "/recommend"}
    assert value(m, "prerec_http_requests_total", status="200", **ok) == 3
    assert value(m, "prerec_http_request_duration_seconds_count", status="200", **ok) == 3
    assert value(m, "prerec_http_request_duration_seconds_bucket", status="200", le="+Inf", **ok) == 3
    assert value(m, "prerec_http_request_duration_seconds_sum", status="200", **ok) > 0
    assert value(m, "prerec_http_requests_total", status="404", **ok) == 1
    assert value(m, "prerec_http_requests_total", method="POST", endpoint="/events", status="401") == 1
    assert value(m, "prerec_http_requests_total", method="PUT", endpoint="/domains/{domain}/items",
                 status="200") == 1
    assert value(m, "prerec_http_requests_total", method="GET", endpoint="other", status="404") == 1
    assert value(m, "prerec_events_accepted_total", domain="tiny") == 7
    assert value(m, "prerec_events_duplicates_total", domain="tiny") == 2
    assert value(m, "prerec_events_stored", domain="tiny") == 5
    assert value(m, "prerec_items", domain="tiny") == len(ids) + 1
    assert value(m, "prerec_http_requests_total", method="GET", endpoint="/metrics", status="200") == 1


def test_encoding_queue_gauge():
    model = counting(tiny_model(), delay=0.0)
    gate = threading.Event()
    inner = model._embed

    def slow(texts):
        gate.wait(10)
        return inner(texts)

    model._embed = slow
    s = Service(model, clock=lambda: NOW, encode_workers=1, encode_queue=2)
    s.attach(tiny_domain())
    c = TestClient(create_app(s), base_url="http://127.0.0.1")
    threads = [threading.Thread(target=lambda n=n: s.texts.encode([f"text {n}"])) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(100):
            if s.texts.in_flight == 2:
                break
            threading.Event().wait(0.01)
        m = scrape(c)
        assert value(m, "prerec_text_encoding_jobs") == 2 and value(m, "prerec_text_encoding_capacity") == 3
    finally:
        gate.set()
        for t in threads:
            t.join(10)
        s.close()
    assert value(scrape(c), "prerec_text_encoding_jobs") == 0


def test_access_log_line(client, caplog):
    ids = list(tiny_domain().item_ids)
    with caplog.at_level(logging.INFO, logger="prerec.access"):
        r = client.post("/recommend", json={"domain": "tiny", "history": [ids[0]]}, headers={"X-Request-ID": "abc-1"})
        r2 = client.post("/recommend", json={"domain": "tiny", "history": "not a list"})
    assert r.headers["x-request-id"] == "abc-1" and len(r2.headers["x-request-id"]) == 32
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "prerec.access"]
    assert [(x["method"], x["path"], x["status"], x["request_id"]) for x in lines] == [
        ("POST", "/recommend", 200, "abc-1"), ("POST", "/recommend", 422, r2.headers["x-request-id"])]
    assert all(isinstance(x["duration_ms"], float) and x["duration_ms"] > 0 for x in lines)


def test_bad_request_id_is_replaced(client):
    r = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert len(r.headers["x-request-id"]) == 32


def test_metrics_protected_with_reads():
    s = Service(tiny_model(), clock=lambda: NOW)
    s.attach(tiny_domain())
    c = TestClient(create_app(s, keys=ApiKeys([KEY]), protect_reads=True), base_url="http://127.0.0.1")
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
