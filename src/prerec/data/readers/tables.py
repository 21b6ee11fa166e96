"""Reading one table file (Parquet, CSV, TSV, JSON lines) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prerec.errors import PrerecError

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".json")


def read_table(path: Path, *, required: tuple[str, ...] = (), dtype: dict | None = None) -> pd.DataFrame:
    """Read a table by its suffix and check that the required columns are there."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=dtype, keep_default_na=False,
                             na_values=[""])
        elif suffix in (".jsonl", ".json"):
            df = pd.read_json(path, lines=True, dtype=dtype)
        else:
            raise PrerecError(f"{path}: unsupported table type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    except PrerecError:
        raise
    except Exception as exc:  # parser errors from pandas/pyarrow become one clear line
        raise PrerecError(f"{path}: cannot read as {suffix.lstrip('.')}: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PrerecError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}"
        )
    return df


def find_table(directory: Path, stem: str) -> Path | None:
    """``directory/stem.<suffix>`` for the first table suffix that exists."""
    for suffix in TABLE_SUFFIXES:
        p = directory / f"{stem}{suffix}"
        if p.exists():
            return p
    return None
