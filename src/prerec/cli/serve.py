"""``prerec serve``: the HTTP service (FastAPI + uvicorn) over a pre-trained run.

The run is loaded once and every ``--target`` attached (its item texts encoded, no training),
the event store replayed, and only then the port opened: ``GET /healthz`` answers 200 as soon
as anything answers at all. Bad input (run, target, database) is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import socket
import time
from pathlib import Path

from prerec.errors import PrerecError

log = logging.getLogger(__name__)
DEFAULT_DB = "prerec-events.sqlite"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP service: /recommend, /events, /domains, /healthz")
    p.add_argument("--run", type=Path, required=True, help="pre-trained run directory")
    p.add_argument("--target", action="append", required=True, metavar="NAME=FORMAT:PATH",
                   help="target domain to serve (repeat for several)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--db", type=Path, default=Path(DEFAULT_DB),
                   help=f"SQLite file of recorded events and added items (default ./{DEFAULT_DB})")
    p.add_argument("--retrieval", choices=("exact", "flat", "hnsw"), default="exact",
                   help="top-k search: exact matrix product, FAISS flat or FAISS HNSW (default exact)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's access/error log level (default warning)")
    p.set_defaults(handler=run_serve)


def build_service(run: Path, targets: list[str], db: Path | None, retrieval: str):
    """Load the run, open the store and attach every target (what ``serve`` does before listening)."""
    from prerec.data.readers import load_domains
    from prerec.serving.api import Service

    t0 = time.perf_counter()
    domains = load_domains(targets)
    service = Service.load(run, retrieval=retrieval, store=db)
    for d in domains:
        service.attach(d)
    log.info("ready in %.1fs: %s", time.perf_counter() - t0, ", ".join(service.domain_names))
    return service


def check_listen(host: str, port: int) -> None:
    """A clear error now if ``host:port`` cannot be listened on (in use, unknown address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PrerecError(f"--host {host}: cannot resolve ({exc})") from exc
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise PrerecError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from exc


def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise PrerecError(f"--port {args.port}: expected 1..65535")
    check_listen(args.host, args.port)  # fail before the (slow) model load
    import uvicorn

    from prerec.serving.app import create_app
    from prerec.serving.threads import one_thread_per_request

    service = build_service(args.run, args.target, args.db, args.retrieval)
    one_thread_per_request()  # concurrency comes from the request threads
    log.info("serving on http://%s:%d (events in %s)", args.host, args.port, args.db)
    try:
        uvicorn.run(create_app(service), host=args.host, port=args.port, log_level=args.log_level,
                    access_log=args.log_level in ("info", "debug"))
    finally:
        service.close()
    return 0
