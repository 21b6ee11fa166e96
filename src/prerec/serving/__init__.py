"""Serving: the Python API (:class:`Service`), retrieval (exact and FAISS), the event
store (SQLite, or PostgreSQL shared by replicas) and the HTTP app (``prerec serve``). See docs/serving.md."""

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
from prerec.serving.store import Event, Store
from prerec.serving.store_sqlite import SQLiteStore
from prerec.serving.store_sqlite import SQLiteStore as EventStore
from prerec.serving.stores import open_store

__all__ = [
    "Event",
    "EventStore",
    "ExactRetriever",
    "FaissRetriever",
    "Recommendations",
    "Recorded",
    "RequestError",
    "Retriever",
    "SQLiteStore",
    "Service",
    "ServingModel",
    "Store",
    "Text",
    "UnknownDomainError",
    "UnknownItemError",
    "make_retriever",
    "open_store",
]
