"""Acknowledged events survive ``kill -9`` of a real ``prerec serve`` process: none lost, none doubled.

One uvicorn process on 127.0.0.1 (started twice on the same database), a tiny run pre-trained
for one epoch on two tiny domains (hash:64 text), bounded waits everywhere. The server runs
with API keys (from the environment) and non-default limits, as in production.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time

import httpx
import pytest
from serve_process import KEY, start_server, stop
from serving_helpers import DAY0, tiny_domain

from prerec.cli import main
from prerec.data.domain import SECONDS_PER_DAY
from shared_data import free_port

TODAY = DAY0 + 45
AUTH = {"X-API-Key": KEY}


def assert_refused(c: httpx.Client, url: str, event: dict) -> None:
    """Without the key nothing is written; over a limit neither."""
    assert httpx.post(f"{url}/events", json={"domain": "tiny", "events": [event]}, timeout=10).status_code == 401
    assert c.post("/events", json={"domain": "tiny", "events": [event] * 51}).status_code == 422


def test_serve_bad_input_exits_2(tmp_path, capsys, target_dir):
    assert main(["serve", "--run", str(tmp_path / "nope"), "--target", f"x=canonical:{target_dir}",
                 "--port", str(free_port())]) == 2
    assert "no such run directory" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--run", str(tmp_path), "--target", f"x=canonical:{target_dir}",
                     "--port", str(port)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_acknowledged_events_survive_kill_9(tiny_run, target_dir, tmp_path):
    db, log = tmp_path / "events.sqlite", tmp_path / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    items = list(tiny_domain().item_ids)
    yesterday = (TODAY - 1) * SECONDS_PER_DAY + 60
    today = TODAY * SECONDS_PER_DAY + 60
    rec_body = {"domain": "tiny", "history": [items[0], "NEW-1"], "k": 10, "timestamp": today}
    proc = start_server(tiny_run, target_dir, db, port, log)
    try:
        with httpx.Client(base_url=url, timeout=10.0, headers=AUTH) as c:
            assert_refused(c, url, {"user_id": "x", "item_id": items[0], "timestamp": yesterday})
            # phase 1: an added item and keyless events (yesterday: they change today's popularity)
            r = c.put("/domains/tiny/items", json={"items": [{"item_id": "NEW-1", "text": "glow in the dark mug"}]})
            assert r.status_code == 200, r.text
            acked_plain = 0
            for n in range(12):
                evs = [{"user_id": f"p{n}", "item_id": items[(n + j) % 7] if j else "NEW-1", "timestamp": yesterday}
                       for j in range(5)]
                r = c.post("/events", json={"domain": "tiny", "events": evs})
                assert r.status_code == 200 and r.json()["accepted"] == 5
                acked_plain += 5
            before = c.post("/recommend", json=rec_body).json()

        # phase 2: a second process-side writer with idempotency keys (today: today's ranking
        # does not move), killed with SIGKILL while requests are in flight
        sent: list[list[dict]] = []
        acked: list[list[dict]] = []
        stop_flag = threading.Event()

        def writer():
            with httpx.Client(base_url=url, timeout=5.0, headers=AUTH) as w:
                for n in range(10_000):
                    if stop_flag.is_set():
                        return
                    evs = [{"user_id": f"k{n}", "item_id": items[(n * 3 + j) % 11], "timestamp": today,
                            "event_id": f"b{n}-{j}"} for j in range(4)]
                    sent.append(evs)
                    try:
                        r = w.post("/events", json={"domain": "tiny", "events": evs})
                    except httpx.TransportError:
                        return  # the server died under us: this batch is unacknowledged
                    if r.status_code == 200:
                        acked.append(evs)

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 25 and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        stop_flag.set()
        t.join(timeout=20)
        assert len(acked) >= 25, f"only {len(acked)} batches acknowledged: {log.read_text()[-1500:]}"

        # straight from the database: every acknowledged event is there exactly once
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT event_id, COUNT(*) FROM events WHERE domain='tiny' GROUP BY event_id").fetchall()
        counts = dict((k, n) for k, n in rows if k is not None)
        plain = next((n for k, n in rows if k is None), 0)
        assert plain == acked_plain
        assert all(counts.get(e["event_id"]) == 1 for b in acked for e in b)
        assert all(n == 1 for n in counts.values())
        stored_keys = set(counts)

        # restart on the same database: state rebuilt, same answer as before the kill
        proc = start_server(tiny_run, target_dir, db, port, log)
        with httpx.Client(base_url=url, timeout=10.0, headers=AUTH) as c:
            info = c.get("/domains/tiny").json()
            assert info["n_events"] == acked_plain + len(stored_keys) and info["n_added_items"] == 1
            after = c.post("/recommend", json=rec_body).json()
            assert [i["item_id"] for i in after["items"]] == [i["item_id"] for i in before["items"]]
            assert [i["score"] for i in after["items"]] == pytest.approx([i["score"] for i in before["items"]],
                                                                         rel=1e-5, abs=1e-6)
            # the client retries every batch it sent (acknowledged or not): nothing is doubled
            dupes = 0
            for evs in sent:
                r = c.post("/events", json={"domain": "tiny", "events": evs})
                assert r.status_code == 200
                dupes += r.json()["duplicates"]
            assert dupes == sum(e["event_id"] in stored_keys for b in sent for e in b)
            n_sent = sum(len(b) for b in sent)
            assert c.get("/domains/tiny").json()["n_events"] == acked_plain + n_sent
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT COUNT(*) FROM events").fetchone()[0] == acked_plain + n_sent
    finally:
        stop(proc)
