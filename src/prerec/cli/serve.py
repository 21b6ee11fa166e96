"""``prerec serve``: the HTTP service (FastAPI + uvicorn) over a pre-trained run.

The run is loaded once and every ``--target`` attached (its item texts encoded, no training),
the event store replayed, and only then the port opened: ``GET /healthz`` answers 200 as soon
as anything answers at all. Bad input (run, target, database, keys, limits) is one line and
exit code 2. Limits, API keys, the Host allow-list and the bind check: docs/serving.md.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from dataclasses import fields
from pathlib import Path

from prerec.errors import PrerecError
from prerec.intervention import INFERENCE_MODES
from prerec.repeats import REPEAT_CHOICES

log = logging.getLogger(__name__)
DEFAULT_DB = "prerec-events.sqlite"
LIMIT_HELP = {
    "max_body_bytes": "request body size in bytes (413 above)",
    "max_id_chars": "characters of a domain, item, user or event id",
    "max_text_chars": "characters of an item text (it is also cut to one encoder window)",
    "max_history": "entries of one history (only the last 64 count)",
    "max_batch": "histories of one /recommend/batch",
    "max_k": "k of one request",
    "max_results": "histories x k of one request",
    "max_texts": "distinct raw item texts of one recommend request",
    "max_events": "events of one POST /events",
    "max_items": "items of one PUT /domains/{domain}/items",
}


def register(sub: argparse._SubParsersAction) -> None:
    from prerec.serving.limits import Limits
    from prerec.serving.security import KEYS_ENV, LOOPBACK_HOSTS

    p = sub.add_parser("serve", help="HTTP service: /recommend, /events, /domains, /healthz")
    p.add_argument("--run", type=Path, required=True, help="pre-trained (or fine-tuned) run directory")
    p.add_argument("--target", action="append", required=True, metavar="NAME=FORMAT:PATH",
                   help="target domain to serve (repeat for several)")
    p.add_argument("--mode", choices=INFERENCE_MODES, default="auto",
                   help="PreRec inference mode (default auto: in-domain for a domain the run has learned, "
                        "e.g. with prerec finetune; zero-shot for a new one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--db", default=DEFAULT_DB,
                   help="where recorded events and added items live: an SQLite file, or a postgresql://USER@HOST/DB "
                        "URL shared by replicas (password from PGPASSWORD or ~/.pgpass, not the command line; "
                        f"default ./{DEFAULT_DB})")
    p.add_argument("--sync-interval", type=float, default=1.0, metavar="S",
                   help="pull other replicas' writes at least every S seconds (PostgreSQL also wakes on NOTIFY; "
                        "default 1)")
    p.add_argument("--db-pool", type=int, default=8, metavar="N",
                   help="PostgreSQL connections of this process at most (default 8)")
    p.add_argument("--retrieval", choices=("exact", "flat", "hnsw"), default="exact",
                   help="top-k search: exact matrix product, FAISS flat or FAISS HNSW (default exact)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's access/error log level (default warning)")
    p.add_argument("--no-access-log", action="store_true",
                   help="no JSON access-log line per request on stderr (method, path, status, duration, request id)")
    sec = p.add_argument_group("access control (docs/serving.md)")
    sec.add_argument("--api-keys-file", type=Path, metavar="PATH",
                     help=f"file of API keys, one per line (else the {KEYS_ENV} environment variable, if set); "
                          "required on /events and PUT/DELETE items")
    sec.add_argument("--protect-reads", action="store_true", help="require an API key on reads too (not /healthz)")
    sec.add_argument("--allowed-host", action="append", metavar="NAME",
                     help=f"Host header name to serve (repeat; '*' for any; default {', '.join(LOOPBACK_HOSTS)})")
    sec.add_argument("--insecure-bind", action="store_true",
                     help="listen on a non-loopback --host even without API keys")
    lim = p.add_argument_group("limits (413/422 above them)")
    for f in fields(Limits):
        lim.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=f.default, metavar="N",
                         help=f"{LIMIT_HELP[f.name]} (default {f.default:,})")
    enc = p.add_argument_group("text encoding (503 + Retry-After when saturated)")
    enc.add_argument("--encode-workers", type=int, default=1, help="encoder threads (default 1)")
    enc.add_argument("--encode-queue", type=int, default=8, help="encoding jobs that may wait (default 8)")
    enc.add_argument("--encode-timeout", type=float, default=30.0, help="seconds a request waits (default 30)")
    p.add_argument("--repeat-mixture", choices=REPEAT_CHOICES, default="run",
                   help="rank by the repeat mixture (docs/method.md): as the run was trained (default), on or off")
    p.set_defaults(handler=run_serve)


def build_service(run: Path, targets: list[str], db: object, retrieval: str, inference: str = "auto",
                  **options: object):
    """Load the run, open the store and attach every target (what ``serve`` does before listening)."""
    from prerec.data.readers import load_domains
    from prerec.serving.api import Service

    t0 = time.perf_counter()
    domains = load_domains(targets)
    service = Service.load(run, inference, retrieval=retrieval, store=db, **options)  # the store is opened first
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


def access_options(args: argparse.Namespace) -> tuple[object, list[str]]:
    """API keys (file, else environment) and allowed Host names; refuses an unsafe bind."""
    from prerec.serving.security import LOOPBACK_HOSTS, ApiKeys, check_bind

    keys = ApiKeys.from_file(args.api_keys_file) if args.api_keys_file else ApiKeys.from_env()
    if args.protect_reads and keys is None:
        raise PrerecError("--protect-reads: no API keys given (--api-keys-file or PREREC_API_KEYS)")
    hosts = list(args.allowed_host or LOOPBACK_HOSTS)
    for h in hosts:
        if "*" in h[1:] or (h.startswith("*") and h != "*" and not h.startswith("*.")):
            raise PrerecError(f"--allowed-host {h}: a wildcard must be '*' or like '*.example.com'")
    check_bind(args.host, keys, args.insecure_bind, hosts)
    return keys, hosts


def open_db(spec: str, pool: int):
    """The store of ``--db``: PostgreSQL for a ``postgresql://`` URL, else an SQLite file."""
    from prerec.serving.stores import is_postgres_url, open_store

    return open_store(spec, pool_size=pool) if is_postgres_url(spec) else open_store(Path(spec))


