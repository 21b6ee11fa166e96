"""The HTTP service's request and response bodies (pydantic, strict).

Requests are validated in pydantic's strict mode: no coercion of booleans or strings to
numbers (``"k": true`` and ``"k": "5"`` are 422), no floats where integers are expected (so
``NaN`` and ``Infinity`` are 422 too), no lone surrogates in strings, unknown fields refused.
The one convenience kept: an id may be given as a JSON integer (item ``22423`` is ``"22423"``).
The bounds come from :class:`~prerec.serving.limits.Limits`, so the models are built per app
(:func:`request_models`) and the OpenAPI schema shows the limits in force.

No ``from __future__ import annotations`` here: the models are built inside a function and
their annotations must be real objects.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from prerec.serving.limits import MAX_TIMESTAMP, Limits


def _id_value(value: Any) -> Any:
    """A JSON integer id becomes its decimal string; booleans are refused (``true`` is no id)."""
    if isinstance(value, bool):
        raise ValueError("expected a string id, got a boolean")
    return str(value) if isinstance(value, int) else value


def _text_value(value: str) -> str:
    """Not blank, and encodable as UTF-8 (no lone surrogates) and storable (no NUL)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"holds a lone surrogate at character {exc.start}") from None
    if "\x00" in value:
        raise ValueError(f"holds a NUL character at character {value.index(chr(0))}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _entry_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "text"
    if isinstance(value, str | int) and not isinstance(value, bool):
        return "id"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class RequestModels:
    """The request body classes of one app (built for its limits)."""

    TextEntry: type[BaseModel]
    Recommend: type[BaseModel]
    BatchRecommend: type[BaseModel]
    Events: type[BaseModel]
    Items: type[BaseModel]


def request_models(limits: Limits) -> RequestModels:
    """Strict request models bounded by ``limits``."""
    Id = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_id_chars),
                   BeforeValidator(_id_value), AfterValidator(_text_value)]
    ItemText = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_text_chars),
                         AfterValidator(_text_value)]
    Timestamp = Annotated[int, Field(ge=0, le=MAX_TIMESTAMP, description="unix seconds")]
    K = Annotated[int, Field(ge=1, le=limits.max_k)]

    class TextEntry(_Strict):
        """An item the catalog does not have, given by its text."""

        text: ItemText

    Entry = Annotated[
        Annotated[Id, Tag("id")] | Annotated[TextEntry, Tag("text")],
        Discriminator(_entry_kind, custom_error_type="history_entry",
                      custom_error_message='expected an item id (string) or {"text": ...}'),
    ]
    History = Annotated[list[Entry], Field(min_length=1, max_length=limits.max_history,
                                           description='catalog item ids and/or {"text": ...}, oldest first')]

    class Recommend(_Strict):
        domain: Id
        history: History
        k: K = 10
        exclude_seen: bool = False
        explain: Annotated[bool, Field(description="split each score into U.V (uv) and g(F) (popularity)")] = False
        timestamp: Annotated[Timestamp | None, Field(description="'now' (default: the server's clock)")] = None

    class BatchRecommend(_Strict):
        domain: Id
        histories: Annotated[list[History], Field(min_length=1, max_length=limits.max_batch)]
        k: K = 10
        exclude_seen: bool = False
        timestamp: Timestamp | None = None

    class EventIn(_Strict):
        user_id: Id
        item_id: Id
        timestamp: Timestamp
        event_id: Annotated[Id | None, Field(description="idempotency key (optional)")] = None

    class Events(_Strict):
        domain: Id
        events: Annotated[list[EventIn], Field(min_length=1, max_length=limits.max_events)]

    class ItemIn(_Strict):
        item_id: Id
        text: ItemText

    class Items(_Strict):
        items: Annotated[list[ItemIn], Field(min_length=1, max_length=limits.max_items)]

    return RequestModels(TextEntry, Recommend, BatchRecommend, Events, Items)


class ScoredItem(BaseModel):
    item_id: str
    score: float
    text: str
    uv: float | None = None  # with "explain": U . V_j
    popularity: float | None = None  # with "explain": g(F_j(today)); score = uv + popularity


class FoundItem(BaseModel):
    item_id: str
    text: str
    match: str  # "words" (the text holds query words, or the id was typed) or "similar" (embedding)
    similarity: float  # cosine of the text embeddings


class SearchResponse(BaseModel):
    items: list[FoundItem]
    similarity: bool  # False when the text encoder was busy (word matches only)


class PopularItem(BaseModel):
    item_id: str
    text: str
    popularity: float  # g(F_j(today))


class PopularResponse(BaseModel):
    items: list[PopularItem]


class RecommendResponse(BaseModel):
    items: list[ScoredItem]


class BatchRecommendResponse(BaseModel):
    results: list[RecommendResponse]


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int


class ItemsResponse(BaseModel):
    added: int
    updated: int
    n_items: int


class DeleteResponse(BaseModel):
    deleted: str
    catalog_item: bool
    n_items: int


class DomainInfo(BaseModel):
    name: str
    n_items: int
    n_catalog_items: int
    n_added_items: int
    n_deleted_items: int = 0
    n_events: int
    timed: bool
    retrieval: str


class DomainsResponse(BaseModel):
    domains: list[DomainInfo]
