"""The HTTP service (FastAPI): a thin layer of strictly validated requests over :class:`Service`.

    POST   /recommend               {"domain", "history": [item_id | {"text": ...}], "k", "exclude_seen"}
                                    -> {"items": [{"item_id", "score", "text"}]}
    POST   /recommend/batch         {"domain", "histories": [[...], ...], "k", "exclude_seen"}
                                    -> {"results": [{"items": [...]}, ...]}
    POST   /events                  {"domain", "events": [{"user_id", "item_id", "timestamp", "event_id"?}]}
                                    -> {"accepted", "duplicates"} once durable
    PUT    /domains/{domain}/items  {"items": [{"item_id", "text"}]} -> {"added", "updated", "n_items"}
    DELETE /domains/{domain}/items/{item_id} -> {"deleted", "catalog_item", "n_items"}
    GET    /domains, /domains/{domain}       -> catalog size, added/deleted items, events
    GET    /healthz                 -> {"status": "ok"} (200 once the model is loaded and domains attached)
    GET    /metrics                 -> Prometheus text format (serving/metrics.py)
    GET    /docs, /redoc            -> API docs, every asset served from here (fastapi-offline)
    GET    /                        -> a web page to try the recommendations (serving/web/)
    GET    /domains/{domain}/search?q=, /domains/{domain}/popular -> find items; today's most popular

Errors: 400 for a Host name not allowed; 401 without an API key where one is needed, 403 with
a wrong one (serving/security.py); 404 for an unknown domain or item id; 413 for a body over
the size limit; 422 for a malformed body or one over a limit (serving/limits.py), with a
``detail`` naming the field and quoting at most a short excerpt of the input; 503 with
``Retry-After`` when the text encoder is saturated (serving/encoding.py).

Handlers that may block (recommend, events, items) are plain ``def`` functions that FastAPI runs
in its thread pool; ``/healthz`` and ``/domains`` are ``async`` and answer from the event loop,
so they never wait for a thread. Requests whose histories hold only item ids never wait for
the text encoder.

No ``from __future__ import annotations`` here: the handlers' body types are built per app.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match

from prerec import __version__
from prerec.errors import PrerecError
from prerec.serving.api import RequestError, Service, Text, UnknownDomainError, UnknownItemError
from prerec.serving.encoding import EncoderBusy
from prerec.serving.limits import MAX_TIMESTAMP, BodySizeLimit, Limits, safe_message, validation_details
from prerec.serving.metrics import AccessLog, Metrics
from prerec.serving.schemas import (
    BatchRecommendResponse,
    DeleteResponse,
    DomainInfo,
    DomainsResponse,
    EventsResponse,
    ItemsResponse,
    PopularResponse,
    RecommendResponse,
    RequestModels,
    ScoredItem,
    SearchResponse,
    request_models,
)
from prerec.serving.security import LOOPBACK_HOSTS, OPEN_PREFIXES, ApiKeyMiddleware, ApiKeys
from prerec.serving.store import StoreUnavailable

log = logging.getLogger(__name__)
DOCS_STATIC = OPEN_PREFIXES[0].rstrip("/")  # Swagger UI and ReDoc files (public, never need a key)
WEB_STATIC = OPEN_PREFIXES[1].rstrip("/")  # the page's script and style sheet (public)
WEB_DIR = Path(__file__).parent / "web"


def create_app(service: Service, *, limits: Limits | None = None, keys: ApiKeys | None = None,
               protect_reads: bool = False, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> FastAPI:
    """The FastAPI application serving ``service`` (already loaded, domains attached).

    ``keys``: API keys required on the write endpoints (and on reads with ``protect_reads``);
    ``allowed_hosts``: Host header names served (``"*"``: any).
    """
    limits = limits or Limits()
    # /docs and /redoc with Swagger UI and ReDoc served from the fastapi-offline package: no CDN,
    # no Google Fonts, no online validator (nothing a browser fetches leaves the service)
    app = FastAPIOffline(title="PreRec", version=__version__, static_url=DOCS_STATIC,
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Zero-shot cross-domain recommendation (PreRec) with live popularity.")
    app.state.service = service
    app.state.limits = limits
    app.add_middleware(BodySizeLimit, max_body_bytes=limits.max_body_bytes)
    if keys is not None:
        app.add_middleware(ApiKeyMiddleware, keys=keys, protect_reads=protect_reads)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)
    metrics = Metrics(service)
    app.state.metrics = metrics
    app.add_middleware(AccessLog, metrics=metrics, endpoint_of=lambda scope: _endpoint(app, scope))
    _error_handlers(app, limits)
    _page_routes(app)
    _read_routes(app, service, limits)
    _write_routes(app, service, request_models(limits), limits)
    return app


def _endpoint(app: FastAPI, scope: dict) -> str:
    """The template of the route a request matched (``other`` if none), a bounded metrics label."""
    route = scope.get("route")
    if route is None:  # answered by a middleware before routing: match it here
        route = next((r for r in app.router.routes if r.matches(scope)[0] is Match.FULL), None)
    return getattr(route, "path", None) or "other"


def _page_routes(app: FastAPI) -> None:
    """The web page at ``/`` (serving/web/: plain HTML, CSS and JavaScript shipped in the package)."""
    app.mount(WEB_STATIC, StaticFiles(directory=str(WEB_DIR)), name="web")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")


def _error_handlers(app: FastAPI, limits: Limits) -> None:
    def answer(status: int, detail: object, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    @app.exception_handler(UnknownDomainError)
    @app.exception_handler(UnknownItemError)
    def not_found(request: Request, exc: Exception) -> JSONResponse:
        return answer(404, safe_message(str(exc)))

    @app.exception_handler(RequestError)
    @app.exception_handler(PrerecError)
    def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        return answer(422, safe_message(str(exc)))

    @app.exception_handler(StoreUnavailable)
    def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("%s", exc)
        return answer(503, "the event store cannot be reached now; retry later", {"Retry-After": "1"})

    @app.exception_handler(EncoderBusy)
    def busy(request: Request, exc: EncoderBusy) -> JSONResponse:
        return answer(503, safe_message(str(exc)), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(422, validation_details(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):  # e.g. a 5,000-digit number
            return answer(422, [{"loc": ["body"], "msg": f"invalid JSON: {safe_message(str(exc.__cause__), 120)}",
                                 "type": "json_invalid"}])
        return answer(exc.status_code, safe_message(str(exc.detail)), getattr(exc, "headers", None))


def _read_routes(app: FastAPI, service: Service, limits: Limits) -> None:
    DomainName = Annotated[str, PathParam(min_length=1, max_length=limits.max_id_chars)]

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "domains": service.domain_names}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        body, kind = app.state.metrics.exposition()
        return Response(body, media_type=kind)

    @app.get("/domains", response_model=DomainsResponse)
    async def domains() -> DomainsResponse:
        return DomainsResponse(domains=[DomainInfo(**service.info(d)) for d in service.domain_names])

    @app.get("/domains/{domain}", response_model=DomainInfo)
    async def domain_info(domain: DomainName) -> DomainInfo:
        return DomainInfo(**service.info(domain))


def _entries(history: list) -> list:
    return [e if isinstance(e, str) else Text(e.text) for e in history]


def _check_size(histories: list[list], k: int, limits: Limits) -> None:
    """The limits that span fields: answer size (histories x k) and distinct raw texts."""
    if len(histories) * k > limits.max_results:
        raise RequestError(f"{len(histories)} histories x k = {k} is {len(histories) * k:,} results; "
                           f"at most {limits.max_results:,} per request (lower k or split the batch)")
    texts = {e.text for h in histories for e in h if not isinstance(e, str)}
    if len(texts) > limits.max_texts:
        raise RequestError(f"{len(texts)} distinct item texts in one request; at most {limits.max_texts} "
                           "(each is run through the text encoder)")


def _write_routes(app: FastAPI, service: Service, m: RequestModels, limits: Limits) -> None:
    DomainName = Annotated[str, PathParam(min_length=1, max_length=limits.max_id_chars)]
    ItemId = Annotated[str, PathParam(min_length=1, max_length=limits.max_id_chars)]

    def rows(recs, r: int, explain: bool = False) -> RecommendResponse:
        items = [ScoredItem(item_id=i, score=s, text=t) for i, s, t in recs.row(r)]
        if explain:
            for item, g in zip(items, recs.popularity[r]):
                item.popularity, item.uv = float(g), float(item.score - g)
        return RecommendResponse(items=items)

    @app.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True)
    def recommend(req: m.Recommend) -> RecommendResponse:
        _check_size([req.history], req.k, limits)
        recs = service.recommend(req.domain, [_entries(req.history)], req.k, req.exclude_seen,
                                 timestamp=req.timestamp)
        return rows(recs, 0, req.explain)

    @app.post("/recommend/batch", response_model=BatchRecommendResponse, response_model_exclude_none=True)
    def recommend_batch(req: m.BatchRecommend) -> BatchRecommendResponse:
        _check_size(req.histories, req.k, limits)
        recs = service.recommend(req.domain, [_entries(h) for h in req.histories], req.k, req.exclude_seen,
                                 timestamp=req.timestamp)
        return BatchRecommendResponse(results=[rows(recs, r) for r in range(len(req.histories))])

    @app.post("/events", response_model=EventsResponse)
    def events(req: m.Events) -> EventsResponse:
        done = service.record(req.domain, [e.model_dump() for e in req.events])
        app.state.metrics.events(req.domain, done.accepted, done.duplicates)
        return EventsResponse(accepted=done.accepted, duplicates=done.duplicates)

    @app.put("/domains/{domain}/items", response_model=ItemsResponse)
    def put_items(domain: DomainName, req: m.Items) -> ItemsResponse:
        return ItemsResponse(**service.add_items(domain, [(i.item_id, i.text) for i in req.items]))

    Query = Annotated[str, QueryParam(min_length=1, max_length=limits.max_text_chars)]
    K = Annotated[int, QueryParam(ge=1, le=limits.max_k)]
    Timestamp = Annotated[int | None, QueryParam(ge=0, le=MAX_TIMESTAMP)]

    @app.get("/domains/{domain}/search", response_model=SearchResponse)
    def search(domain: DomainName, q: Query, k: K = 20) -> SearchResponse:
        return SearchResponse(**service.search(domain, q, k))

    @app.get("/domains/{domain}/popular", response_model=PopularResponse)
    def popular(domain: DomainName, k: K = 10, timestamp: Timestamp = None) -> PopularResponse:
        return PopularResponse(items=service.popular(domain, k, timestamp))

    @app.delete("/domains/{domain}/items/{item_id:path}", response_model=DeleteResponse)  # ids may hold "/"
    def delete_item(domain: DomainName, item_id: ItemId) -> DeleteResponse:
        return DeleteResponse(**service.delete_item(domain, item_id))