def access_log_to_stderr(enabled: bool) -> None:
    """One JSON line per request on stderr (logger ``prerec.access``), whatever ``-q`` says."""
    logger = logging.getLogger("prerec.access")
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)
    if enabled and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def run_serve(args: argparse.Namespace) -> int:
    from prerec.serving.limits import Limits

    if not 0 < args.port < 65536:
        raise PrerecError(f"--port {args.port}: expected 1..65535")
    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    if not args.sync_interval > 0 or args.db_pool < 1:
        raise PrerecError("--sync-interval > 0 and --db-pool >= 1 expected")
    if args.encode_workers < 1 or args.encode_queue < 0 or not args.encode_timeout > 0:
        raise PrerecError("--encode-workers >= 1, --encode-queue >= 0 and --encode-timeout > 0 expected")
    keys, hosts = access_options(args)
    check_listen(args.host, args.port)  # fail before the (slow) model load
    import uvicorn

    from prerec.serving.app import create_app
    from prerec.serving.threads import one_thread_per_request

    store = open_db(args.db, args.db_pool)
    service = build_service(args.run, args.target, store, args.retrieval, args.mode, max_history_items=limits.max_history,
                            max_k=limits.max_k, max_text_chars=limits.max_text_chars,
                            encode_workers=args.encode_workers, encode_queue=args.encode_queue,
                            encode_timeout=args.encode_timeout, sync_interval=args.sync_interval,
                            repeat_mixture=args.repeat_mixture)
    one_thread_per_request()  # concurrency comes from the request threads
    access_log_to_stderr(not args.no_access_log)
    log.info("serving on http://%s:%d (events in %s; API keys: %s; hosts: %s)", args.host, args.port,
             store.describe(),
             f"{len(keys)}" if keys is not None else "none", ", ".join(hosts))
    app = create_app(service, limits=limits, keys=keys, protect_reads=args.protect_reads, allowed_hosts=hosts)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    access_log=args.log_level in ("info", "debug"), server_header=False)
    finally:
        service.close()
    return 0
