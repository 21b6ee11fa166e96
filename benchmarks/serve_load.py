"""Load test of ``prerec serve``: throughput, p50/p99 latency and errors on the B1 target catalogs.

    .venv/bin/python benchmarks/serve_load.py --run RUN_DIR            # an existing run
    .venv/bin/python benchmarks/serve_load.py                          # trains a tiny run first

Starts ``prerec serve`` on 127.0.0.1 (a child process) with the six B1 targets (Online Retail:
Germany, France, Spain, Belgium, Switzerland, Portugal), then drives it from this process with
a fixed number of requests from ``--concurrency`` client threads (httpx): a mix of
``POST /recommend`` (histories are real users' item sequences of the target, some with the raw
text of an item instead of its id) and ``POST /events`` (1-5 events with idempotency keys,
timestamps in the last ten days so they enter the popularity window). After the run the
service's event count is checked against what was sent (it must match exactly) and the number
of failed requests is printed (it must be 0).

Without ``--run``, a tiny run is trained first: ``prerec pretrain`` on every other country,
``--preset cpu --set epochs=1 --encoder hash:64`` (capped at 20k instances).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, timeout: float, log: Path) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="pre-trained run (default: train a tiny one)")
    p.add_argument("--data", type=Path, default=ONLINE_RETAIL, help="the Online Retail file")
    p.add_argument("--requests", type=int, default=3000, help="requests in the timed phase")
    p.add_argument("--concurrency", type=int, default=8, help="client threads")
    p.add_argument("--events-share", type=float, default=0.2, help="share of requests that are POST /events")
    p.add_argument("--text-share", type=float, default=0.1, help="share of histories ending with a raw item text")
    p.add_argument("--retrieval", default="exact", choices=("exact", "flat", "hnsw"))
    p.add_argument("--start-timeout", type=float, default=900.0, help="seconds to wait for /healthz")
    p.add_argument("--work-dir", type=Path, help="where the tiny run, database and server log go")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import httpx

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
    db.unlink(missing_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [*PREREC, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port), "--db", str(db),
           "--retrieval", args.retrieval]
    for s in specs:
        cmd += ["--target", s]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(proc, url, args.start_timeout, log)
        print(f"server ready in {ready:.1f}s (pid {proc.pid}, port {port}, retrieval {args.retrieval})",
              file=sys.stderr, flush=True)

        # the request plan, fixed in advance (seeded)
        names = list(domains)
        now = int(time.time())
        plan: list[tuple[str, dict]] = []
        n_events = 0
        for _ in range(args.requests + 50):
            d = domains[names[int(rng.integers(len(names)))]]
            seqs = d.sequences
            if rng.random() < args.events_share:
                m = int(rng.integers(1, 6))
                items = d.item_ids[rng.integers(0, d.n_items, m)]
                evs = [{"user_id": f"load-{int(rng.integers(1000))}", "item_id": str(i),
                        "timestamp": now - int(rng.integers(0, 10 * 86400)), "event_id": uuid.uuid4().hex}
                       for i in items]
                plan.append(("/events", {"domain": d.name, "events": evs}))
            else:
                u = int(rng.integers(len(seqs)))
                seq = seqs.sequence(u)[0]
                end = int(rng.integers(1, len(seq) + 1))
                hist: list = [str(i) for i in d.item_ids[seq[max(0, end - 20): end]]]
                if rng.random() < args.text_share:
                    hist.append({"text": str(d.texts.iloc[int(rng.integers(d.n_items))]).lower() + " set"})
                plan.append(("/recommend", {"domain": d.name, "history": hist, "k": 10,
                                            "exclude_seen": bool(rng.random() < 0.5)}))
        warmup, timed = plan[:50], plan[50:]

        lock = threading.Lock()
        lat: dict[str, list[float]] = {"/recommend": [], "/events": []}
        errors: list[str] = []
        events_sent = [0]
        local = threading.local()

        def call(job: tuple[str, dict], record: bool = True) -> None:
            path, body = job
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=url, timeout=60)
            t = time.perf_counter()
            try:
                r = local.client.post(path, json=body)
                ok = r.status_code == 200
                msg = f"{path} {r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                ok, msg = False, f"{path} {type(exc).__name__}: {exc}"
            dt = time.perf_counter() - t
            with lock:
                if path == "/events" and ok:
                    events_sent[0] += len(body["events"])
                if not ok:
                    errors.append(msg)
                elif record:
                    lat[path].append(dt)

        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda j: call(j, record=False), warmup))
            t0 = time.perf_counter()
            list(pool.map(call, timed))
            wall = time.perf_counter() - t0
        n_events = sum(d["n_events"] for d in httpx.get(f"{url}/domains", timeout=10).json()["domains"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    every = np.array(lat["/recommend"] + lat["/events"]) * 1000
    print(f"\nprerec serve load test: {len(timed)} requests ({args.events_share:.0%} /events), "
          f"{args.concurrency} client threads, retrieval {args.retrieval}, run {run}, "
          f"targets {', '.join(TARGETS)} ({sum(d.n_items for d in domains.values()):,} items)\n")
    print("| endpoint | requests | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for path, xs in (*lat.items(), ("all", list(every / 1000))):
        ms = np.array(xs) * 1000
        if len(ms):
            print(f"| {path} | {len(ms)} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | "
                  f"{ms.mean():.1f} |")
    print(f"\nthroughput: {len(timed) / wall:.1f} requests/s over {wall:.1f}s; errors: {len(errors)}")
    print(f"events acknowledged: {events_sent[0]}, events the service holds: {n_events} "
          f"({'match' if n_events == events_sent[0] else 'MISMATCH'})")
    for e in errors[:5]:
        print("  error:", e)
    return 0 if not errors and n_events == events_sent[0] else 1


if __name__ == "__main__":
    sys.exit(main())
