"""The stores side by side (``serve_load.py --compare-stores``): SQLite with one process,
PostgreSQL with one replica and with two.

Each configuration gets a fresh database and its own ``prerec serve`` processes (one per
replica, each on its own port); the same seeded normal mix (``--requests`` timed requests,
``--events-share`` of them ``POST /events`` with idempotency keys) is sent by
``--concurrency`` client threads, which spread requests over the replicas in turn. Reported:
throughput, p50/p99 per request kind, errors (must be 0), and events acknowledged against
events stored (counted in the database, and by every replica after its follower caught up).
PostgreSQL comes from ``--pg-url`` or is started like the tests start it
(tests/serving/pg_server.py: a throw-away server on a free loopback port), with ``fsync`` on:
a commit is on disk when acknowledged, as with SQLite's ``synchronous=FULL``.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

from serve_load import PREREC, ROOT, Server, build_plan, drive, free_port, report, train_tiny_run


def _stored(db: str) -> int:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def _held(urls: list[str], want: int) -> list[int]:
    """Events every replica counts, once each has caught up (or after 10 s)."""
    import httpx

    from serve_load import HEADERS

    deadline = time.monotonic() + 10
    while True:
        held = [sum(d["n_events"] for d in httpx.get(f"{u}/domains", headers=HEADERS, timeout=30).json()["domains"])
                for u in urls]
        if all(h == want for h in held) or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def _config(name: str, db: str, replicas: int, run: Path, specs: list[str], domains: dict, args, work: Path) -> dict:
    servers = []
    for r in range(replicas):
        port = free_port()
        cmd = [*PREREC, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port), "--db", db,
               "--retrieval", args.retrieval, "--no-access-log"]
        for s in specs:
            cmd += ["--target", s]
        servers.append(Server(cmd, f"http://127.0.0.1:{port}", work / f"{name}-{r}.log", args.start_timeout))
    try:
        for s in servers:
            print(f"{name}: replica ready in {s.start():.1f}s", file=sys.stderr, flush=True)
        plan = build_plan(domains, args.requests + 50, args, np.random.default_rng(args.seed))
        res = drive([s.url for s in servers], plan, args, 0, next(iter(domains)))
        res["stored"] = _stored(db)
        res["held"] = _held([s.url for s in servers], res["stored"])
        return res
    finally:
        for s in servers:
            s.stop()


def compare(args) -> int:
    import tempfile

    from prerec.data.readers import load_domains

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="prerec-stores-"))
    work.mkdir(parents=True, exist_ok=True)
    run = args.run
    if run is None:
        run = work / "tiny-run"
        if not (run / "model.safetensors").exists():
            train_tiny_run(run, args.data)
    targets = [t for t in args.targets.split(",") if t]
    specs = [f"{t}=online-retail:{args.data}#{t}" for t in targets]
    domains = {d.name: d for d in load_domains(specs)}
    pg = None
    if args.pg_url is None:
        sys.path.insert(0, str(ROOT / "tests" / "serving"))
        import pg_server

        pg = pg_server.start(fsync=True)  # durable commits, like SQLite's synchronous=FULL
    try:
        new_pg = (lambda: pg.create_database("load")) if pg is not None else (lambda: args.pg_url)
        configs = [("SQLite, 1 process", str(work / f"events-{time.time_ns()}.sqlite"), 1),
                   ("PostgreSQL, 1 replica", new_pg(), 1), ("PostgreSQL, 2 replicas", new_pg(), 2)]
        results = [(name, _config(name.split(",")[0].lower() + str(n), db, n, run, specs, domains, args, work))
                   for name, db, n in configs]
    finally:
        if pg is not None:
            pg.stop()
    print(f"\nstores side by side: {args.requests} timed requests each ({args.events_share:.0%} /events), "
          f"{args.concurrency} client threads spread over the replicas, retrieval {args.retrieval}, run {run}, "
          f"targets {', '.join(targets)} ({sum(d.n_items for d in domains.values()):,} items)\n")
    print("| configuration | requests/s | p50 ms | p99 ms | errors | events acknowledged | stored | each replica holds |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    ok = True
    for name, res in results:
        ms = np.array([x for xs in res["lat"].values() for x in xs]) * 1000
        print(f"| {name} | {res['n'] / res['wall']:.1f} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | "
              f"{len(res['errors'])} | {res['acked']} | {res['stored']} | {', '.join(map(str, res['held']))} |")
        ok &= not res["errors"] and res["acked"] == res["stored"] and all(h == res["stored"] for h in res["held"])
    for name, res in results:
        report(name, res)
    print(f"\nacknowledged = stored = held by every replica: {'yes' if ok else 'NO'}")
    return 0 if ok else 1
