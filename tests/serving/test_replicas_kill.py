"""Two ``prerec serve`` replicas on one real PostgreSQL server, one killed with SIGKILL under load.

The server is brought up by the test suite (tests/serving/pg_server.py: initdb in a temporary
folder, a free port of 127.0.0.1). Clients post event batches (with idempotency keys)
alternately to both replicas while others ask for recommendations; replica 1 is killed with
SIGKILL in the middle and started again. A batch that fails is retried on the other replica,
as a client behind a load balancer would. Afterwards: every acknowledged event is stored
exactly once, nothing is stored that was not sent, and both replicas hold every stored event
and give the same scores (so the same popularity) for the same requests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import psycopg
from serve_process import KEY, start_server, stop
from serving_helpers import DAY0, tiny_domain

from prerec.data.domain import SECONDS_PER_DAY
from shared_data import free_port

TODAY = DAY0 + 45
AUTH = {"X-API-Key": KEY}
N_CLIENTS = 3
BATCHES_PER_CLIENT = 60
EVENTS_PER_BATCH = 4


def post_events(urls: list[str], first: int, body: dict, acked: list, retries: list) -> None:
    """POST to ``urls[first]``; on a failure, retry the same batch on the other replica (and
    back), for at most 60 s."""
    deadline = time.monotonic() + 60
    k = first
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"{urls[k]}/events", json=body, headers=AUTH, timeout=10)
            if r.status_code == 200:
                acked.append(body["events"])
                return
        except httpx.TransportError:
            pass
        retries.append(body["events"][0]["event_id"])
        k = 1 - k
        time.sleep(0.05)
    raise AssertionError(f"batch {body['events'][0]['event_id']} never acknowledged")


def check_agreement(db: str, urls: list[str], acked: list[list[dict]], items: list[str]) -> None:
    """Every acknowledged event stored once, nothing else; both replicas count them all and answer alike."""
    sent_keys = {e["event_id"] for b in acked for e in b}
    assert len(acked) == N_CLIENTS * BATCHES_PER_CLIENT and len(sent_keys) == len(acked) * EVENTS_PER_BATCH
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT event_id, COUNT(*) FROM events WHERE domain = 'tiny' GROUP BY event_id")
        counts = dict(rows.fetchall())
    assert set(counts) == sent_keys, "stored events differ from the acknowledged ones"
    assert set(counts.values()) == {1}, "an event was stored twice"

    # both replicas count every stored event once, within the stated delay
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        infos = [httpx.get(f"{u}/domains/tiny", timeout=10).json() for u in urls]
        if all(i["n_events"] == len(sent_keys) for i in infos):
            break
        time.sleep(0.1)
    assert [i["n_events"] for i in infos] == [len(sent_keys)] * 2, infos
    body = {"domain": "tiny", "history": [items[0], items[5]], "k": 20,
            "timestamp": TODAY * SECONDS_PER_DAY + 60}
    answers = [httpx.post(f"{u}/recommend", json=body, timeout=10).json()["items"] for u in urls]
    assert answers[0] == answers[1]  # same ids, same scores: the same popularity on both
    metrics = httpx.get(f"{urls[1]}/metrics", timeout=10).text
    assert 'prerec_events_accepted_total{domain="tiny"}' in metrics


def test_two_replicas_one_killed_under_load(tiny_run, target_dir, tmp_path, postgres):
    db = postgres.create_database("replicas")
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    logs = [tmp_path / "r1.log", tmp_path / "r2.log"]
    extra = ("--sync-interval", "0.5", "--db-pool", "4")
    items = list(tiny_domain().item_ids)
    yesterday = (TODAY - 1) * SECONDS_PER_DAY + 60
    procs = [start_server(tiny_run, target_dir, db, ports[0], logs[0], extra)]
    procs.append(start_server(tiny_run, target_dir, db, ports[1], logs[1], extra))
    acked: list[list[dict]] = []
    retries: list[str] = []
    errors: list[BaseException] = []
    progress = threading.Semaphore(0)

    def client(c: int) -> None:
        try:
            for n in range(BATCHES_PER_CLIENT):
                evs = [{"user_id": f"c{c}u{n}", "item_id": items[(7 * n + 3 * c + j) % 13], "timestamp": yesterday,
                        "event_id": f"c{c}-{n}-{j}"} for j in range(EVENTS_PER_BATCH)]
                post_events(urls, (n + c) % 2, {"domain": "tiny", "events": evs}, acked, retries)  # alternately
                progress.release()
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:  # recommendations keep flowing to both replicas meanwhile
        for n in range(200):
            if not any(t.is_alive() for t in threads[:N_CLIENTS]):
                return
            with contextlib.suppress(httpx.TransportError):
                httpx.post(f"{urls[n % 2]}/recommend", json={"domain": "tiny", "history": [items[n % 9]]}, timeout=10)
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(N_CLIENTS)]
    threads.append(threading.Thread(target=reader))
    try:
        for t in threads:
            t.start()
        for _ in range(N_CLIENTS * BATCHES_PER_CLIENT // 3):  # a third of the batches, then SIGKILL
            assert progress.acquire(timeout=60), "the clients stalled"
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=20)
        killed_at = len(acked)
        for _ in range(N_CLIENTS * BATCHES_PER_CLIENT // 6):
            assert progress.acquire(timeout=60), "the clients stalled with one replica down"
        procs[0] = start_server(tiny_run, target_dir, db, ports[0], logs[0], extra)
        for t in threads:
            t.join(timeout=180)
        assert not any(t.is_alive() for t in threads), "clients did not finish"
        assert not errors, errors
        assert retries, "no request failed: the kill did not happen under load"
        assert killed_at < len(acked)

        check_agreement(db, urls, acked, items)
    finally:
        for p in procs:
            stop(p)
