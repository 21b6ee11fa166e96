"""/docs and /redoc work offline: every asset they reference is served by the service itself."""

from __future__ import annotations

import re
import socket
from html.parser import HTMLParser

import httpx
import pytest
from serving_helpers import DAY0, LiveServer, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Service
from prerec.serving.app import create_app
from prerec.serving.security import ApiKeys

NOW = (DAY0 + 45) * SECONDS_PER_DAY
KEY = "docs-test-key-0123456789"


class _Refs(HTMLParser):
    """Every URL an HTML page makes a browser fetch: src, href, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def referenced(html: str) -> list[str]:
    p = _Refs()
    p.feed(html)
    # Swagger UI's inline script: url: '/openapi.json', oauth2RedirectUrl: window.location.origin + '/docs/...'
    p.urls += re.findall(r"\burl:\s*'([^']+)'", html)
    p.urls += re.findall(r"oauth2RedirectUrl:\s*window\.location\.origin\s*\+\s*'([^']+)'", html)
    return p.urls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    s = Service(tiny_model(), clock=lambda: NOW)
    s.attach(tiny_domain())
    app = create_app(s, keys=ApiKeys([KEY]), protect_reads=True)
    with LiveServer(app, free_port()) as live:
        yield live
    s.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_and_every_asset_are_local(server, page):
    h = {"X-API-Key": KEY}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get(page, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text and "//" not in r.text.replace("<!--", ""), \
            "the page names an outside address"
        urls = referenced(r.text)
        kinds = {"/docs": {".js", ".css", ".png", ".json"}, "/redoc": {".js", ".png", ".json"}}[page]
        assert {u[u.rfind("."):] for u in urls if "." in u} >= kinds, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            got = c.get(url, headers=h)
            assert got.status_code == 200 and len(got.content) > 0, (url, got.status_code)
            if url.endswith(".js"):
                assert "javascript" in got.headers["content-type"] and len(got.content) > 500_000
            if url.endswith(".css"):
                assert got.headers["content-type"].startswith("text/css")
        # the packaged files are public (no key), the pages and the schema follow --protect-reads
        assert c.get(next(u for u in urls if u.endswith(".js"))).status_code == 200
        assert c.get(page).status_code == 401 and c.get("/openapi.json").status_code == 401


def test_swagger_ui_does_not_call_the_online_validator(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        html = c.get("/docs", headers={"X-API-Key": KEY}).text
    assert '"validatorUrl": null' in html
