"""Reading one table file (Parquet, CSV, TSV, JSON lines) with errors that name the file."""

from __future__ import annotations

import csv
import io
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


def require_columns(df: pd.DataFrame, required: tuple[str, ...] | list[str], path: Path | str) -> None:
    """A clear error naming the file when a required column is absent."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PrerecError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}"
        )


def read_delimited(path: Path, *, sep: str, header: int | None = 0, names: list[str] | None = None,
                   encoding: str = "utf-8", quoting: int = csv.QUOTE_MINIMAL) -> pd.DataFrame:
    """Read a delimited text file as strings (nothing is guessed), errors naming the file.

    A multi-character separator such as MovieLens' ``::`` is replaced by a tab first, so the
    fast C parser still does the work.
    """
    try:
        if len(sep) > 1:
            text = path.read_text(encoding=encoding).replace(sep, "\t")
            source: Path | io.StringIO = io.StringIO(text)
            sep, encoding_arg = "\t", None
        else:
            source, encoding_arg = path, encoding
        return pd.read_csv(source, sep=sep, header=header, names=names, dtype=str, encoding=encoding_arg,
                           keep_default_na=False, na_values=[], quoting=quoting, engine="c")
    except FileNotFoundError as exc:
        raise PrerecError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise PrerecError(f"{path}: cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
