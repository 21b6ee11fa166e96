"""Access control of the HTTP app: API keys (401/403), the Host allow-list, the bind check."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from serving_helpers import DAY0, tiny_domain, tiny_model

from prerec.cli import main
from prerec.data.domain import SECONDS_PER_DAY
from prerec.errors import PrerecError
from prerec.serving import Service
from prerec.serving.app import create_app
from prerec.serving.security import ApiKeys, check_bind, is_loopback

NOW = (DAY0 + 45) * SECONDS_PER_DAY
KEY, OTHER = "k" * 20 + "-first-key", "second-key-0123456789"


@pytest.fixture(scope="module")
def service():
    s = Service(tiny_model(), clock=lambda: NOW)
    s.attach(tiny_domain())
    return s


def client(service, **options) -> TestClient:
    return TestClient(create_app(service, **options), base_url="http://127.0.0.1")


def writes(ids):
    return [
        ("POST", "/events", {"domain": "tiny", "events": [{"user_id": "u", "item_id": ids[0], "timestamp": NOW}]}),
        ("PUT", "/domains/tiny/items", {"items": [{"item_id": "A-1", "text": "a lamp"}]}),
        ("DELETE", "/domains/tiny/items/A-1", None),
    ]


def test_writes_need_a_key(service):
    c = client(service, keys=ApiKeys([KEY, OTHER]))
    ids = list(tiny_domain().item_ids)
    n_events = service.info("tiny")["n_events"]
    for method, path, body in writes(ids):
        r = c.request(method, path, json=body)
        assert r.status_code == 401 and "API key" in r.json()["detail"], (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.request(method, path, json=body, headers={"Authorization": "Bearer not-the-key-at-all"})
        assert r.status_code == 403, (path, r.text)
        r = c.request(method, path, json=body, headers={"X-API-Key": KEY[:-1]})
        assert r.status_code == 403
    assert service.info("tiny")["n_events"] == n_events and service.info("tiny")["n_added_items"] == 0
    for n, (method, path, body) in enumerate(writes(ids)):
        headers = {"Authorization": f"Bearer {KEY}"} if n % 2 else {"X-API-Key": OTHER}
        r = c.request(method, path, json=body, headers=headers)
        assert r.status_code == 200, (path, r.text)
    # reads stay open unless protected
    assert c.post("/recommend", json={"domain": "tiny", "history": [ids[0]], "k": 2}).status_code == 200
    assert c.get("/domains").status_code == 200


def test_protected_reads(service):
    c = client(service, keys=ApiKeys([KEY]), protect_reads=True)
    ids = list(tiny_domain().item_ids)
    body = {"domain": "tiny", "history": [ids[0]], "k": 2}
    assert c.get("/healthz").status_code == 200  # health checks need no key
    for method, path in (("POST", "/recommend"), ("POST", "/recommend/batch"), ("GET", "/domains"),
                         ("GET", "/domains/tiny"), ("GET", "/openapi.json")):
        assert c.request(method, path, json=body).status_code == 401, path
        assert c.request(method, path, json=body, headers={"X-API-Key": OTHER}).status_code == 403
    assert c.post("/recommend", json=body, headers={"X-API-Key": KEY}).status_code == 200


def test_keys_are_checked_against_every_key(monkeypatch):
    import prerec.serving.security as security

    calls = []
    real = security.hmac.compare_digest
    monkeypatch.setattr(security.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    keys = ApiKeys([KEY, OTHER, "third-key-0123456789"])
    assert keys.check(KEY.encode()) and len(calls) == 3  # no early exit on the first match
    assert not keys.check(b"nope") and len(calls) == 6


def test_keys_from_file_and_env(tmp_path, monkeypatch):
    f = tmp_path / "keys"
    f.write_text(f"# service keys\n{KEY}\n\n{OTHER}  # the second\n")
    keys = ApiKeys.from_file(f)
    assert len(keys) == 2 and keys.check(OTHER.encode()) and not keys.check(b"# the second")
    monkeypatch.setenv("PREREC_API_KEYS", f"{KEY}, {OTHER}")
    assert len(ApiKeys.from_env()) == 2
    monkeypatch.setenv("PREREC_API_KEYS", "")
    assert ApiKeys.from_env() is None
    with pytest.raises(PrerecError, match="shorter than 16"):
        ApiKeys(["short"])
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(PrerecError, match="no key"):
        ApiKeys.from_file(tmp_path / "empty")


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:8000", True), ("localhost", True), ("LOCALHOST:1", True), ("[::1]:8000", True),
    ("evil.example", False), ("evil.example:8000", False), ("127.0.0.1.evil.example", False),
    ("192.168.1.5:8000", False),
])
def test_host_allow_list(service, host, allowed):
    r = client(service).get("/healthz", headers={"host": host})
    assert (r.status_code == 200) == allowed, (host, r.status_code)


def test_custom_host_allow_list(service):
    c = client(service, allowed_hosts=["api.example.com", "*.internal.example"])
    assert c.get("/healthz", headers={"host": "api.example.com"}).status_code == 200
    assert c.get("/healthz", headers={"host": "a.internal.example"}).status_code == 200
    assert c.get("/healthz", headers={"host": "127.0.0.1"}).status_code == 400


def test_bind_check(caplog):
    keys = ApiKeys([KEY])
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    with caplog.at_level(logging.WARNING):
        check_bind("127.0.0.1", None, False, ["localhost"])
        assert not caplog.records
        with pytest.raises(PrerecError, match="non-loopback address without API keys"):
            check_bind("0.0.0.0", None, False, ["localhost"])
        check_bind("0.0.0.0", None, True, ["api.example.com"])
        assert "WITHOUT API keys" in caplog.text
        caplog.clear()
        check_bind("0.0.0.0", keys, False, ["localhost"])
        assert "reachable from other machines" in caplog.text and "remote clients get 400" in caplog.text


def test_cli_refuses_open_bind_without_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PREREC_API_KEYS", raising=False)
    base = ["serve", "--run", str(tmp_path), "--target", "x=canonical:nowhere"]
    assert main([*base, "--host", "0.0.0.0"]) == 2
    assert "--insecure-bind" in capsys.readouterr().err
    assert main([*base, "--api-keys-file", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main([*base, "--protect-reads"]) == 2
    assert "no API keys" in capsys.readouterr().err
    assert main([*base, "--max-k", "0"]) == 2
    assert "--max-k 0" in capsys.readouterr().err
    assert main([*base, "--allowed-host", "a*b"]) == 2
