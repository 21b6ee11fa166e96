"""``recbole``: RecBole atomic files, ``<name>.inter`` (+ ``<name>.item`` for item text).

PATH is the ``.inter`` file or the folder holding it (``#name`` picks one where the folder
holds several; split files such as ``x.train.inter`` are not atomic logs and are ignored).
Headers are ``name:type`` (``user_id:token  item_id:token  timestamp:float``), tab-separated.
A ``timestamp`` column (unix seconds, or a date) gives time; without one, row order is time order.

Item text, from ``<name>.item`` beside the ``.inter`` file when there is one: the values of its
text-like columns, in file order, joined by ``". "``. A column is text-like when its type is
``token`` or ``token_seq`` and its name contains one of ``TEXT_HINTS`` (``title``,
``movie_title``, ``name``, ``text``, ``description``, ``brand``, ``categories``, ``genre``,
``class``, ...). Numeric columns (price, sales_rank, release_year) are never text.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain, parse_timestamps, refuse_unparsable
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import read_delimited, require_columns
from prerec.errors import PrerecError

TEXT_HINTS = ("title", "name", "text", "desc", "brand", "categor", "genre", "class", "tag", "keyword")
SPLIT_SUFFIXES = (".train.inter", ".valid.inter", ".test.inter")


def read_atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """An atomic file as strings, its columns renamed to the bare field names, and their types."""
    df = read_delimited(path, sep="\t", quoting=csv.QUOTE_NONE)
    types: dict[str, str] = {}
    names = []
    for col in df.columns:
        name, _, typ = str(col).partition(":")
        if not typ:
            raise PrerecError(
                f"{path}: column {str(col)!r} has no type; RecBole headers are name:type "
                "(e.g. user_id:token item_id:token timestamp:float)"
            )
        names.append(name.strip())
        types[name.strip()] = typ.strip()
    df.columns = names
    return df, types


def find_inter(spec: DomainSpec) -> Path:
    path = spec.existing_path()
    if path.is_file():
        if path.suffix != ".inter":
            raise PrerecError(f"{spec.text}: {path} is not a RecBole .inter file")
        return path
    found = sorted(p for p in path.glob("*.inter") if not p.name.endswith(SPLIT_SUFFIXES))
    if spec.selector is not None:
        chosen = path / f"{spec.selector}.inter"
        if chosen not in found:
            raise PrerecError(f"{spec.text}: no {chosen.name} in {path}; found {[p.name for p in found] or 'none'}")
        return chosen
    if not found:
        raise PrerecError(f"{spec.text}: {path} holds no <name>.inter file (RecBole atomic format)")
    if len(found) > 1:
        names = ", ".join(p.stem for p in found)
        raise PrerecError(f"{spec.text}: {path} holds several .inter files ({names}); add #name")
    return found[0]


def item_texts(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``item_id, text`` from an atomic ``.item`` file, and the columns the text was made of."""
    items, types = read_atomic(path)
    require_columns(items, ("item_id",), path)
    cols = [c for c, t in types.items()
            if c != "item_id" and t in ("token", "token_seq") and any(h in c.lower() for h in TEXT_HINTS)]
    if not cols:
        return pd.DataFrame({"item_id": items["item_id"], "text": ""}), []
    text = pd.Series("", index=items.index, dtype=object)
    for c in cols:
        value = items[c].fillna("").astype(str).str.strip()
        text = text + np.where((text != "") & (value != ""), ". ", "") + value
    return pd.DataFrame({"item_id": items["item_id"], "text": text}), cols


@reader("recbole")
def read_recbole(spec: DomainSpec) -> list[Domain]:
    inter_path = find_inter(spec)
    inter, types = read_atomic(inter_path)
    require_columns(inter, ("user_id", "item_id"), inter_path)
    report = DataReport(rows_read=len(inter))
    frame = inter[["user_id", "item_id"]].copy()
    if "timestamp" in inter.columns:
        values = inter["timestamp"].replace("", None)
        if types["timestamp"].startswith("float"):
            num = pd.to_numeric(values, errors="coerce")
            refuse_unparsable(values, num, str(inter_path), "timestamp:float must be unix seconds")
            values = num
        frame["timestamp"] = parse_timestamps(values, where=str(inter_path)).to_numpy()
    else:
        report.notes.append("no timestamp column: row order is time order")

    item_path = inter_path.with_suffix(".item")
    texts = None
    if item_path.exists():
        texts, cols = item_texts(item_path)
        if cols:
            report.notes.append(f"item text from {item_path.name} columns: {', '.join(cols)}")
        else:
            report.notes.append(f"{item_path.name} has no text-like column (no item text)")
    else:
        report.notes.append(f"no {item_path.name} (no item text)")
    return [build_domain(spec.name or inter_path.stem, frame, texts, source=str(inter_path), report=report)]
