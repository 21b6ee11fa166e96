"""What the service is doing: Prometheus metrics (``GET /metrics``) and a structured access log.

- :class:`Metrics` holds one ``prometheus_client`` registry per app (so several apps in one
  process, as in the tests, never share counters):

  ``prerec_http_requests_total{method, endpoint, status}`` and
  ``prerec_http_request_duration_seconds{method, endpoint, status}`` (a histogram), where
  ``endpoint`` is the route's template (``/domains/{domain}/items``), never the raw path, so a
  client cannot grow the label set (``other`` for paths no route matches);
  ``prerec_events_accepted_total{domain}`` and ``prerec_events_duplicates_total{domain}``
  (events this process acknowledged, and those among them that repeated a stored ``event_id``);
  ``prerec_items{domain}`` and ``prerec_events_stored{domain}`` (what the domain serves now,
  read when scraped); ``prerec_text_encoding_jobs`` (text-encoding jobs running or waiting) and
  ``prerec_text_encoding_capacity`` (workers + queue: more jobs are answered 503).
- :class:`AccessLog` is the outermost ASGI middleware: it times every request (401, 413 and
  400 answers of the inner middleware included), records it in the metrics and logs one JSON
  line on the ``prerec.access`` logger: method, path, status, duration in milliseconds and a
  request id. The id is the client's ``X-Request-ID`` when it sends a short printable one,
  else a new random one; it is sent back in the ``X-Request-ID`` answer header.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

access_log = logging.getLogger("prerec.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID_CHARS = 128


class _ServiceCollector(Collector):
    """Gauges read from the service when scraped: items and stored events per domain, encoder queue."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterable[GaugeMetricFamily]:
        items = GaugeMetricFamily("prerec_items", "items served (catalog + added - deleted)", labels=["domain"])
        events = GaugeMetricFamily("prerec_events_stored", "events counted in the domain's popularity",
                                   labels=["domain"])
        for name in self.service.domain_names:
            info = self.service.info(name)
            items.add_metric([name], info["n_items"])
            events.add_metric([name], info["n_events"])
        yield items
        yield events
        pool = self.service.texts
        yield GaugeMetricFamily("prerec_text_encoding_jobs", "text-encoding jobs running or waiting",
                                value=pool.in_flight)
        yield GaugeMetricFamily("prerec_text_encoding_capacity", "text-encoding jobs that may run or wait "
                                "(workers + queue; more are answered 503)", value=pool.workers + pool.queue)


class Metrics:
    """The Prometheus metrics of one app (its own registry)."""

    def __init__(self, service: Any) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "endpoint", "status"]
        self.requests = Counter("prerec_http_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram("prerec_http_request_duration_seconds", "time to answer an HTTP request",
                                 labels, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.accepted = Counter("prerec_events_accepted", "events acknowledged by this process (durable)",
                                ["domain"], registry=self.registry)
        self.duplicates = Counter("prerec_events_duplicates", "acknowledged events whose event_id was "
                                  "already stored (not counted again)", ["domain"], registry=self.registry)
        self.registry.register(_ServiceCollector(service))

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.latency.labels(method, endpoint, str(status)).observe(seconds)

    def events(self, domain: str, accepted: int, duplicates: int) -> None:
        self.accepted.labels(domain).inc(accepted)
        if duplicates:
            self.duplicates.labels(domain).inc(duplicates)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _request_id(scope: dict) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == REQUEST_ID_HEADER:
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if 0 < len(given) <= MAX_REQUEST_ID_CHARS and given.isprintable() and '"' not in given:
                return given
            break
    return uuid.uuid4().hex


class AccessLog:
    """ASGI middleware: time, count and log every HTTP request (see the module docstring).

    ``endpoint_of(scope)`` names the route a request matched (its template), or ``other``.
    """

    def __init__(self, app: Any, metrics: Metrics, endpoint_of: Callable[[dict], str]) -> None:
        self.app, self.metrics, self.endpoint_of = app, metrics, endpoint_of

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = _request_id(scope)
        status = 500  # if the app fails before it answers

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - t0
            method = scope.get("method", "")
            self.metrics.observe(method, self.endpoint_of(scope), status, seconds)
            access_log.info(json.dumps({"method": method, "path": scope.get("path", ""), "status": status,
                                        "duration_ms": round(seconds * 1000, 3), "request_id": rid},
                                       ensure_ascii=True))
