"""Serving: the Python API (:class:`Service`), retrieval (exact and FAISS), the SQLite event
store and the HTTP app (``prerec serve``). See docs/serving.md."""

from prerec.serving.api import (
    Recommendations,
    Recorded,
    RequestError,
    Service,
    Text,
    UnknownDomainError,
    UnknownItemError,
)
from prerec.serving.model import ServingModel
from prerec.serving.retrieval import ExactRetriever, FaissRetriever, Retriever, make_retriever
from prerec.serving.store import Event, EventStore

__all__ = [
    "Event",
    "EventStore",
    "ExactRetriever",
    "FaissRetriever",
    "Recommendations",
    "Recorded",
    "RequestError",
    "Retriever",
    "Service",
    "ServingModel",
    "Text",
    "UnknownDomainError",
    "UnknownItemError",
    "make_retriever",
]
