"""The HTTP service (FastAPI): a thin layer of validated requests over :class:`Service`.

    POST /recommend               {"domain", "history": [item_id | {"text": ...}], "k", "exclude_seen"}
                                  -> {"items": [{"item_id", "score", "text"}]}
    POST /recommend/batch         {"domain", "histories": [[...], ...], "k", "exclude_seen"}
                                  -> {"results": [{"items": [...]}, ...]}
    POST /events                  {"domain", "events": [{"user_id", "item_id", "timestamp", "event_id"?}]}
                                  -> {"accepted", "duplicates"} once durable
    PUT  /domains/{domain}/items  {"items": [{"item_id", "text"}]} -> {"added", "updated", "n_items"}
    GET  /domains                 -> {"domains": [{"name", "n_items", ...}]}
    GET  /healthz                 -> {"status": "ok"} (200 once the model is loaded and domains attached)

Errors: 404 for an unknown domain or item id, 422 for a malformed body or a request that
cannot be served as asked (empty or oversized history, k out of range), each with a
``detail`` that says what was wrong. Handlers are plain ``def`` functions: FastAPI runs them
in its thread pool, so requests are served concurrently (the Service is thread-safe).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from prerec import __version__
from prerec.errors import PrerecError
from prerec.serving.api import (
    MAX_BATCH,
    MAX_HISTORY_ITEMS,
    MAX_K,
    RequestError,
    Service,
    Text,
    UnknownDomainError,
    UnknownItemError,
)

MAX_EVENTS = 10_000  # per request
MAX_ITEMS = 10_000  # per request


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # item id 22423 == "22423"


class TextEntry(_Body):
    """An item the catalog does not have, given by its text."""

    text: Annotated[str, Field(min_length=1, max_length=10_000)]


HistoryList = Annotated[
    list[Annotated[str, Field(min_length=1)] | TextEntry],
    Field(min_length=1, max_length=MAX_HISTORY_ITEMS,
          description="catalog item ids and/or {\"text\": ...} entries, oldest first"),
]


class RecommendRequest(_Body):
    domain: str
    history: HistoryList
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 10
    exclude_seen: bool = False
    timestamp: Annotated[int | None, Field(ge=0, description="unix seconds of 'now' (default: the clock)")] = None


class BatchRecommendRequest(_Body):
    domain: str
    histories: Annotated[list[HistoryList], Field(min_length=1, max_length=MAX_BATCH)]
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 10
    exclude_seen: bool = False
    timestamp: Annotated[int | None, Field(ge=0)] = None


class ScoredItem(BaseModel):
    item_id: str
    score: float
    text: str


class RecommendResponse(BaseModel):
    items: list[ScoredItem]


class BatchRecommendResponse(BaseModel):
    results: list[RecommendResponse]


class EventIn(_Body):
    user_id: Annotated[str, Field(min_length=1)]
    item_id: Annotated[str, Field(min_length=1)]
    timestamp: Annotated[int, Field(ge=0, description="unix seconds")]
    event_id: Annotated[str | None, Field(min_length=1, description="idempotency key (optional)")] = None


class EventsRequest(_Body):
    domain: str
    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_EVENTS)]


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int


class ItemIn(_Body):
    item_id: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1, max_length=10_000)]


class ItemsRequest(_Body):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)]


class ItemsResponse(BaseModel):
    added: int
    updated: int
    n_items: int


class DomainInfo(BaseModel):
    name: str
    n_items: int
    n_catalog_items: int
    n_added_items: int
    n_events: int
    timed: bool
    retrieval: str


class DomainsResponse(BaseModel):
    domains: list[DomainInfo]


def _entries(history: list) -> list:
    return [Text(e.text) if isinstance(e, TextEntry) else e for e in history]


def create_app(service: Service) -> FastAPI:
    """The FastAPI application serving ``service`` (already loaded, domains attached)."""
    app = FastAPI(title="PreRec", version=__version__,
                  description="Zero-shot cross-domain recommendation (PreRec) with live popularity.")
    app.state.service = service

    @app.exception_handler(UnknownDomainError)
    @app.exception_handler(UnknownItemError)
    def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(RequestError)
    @app.exception_handler(PrerecError)
    def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "domains": service.domain_names}

    @app.get("/domains", response_model=DomainsResponse)
    def domains() -> DomainsResponse:
        return DomainsResponse(domains=[DomainInfo(**service.info(d)) for d in service.domain_names])

    @app.get("/domains/{domain}", response_model=DomainInfo)
    def domain_info(domain: str) -> DomainInfo:
        return DomainInfo(**service.info(domain))

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(req: RecommendRequest) -> RecommendResponse:
        recs = service.recommend(req.domain, [_entries(req.history)], req.k, req.exclude_seen,
                                 timestamp=req.timestamp)
        return RecommendResponse(items=[ScoredItem(item_id=i, score=s, text=t) for i, s, t in recs.row(0)])

    @app.post("/recommend/batch", response_model=BatchRecommendResponse)
    def recommend_batch(req: BatchRecommendRequest) -> BatchRecommendResponse:
        recs = service.recommend(req.domain, [_entries(h) for h in req.histories], req.k, req.exclude_seen,
                                 timestamp=req.timestamp)
        return BatchRecommendResponse(results=[
            RecommendResponse(items=[ScoredItem(item_id=i, score=s, text=t) for i, s, t in recs.row(r)])
            for r in range(len(req.histories))])

    @app.post("/events", response_model=EventsResponse)
    def events(req: EventsRequest) -> EventsResponse:
        done = service.record(req.domain, [e.model_dump() for e in req.events])
        return EventsResponse(accepted=done.accepted, duplicates=done.duplicates)

    @app.put("/domains/{domain}/items", response_model=ItemsResponse)
    def put_items(domain: str, req: ItemsRequest) -> ItemsResponse:
        return ItemsResponse(**service.add_items(domain, [(i.item_id, i.text) for i in req.items]))

    return app
