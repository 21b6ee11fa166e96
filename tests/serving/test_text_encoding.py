"""The bounded text pool (busy -> EncoderBusy, timeouts), one encoder window per text, and a
flood of long-text requests against a live server (127.0.0.1) that must not stall the rest."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from serving_helpers import DAY0, LiveServer, counting, tiny_domain, tiny_model

from prerec.data.domain import SECONDS_PER_DAY
from prerec.serving import Service, Text
from prerec.serving.app import create_app
from prerec.serving.encoding import E5_WINDOW_TOKENS, EncoderBusy, TextPool, e5_cutter, window_cutter
from shared_data import free_port

NOW = (DAY0 + 45) * SECONDS_PER_DAY


def test_pool_refuses_when_full_and_recovers():
    gate = threading.Event()

    def slow(texts):
        gate.wait(10)
        return np.ones((len(texts), 2), np.float32)

    pool = TextPool(slow, workers=1, queue=1, timeout=10)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(pool.encode(["a", "b"]))) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while pool._in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(EncoderBusy, match="busy") as busy:
        pool.encode(["c"])
    assert 1 <= busy.value.retry_after <= 60
    gate.set()
    for t in threads:
        t.join(10)
    assert len(results) == 2 and all(r.shape == (2, 2) for r in results)
    assert pool.encode(["d"]).shape == (1, 2)  # slots were given back
    pool.close()


def test_pool_timeout_stops_the_job_after_its_chunk():
    chunks: list[int] = []

    def slow(texts):
        chunks.append(len(texts))
        time.sleep(0.1)
        return np.zeros((len(texts), 2), np.float32)

    pool = TextPool(slow, workers=1, queue=0, timeout=0.25, chunk=2)
    with pytest.raises(EncoderBusy, match=r"longer than 0\.25s"):
        pool.encode([f"t{n}" for n in range(40)])
    time.sleep(0.4)
    assert sum(chunks) <= 10  # 20 chunks asked for; it stopped after the one running at the timeout
    assert pool.encode(["x"]).shape == (1, 2)
    pool.close()


def test_cut_is_the_longest_prefix_in_one_window():
    words = lambda s: len(s.split()) + 2  # noqa: E731 - a stand-in tokenizer: words plus two specials
    cut = e5_cutter(words, window=10)
    text = " ".join(f"w{n}" for n in range(50))
    short = cut(text)
    assert text.startswith(short) and words(short) <= 10 and words(text[: len(short) + 3]) > 10
    assert cut("just four words here") == "just four words here"


def test_e5_texts_are_cut_to_one_window():
    """With the real e5 tokenizer: a 10,000-character text reaches the encoder as one window."""
    from prerec.text.e5 import E5Encoder

    enc = E5Encoder()
    model = SimpleNamespace(run=SimpleNamespace(encoder=enc))
    cut, window = window_cutter(model, 10_000)
    assert window.startswith("e5-window:512")
    long = " ".join(f"red retrospot mug number {n}" for n in range(600))
    assert enc._model.token_count(long) > 3 * E5_WINDOW_TOKENS
    head = cut(long)
    assert long.startswith(head) and enc._model.token_count(head) <= E5_WINDOW_TOKENS
    assert enc._model.token_count(long[: len(head) + 20]) > E5_WINDOW_TOKENS  # nothing more would fit
    # the embedding of the cut text is what the encoder would make of its first window
    assert cut("short text") == "short text"


def test_service_cuts_texts_before_encoding():
    model = counting(tiny_model())
    service = Service(model, clock=lambda: NOW, max_text_chars=300)
    service.attach(tiny_domain())
    model.encoded.clear()
    ids = list(tiny_domain().item_ids)
    service.recommend("tiny", [[ids[0], Text("blue mug " * 2000), Text("jar " * 5000)]], k=3)
    service.add_items("tiny", {"LONG": "lantern " * 3000})
    texts = [t for batch in model.encoded for t in batch]
    assert len(texts) == 3 and all(len(t) <= 300 for t in texts)


def test_flood_of_long_texts_does_not_stall_ids_or_health():
    """48 clients send long-text recommends non-stop while the text encoder is held shut (every
    text job waits on a gate that opens only at the end); /healthz and id-only /recommend must
    still answer: if they waited behind text they would hang until the gate opens and time out.
    Text requests beyond the pool get 503 + Retry-After. Nothing here depends on speed."""
    gate = threading.Event()
    model = counting(tiny_model())
    service = Service(model, clock=lambda: NOW, encode_queue=4, encode_timeout=1.0)
    service.attach(tiny_domain())
    model.encoded.clear()
    inner = model._embed

    def held(texts):
        gate.wait(60)
        return inner(texts)

    model._embed = held
    ids = list(tiny_domain().item_ids)
    stop = threading.Event()
    statuses: list[int] = []
    retry_after: list[str] = []

    def flood(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for m in range(1000):
                if stop.is_set():
                    return
                texts = [{"text": f"client {n} request {m} text {j} " + "long words " * 900} for j in range(4)]
                try:
                    r = c.post("/recommend", json={"domain": "tiny", "history": texts, "k": 5})
                except httpx.HTTPError:
                    statuses.append(-1)
                    continue
                statuses.append(r.status_code)
                if r.status_code == 503:
                    retry_after.append(r.headers.get("retry-after", ""))

    with LiveServer(create_app(service), free_port()) as server:
        threads = [threading.Thread(target=flood, args=(n,)) for n in range(48)]
        for t in threads:
            t.start()
        for _ in range(600):  # until the pool is full and refusing (bounded)
            if statuses.count(503) >= 5:
                break
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=server.url, timeout=20) as c:
                for n in range(20):
                    assert c.get("/healthz").status_code == 200
                    r = c.post("/recommend", json={"domain": "tiny", "history": [ids[n], ids[n + 1]], "k": 5})
                    assert r.status_code == 200, r.text
            assert not gate.is_set() and model.encoded == []  # all of it while no text was encoded
        finally:
            gate.set()
            stop.set()
            for t in threads:
                t.join(30)
    service.close()
    # text requests are refused while the pool is full (those admitted before the gate opened may
    # still finish with 200 afterwards); nothing else, and never a 500
    assert statuses.count(503) > 0, statuses[:50]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert all(v.isdigit() and int(v) >= 1 for v in retry_after)
