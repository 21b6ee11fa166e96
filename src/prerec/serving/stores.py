"""Opening a store from ``--db``: a ``postgresql://`` URL or an SQLite path (serving/store.py
is the interface; serving/store_sqlite.py and serving/store_postgres.py the implementations)."""

from __future__ import annotations

from pathlib import Path

from prerec.serving.store import Store
from prerec.serving.store_sqlite import SQLiteStore


def is_postgres_url(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://"))


def open_store(spec: Store | str | Path, **options: object) -> Store:
    """A store from a ``postgresql://`` URL or an SQLite path (a :class:`Store` is returned as is)."""
    if isinstance(spec, Store):
        return spec
    if is_postgres_url(spec):
        from prerec.serving.store_postgres import PostgresStore  # psycopg only when it is used

        return PostgresStore(str(spec), **options)  # type: ignore[arg-type]
    return SQLiteStore(spec)
