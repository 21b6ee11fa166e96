"""The web page at ``/`` in a real browser (headless chromium through chromedriver) against a
real ``prerec serve`` with API keys: search, add two items, and the recommendations shown are
``POST /recommend``'s for the same history; recording an event counts it."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest
import webdriver
from serve_process import KEY, start_server, stop

from shared_data import free_port

AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def browser():
    try:
        b = webdriver.start()
    except webdriver.Unavailable as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"a headless browser is needed in CI and cannot be started: {exc}", pytrace=False)
        pytest.skip(f"no headless browser here: {exc}")
    yield b
    b.close()


def test_page_shows_what_the_api_recommends(tiny_run, target_dir, tmp_path, browser):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(tiny_run, target_dir, tmp_path / "events.sqlite", port, tmp_path / "server.log",
                        ("--protect-reads",))
    try:
        browser.get(url + "/")
        (key,) = browser.wait_for("#key")
        browser.type(key, KEY)
        (q,) = browser.find_all("#q")
        browser.click(q)  # leaving the key field sends it ("change"): the domains load
        browser.wait_for("#domain option")
        browser.type(q, "red mug")
        results = browser.wait_for("#results li", 2)
        chosen = [browser.attribute(results[0], "data-id"), browser.attribute(results[1], "data-id")]
        browser.click(results[0])
        browser.click(browser.find_all("#results li")[1])
        browser.wait_for("#history li", 2)
        browser.wait_for("#rec[data-ready='yes']")
        rows = browser.wait_for("#recs tr", 10)
        shown = [(browser.attribute(r, "data-id"), float(browser.attribute(r, "data-score"))) for r in rows]
        today = browser.script("return today();")
        api = httpx.post(f"{url}/recommend", headers=AUTH, timeout=30, json={
            "domain": "tiny", "history": chosen, "k": 10, "explain": True, "timestamp": today}).json()["items"]
        assert [i for i, _ in shown] == [i["item_id"] for i in api]
        assert [s for _, s in shown] == pytest.approx([i["score"] for i in api], rel=1e-9)
        # the split is shown: U.V + g(F) = score on every row
        for r, item in zip(rows, api):
            uv, pop, score = (float(browser.text(browser.script(
                f"return arguments[0].querySelector('td.{c}');", {webdriver.ELEMENT: r})[webdriver.ELEMENT]))
                for c in ("uv", "pop", "score"))
            assert abs(uv + pop - score) < 2e-4 and abs(pop - item["popularity"]) < 1e-4
        browser.wait_for("#popular li", 10)
        shot = tmp_path / "page.png"
        browser.screenshot(shot)
        if os.environ.get("PREREC_PAGE_SCREENSHOT"):
            shutil.copy(shot, os.environ["PREREC_PAGE_SCREENSHOT"])
        before = httpx.get(f"{url}/domains/tiny", headers=AUTH, timeout=10).json()["n_events"]
        browser.click(browser.find_all("#recs tr button.record")[0])
        for _ in range(100):
            if httpx.get(f"{url}/domains/tiny", headers=AUTH, timeout=10).json()["n_events"] == before + 1:
                break
            browser.script("return 0;")
        assert httpx.get(f"{url}/domains/tiny", headers=AUTH, timeout=10).json()["n_events"] == before + 1
        assert "recorded" in browser.text(browser.find_all("#status")[0])
        # the page and its files never need the key; the API behind them does (--protect-reads)
        assert httpx.get(url + "/", timeout=10).status_code == 200
        assert httpx.get(url + "/static/web/app.js", timeout=10).status_code == 200
        assert httpx.get(url + "/domains", timeout=10).status_code == 401
    finally:
        stop(proc)
