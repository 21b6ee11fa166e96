"""Load test of ``prerec serve``: latency under a normal and a hostile mix, and restart times.

    .venv/bin/python benchmarks/serve_load.py --run RUN_DIR            # an existing run
    .venv/bin/python benchmarks/serve_load.py                          # trains a tiny run first

Starts ``prerec serve`` on 127.0.0.1 (a child process, with an API key from the environment)
with the six B1 targets (Online Retail: Germany, France, Spain, Belgium, Switzerland,
Portugal), then drives it from this process with ``--concurrency`` client threads (httpx):

1. **normal mix**: a fixed number of requests, ``POST /recommend`` (histories are real users'
   item sequences of the target, some ending with the raw text of an item instead of its id)
   and ``POST /events`` (1-5 events with idempotency keys, timestamps in the last ten days).
2. **hostile mix**: the same requests again while ``--hostile`` more client threads send, non-stop,
   recommends whose histories hold ``--hostile-texts`` distinct texts of ``--hostile-chars``
   characters each (every one costs the encoder a full window). Reported apart: id-only
   recommends (p50/p99), recommends with a text, events, and what the hostile clients got.
3. **restarts**: ``--restart-items`` items are added (``PUT``, batches of 250), the server is
   stopped and started again on the same database (stored embeddings: nothing re-encoded), then
   once more after marking every stored embedding stale (the service re-encodes them: what every
   restart cost before embeddings were stored). Each time: seconds from start to ``/healthz``.

After each phase the service's event count is checked against what was acknowledged (it must
match exactly); failed requests of the normal clients are counted (they must be 0).

``--compare-stores`` instead runs the normal mix against SQLite (one process) and PostgreSQL
with one and with two replicas (benchmarks/serve_stores.py).

Without ``--run``, a tiny run is trained first: ``prerec pretrain`` on every other country,
``--preset cpu --set epochs=1 --encoder hash:64`` (capped at 20k instances).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PREREC_SHARED_DATA", ROOT.parent / "shared" / "data"))
ONLINE_RETAIL = DATA / "online_retail" / "online_retail_2010_2011.parquet"
TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")
PREREC = [sys.executable, "-c", "import sys; from prerec.cli import main; sys.exit(main())"]
KEY = "serve-load-benchmark-" + uuid.uuid4().hex
HEADERS = {"X-API-Key": KEY}


def train_tiny_run(out: Path, data: Path) -> None:
    from prerec.data.readers import load_domains

    # every country with interactions left after the B1 cleaning, the targets excepted
    sources = sorted(d.name for d in load_domains([f"online-retail:{data}"]) if d.name not in TARGETS)
    cmd = [*PREREC, "-q", "pretrain", "--out", str(out), "--preset", "cpu", "--encoder", "hash:64",
           "--set", "epochs=1", "--set", "max_instances_per_epoch=20000", "--set", "progress=false"]
    for c in sources:
        cmd += ["--source", f"{c}=online-retail:{data}#{c}"]
    print(f"training a tiny run on {len(sources)} source countries -> {out}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"trained in {time.perf_counter() - t:.0f}s", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``prerec serve`` in a child process; ``start()`` returns the seconds until /healthz."""

    def __init__(self, cmd: list[str], url: str, log: Path, timeout: float) -> None:
        self.cmd, self.url, self.log, self.timeout = cmd, url, log, timeout
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        import httpx

        t0 = time.perf_counter()
        env = {**os.environ, "PREREC_API_KEYS": KEY}
        self.proc = subprocess.Popen(self.cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        while time.perf_counter() - t0 < self.timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"server not ready after {self.timeout:.0f}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def build_plan(domains: dict, n: int, args: argparse.Namespace, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """``n`` requests of the normal mix, fixed in advance (seeded)."""
    names = list(domains)
    now = int(time.time())
    plan: list[tuple[str, dict]] = []
    for _ in range(n):
        d = domains[names[int(rng.integers(len(names)))]]
        if rng.random() < args.events_share:
            items = d.item_ids[rng.integers(0, d.n_items, int(rng.integers(1, 6)))]
            evs = [{"user_id": f"load-{int(rng.integers(1000))}", "item_id": str(i),
                    "timestamp": now - int(rng.integers(0, 10 * 86400)), "event_id": uuid.uuid4().hex} for i in items]
            plan.append(("/events", {"domain": d.name, "events": evs}))
            continue
        seq = d.sequences.sequence(int(rng.integers(len(d.sequences))))[0]
        end = int(rng.integers(1, len(seq) + 1))
        hist: list = [str(i) for i in d.item_ids[seq[max(0, end - 20): end]]]
        if rng.random() < args.text_share:
            hist.append({"text": str(d.texts.iloc[int(rng.integers(d.n_items))]).lower() + " set"})
        plan.append(("/recommend", {"domain": d.name, "history": hist, "k": 10, "exclude_seen": bool(rng.random() < 0.5)}))
    return plan


def kind_of(path: str, body: dict) -> str:
    if path == "/events":
        return "/events"
    return "/recommend (text)" if any(isinstance(e, dict) for e in body["history"]) else "/recommend (ids)"


def hostile_client(url: str, domain: str, n: int, args: argparse.Namespace, stop: threading.Event,
                   got: dict[int, int], lock: threading.Lock) -> None:
    """Long-text recommends, non-stop, until ``stop`` (each text distinct: no cache helps)."""
    import httpx

    words = ["jumbo", "bag", "red", "retrospot", "vintage", "paisley", "heart", "of", "wicker", "lantern", "doormat"]
    with httpx.Client(base_url=url, timeout=120, headers=HEADERS) as c:
        for m in range(1_000_000):
            if stop.is_set():
                return
            texts = []
            for j in range(args.hostile_texts):
                w = " ".join(words[(n + m + j + q) % len(words)] for q in range(args.hostile_chars // 6))
                texts.append({"text": f"hostile {n}-{m}-{j} {w}"[: args.hostile_chars]})
            try:
                status = c.post("/recommend", json={"domain": domain, "history": texts, "k": 10}).status_code
            except httpx.HTTPError:
                status = -1
            with lock:
                got[status] = got.get(status, 0) + 1


def drive(url: str | list[str], plan: list, args: argparse.Namespace, hostile: int, domain: str) -> dict:
    """Run ``plan`` (50 warm-up requests first) with ``hostile`` long-text clients alongside."""
    import httpx

    lock = threading.Lock()
    lat: dict[str, list[float]] = {"/recommend (ids)": [], "/recommend (text)": [], "/events": []}
    errors: list[str] = []
    acked, refused = [0], [0]
    local = threading.local()
    urls = [url] if isinstance(url, str) else list(url)  # several replicas: requests spread over them
    turn = itertools.count()

    def call(job: tuple[str, dict], record: bool = True) -> None:
        path, body = job
        if not hasattr(local, "clients"):
            local.clients = [httpx.Client(base_url=u, timeout=120, headers=HEADERS) for u in urls]
        t = time.perf_counter()
        status = -1
        try:
            r = local.clients[next(turn) % len(urls)].post(path, json=body)
            status, msg = r.status_code, f"{path} {r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            msg = f"{path} {type(exc).__name__}: {exc}"
        ok = status == 200
        dt = time.perf_counter() - t
        with lock:
            if path == "/events" and ok:
                acked[0] += len(body["events"])
            if status == 503 and kind_of(path, body) == "/recommend (text)":
                refused[0] += 1  # the encoder is saturated: the answer the service promises then
            elif not ok:
                errors.append(msg)
            elif record:
                lat[kind_of(path, body)].append(dt)

    stop, got = threading.Event(), {}
    flood = [threading.Thread(target=hostile_client, args=(urls[n % len(urls)], domain, n, args, stop, got, lock))
             for n in range(hostile)]
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda j: call(j, record=False), plan[:50]))
        for t in flood:
            t.start()
        time.sleep(2.0 if hostile else 0.0)  # let the flood fill the encoder's queue
        t0 = time.perf_counter()
        list(pool.map(call, plan[50:]))
        wall = time.perf_counter() - t0
    stop.set()
    for t in flood:
        t.join(180)
    return {"lat": lat, "errors": errors, "acked": acked[0], "wall": wall, "n": len(plan) - 50, "hostile": got,
            "refused": refused[0]}


def report(title: str, res: dict) -> None:
    print(f"\n{title}\n")
    print("| requests | count | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    every = [x for xs in res["lat"].values() for x in xs]
    for kind, xs in (*res["lat"].items(), ("all", every)):
        ms = np.array(xs) * 1000
        if len(ms):
            print(f"| {kind} | {len(ms)} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | {ms.mean():.1f} |")
    print(f"\nthroughput: {res['n'] / res['wall']:.1f} requests/s over {res['wall']:.1f}s; "
          f"errors: {len(res['errors'])}; recommends with a text refused (503, encoder saturated): {res['refused']}")
    if res["hostile"]:
        print("hostile long-text requests answered: " + ", ".join(
            f"{n} x {'transport error' if s < 0 else s}" for s, n in sorted(res["hostile"].items())))
    for e in res["errors"][:5]:
        print("  error:", e)


def add_items(url: str, domains: dict, n: int) -> float:
    """PUT ``n`` new items (texts of catalog items with a suffix), 250 per request; seconds."""
    import httpx

    t0 = time.perf_counter()
    names = list(domains)
    with httpx.Client(base_url=url, timeout=600, headers=HEADERS) as c:
        for a in range(0, n, 250):
            d = domains[names[(a // 250) % len(names)]]
            items = [{"item_id": f"ADDED-{m}", "text": f"{d.texts.iloc[m % d.n_items]} edition {m}"}
                     for m in range(a, min(n, a + 250))]
            r = c.put(f"/domains/{d.name}/items", json={"items": items})
            if r.status_code != 200:
                raise SystemExit(f"PUT items: {r.status_code} {r.text[:300]}")
    return time.perf_counter() - t0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="pre-trained run (default: train a tiny one)")
    p.add_argument("--data", type=Path, default=ONLINE_RETAIL, help="the Online Retail file")
    p.add_argument("--requests", type=int, default=3000, help="timed requests per phase")
    p.add_argument("--concurrency", type=int, default=8, help="client threads of the normal mix")
    p.add_argument("--events-share", type=float, default=0.2, help="share of requests that are POST /events")
    p.add_argument("--text-share", type=float, default=0.1, help="share of histories ending with a raw item text")
    p.add_argument("--hostile", type=int, default=16, help="long-text client threads in the hostile phase (0: skip)")
    p.add_argument("--hostile-texts", type=int, default=4, help="distinct texts per hostile request")
    p.add_argument("--hostile-chars", type=int, default=10_000, help="characters per hostile text")
    p.add_argument("--restart-items", type=int, default=10_000, help="items added before the restarts (0: skip)")
    p.add_argument("--retrieval", default="exact", choices=("exact", "flat", "hnsw"))
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for /healthz")
    p.add_argument("--work-dir", type=Path, help="where the tiny run, database and server log go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-stores", action="store_true",
                   help="instead: SQLite (1 process) vs PostgreSQL with 1 and 2 replicas, side by side "
                        "(benchmarks/serve_stores.py)")
    p.add_argument("--pg-url", help="PostgreSQL server for --compare-stores (default: a throw-away one, "
                                    "as the tests start it)")
    p.add_argument("--targets", default=",".join(TARGETS), help="target countries (comma-separated)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare_stores:
        from serve_stores import compare

        return compare(args)

    from prerec.data.readers import load_domains

    if not args.data.exists():
        raise SystemExit(f"Online Retail file not found: {args.data}")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="prerec-load-"))
    work.mkdir(parents=True, exist_ok=True)
    run = args.run
    if run is None:
        run = work / "tiny-run"
        if not (run / "model.safetensors").exists():
            train_tiny_run(run, args.data)
    specs = [f"{t}=online-retail:{args.data}#{t}" for t in TARGETS]
    domains = {d.name: d for d in load_domains(specs)}
    rng = np.random.default_rng(args.seed)
    db, log = work / "events.sqlite", work / "server.log"
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        f.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{free_port()}"
    cmd = [*PREREC, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
           "--db", str(db), "--retrieval", args.retrieval]
    for s in specs:
        cmd += ["--target", s]
    server = Server(cmd, url, log, args.start_timeout)
    try:
        starts, results, held = run_phases(server, domains, db, args, rng)
    finally:
        server.stop()

    print(f"\nprerec serve load test: {args.requests} timed requests per phase ({args.events_share:.0%} /events, "
          f"{args.text_share:.0%} of histories with a text), {args.concurrency} client threads, retrieval "
          f"{args.retrieval}, run {run}, targets {', '.join(TARGETS)} "
          f"({sum(d.n_items for d in domains.values()):,} items)")
    for name, res in results:
        report(name, res)
    print("\n| start | seconds to /healthz |\n|---|---:|")
    for name, secs in starts:
        print(f"| {name} | {secs:.1f} |")
    sent = sum(r["acked"] for _, r in results)
    print(f"\nevents acknowledged: {sent}, events the service held: {held} ({'match' if held == sent else 'MISMATCH'})")
    return 0 if all(not r["errors"] for _, r in results) and held == sent else 1


def run_phases(server: Server, domains: dict, db: Path, args: argparse.Namespace,
               rng: np.random.Generator) -> tuple[list, list, int]:
    """Start, the normal and the hostile phase, then the restarts; (starts, results, events held)."""
    import httpx

    url = server.url
    starts: list[tuple[str, float]] = [("empty database", server.start())]
    print(f"server ready in {starts[0][1]:.1f}s (pid {server.proc.pid}, {url}, retrieval {args.retrieval})",
          file=sys.stderr, flush=True)
    phases = [("normal mix", 0)]
    if args.hostile:
        phases.append((f"hostile mix: + {args.hostile} clients sending {args.hostile_texts} texts of "
                        f"{args.hostile_chars:,} characters per request", args.hostile))
    results = []
    for name, hostile in phases:
        results.append((name, drive(url, build_plan(domains, args.requests + 50, args, rng), args, hostile,
                                    TARGETS[0])))
        print(f"{name}: done", file=sys.stderr, flush=True)
    held = sum(d["n_events"] for d in httpx.get(f"{url}/domains", timeout=30).json()["domains"])
    if args.restart_items:
        added = add_items(url, domains, args.restart_items)
        print(f"added {args.restart_items:,} items in {added:.1f}s", file=sys.stderr, flush=True)
        server.stop()
        starts.append((f"{args.restart_items:,} added items, stored embeddings", server.start()))
        server.stop()
        with sqlite3.connect(db) as con:  # as if the run's text pipeline had changed
            con.execute("UPDATE items SET encoder = 'stale'")
        starts.append((f"{args.restart_items:,} added items, all re-encoded", server.start()))
    return starts, results, held


if __name__ == "__main__":
    sys.exit(main())
