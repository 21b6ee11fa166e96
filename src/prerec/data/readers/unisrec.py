"""``unisrec``: the UniSRec / RecBole benchmark files of one dataset (e.g. Amazon Scientific).

PATH is the folder holding ``<Name>.text``, ``<Name>.train/.valid/.test.inter``,
``<Name>.item2index`` and ``<Name>.user2index`` (or any one of these files). ``#Name`` picks the
dataset where a folder holds several.

The ``.inter`` files are leave-one-out rows ``user_id  item_id_list  item_id`` over integer
indices. A user's sequence is the **test row's history followed by its target** (the
publisher truncated histories to 50 items, so longer sequences keep only their last 51 items).
Indices are mapped back with ``.item2index`` / ``.user2index``, so item ids are ASINs such as
``B0000223SI``; texts come from ``.text`` (keyed by ASIN). There are no timestamps: row order
is time order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import read_delimited, require_columns
from prerec.errors import PrerecError

SUFFIXES = (".text", ".train.inter", ".valid.inter", ".test.inter", ".item2index", ".user2index")


def strip_types(df: pd.DataFrame) -> pd.DataFrame:
    """RecBole headers are ``name:type``; keep the names."""
    return df.rename(columns=lambda c: str(c).split(":", 1)[0].strip())


def find_dataset(spec: DomainSpec) -> tuple[Path, str]:
    """The folder and the dataset name (``<Name>`` of ``<Name>.test.inter``)."""
    path = spec.existing_path()
    if path.is_file():
        for suffix in SUFFIXES:
            if path.name.endswith(suffix):
                return path.parent, path.name[: -len(suffix)]
        raise PrerecError(f"{spec.text}: {path} is not a UniSRec file (expected one of {', '.join(SUFFIXES)})")
    names = sorted(p.name[: -len(".test.inter")] for p in path.glob("*.test.inter"))
    if spec.selector is not None:
        if spec.selector not in names:
            raise PrerecError(f"{spec.text}: no {spec.selector}.test.inter in {path}; found {names or 'none'}")
        return path, spec.selector
    if not names:
        raise PrerecError(f"{spec.text}: {path} holds no <Name>.test.inter file (UniSRec format)")
    if len(names) > 1:
        raise PrerecError(f"{spec.text}: {path} holds several datasets ({', '.join(names)}); add #Name")
    return path, names[0]


def read_index(path: Path) -> pd.Series:
    """``.item2index`` / ``.user2index``: ``external_id <tab> index`` -> Series index -> id."""
    if not path.exists():
        raise PrerecError(f"{path}: no such file (needed to map indices back to ids)")
    df = read_delimited(path, sep="\t", header=None, quoting=csv.QUOTE_NONE)
    if df.shape[1] != 2:
        raise PrerecError(f"{path}: expected 2 tab-separated columns (id, index), found {df.shape[1]}")
    idx = pd.to_numeric(df[1], errors="coerce")
    if idx.isna().any():
        row = int(np.flatnonzero(idx.isna().to_numpy())[0])
        raise PrerecError(f"{path}: row {row + 1}: index {df[1].iloc[row]!r} is not an integer")
    return pd.Series(df[0].to_numpy(dtype=object), index=idx.astype(np.int64).to_numpy())


def map_indices(values: np.ndarray, index: pd.Series, path: Path, index_file: Path) -> np.ndarray:
    """Integer indices -> external ids; an index the map lacks is a clear error."""
    pos = index.index.get_indexer(values)
    if (pos < 0).any():
        bad = values[np.flatnonzero(pos < 0)[0]]
        raise PrerecError(f"{path}: index {bad} is not in {index_file.name}")
    return index.to_numpy()[pos]


@reader("unisrec")
def read_unisrec(spec: DomainSpec) -> list[Domain]:
    folder, name = find_dataset(spec)
    test_path = folder / f"{name}.test.inter"
    if not test_path.exists():
        raise PrerecError(f"{test_path}: no such file (a user's sequence is its test row)")
    test = strip_types(read_delimited(test_path, sep="\t", quoting=csv.QUOTE_NONE))
    require_columns(test, ("user_id", "item_id_list", "item_id"), test_path)
    report = DataReport()
    repeated = test["user_id"].duplicated(keep="last")
    if repeated.any():
        report.drop("earlier test rows of a repeated user", int(repeated.sum()))
        test = test[~repeated.to_numpy()]

    # history + target per row, then one vectorised parse of all integer tokens
    seqs = (test["item_id_list"].str.strip() + " " + test["item_id"].str.strip()).str.strip()
    lengths = seqs.str.count(r"\s+").to_numpy() + 1
    try:
        flat = np.array(" ".join(seqs.tolist()).split(), dtype=np.int64)
    except ValueError as exc:
        raise PrerecError(f"{test_path}: item indices must be integers ({str(exc).splitlines()[0]})") from exc
    if len(flat) != lengths.sum():
        raise PrerecError(f"{test_path}: malformed item_id_list (empty items?)")
    try:
        users_idx = test["user_id"].astype(np.int64).to_numpy()
    except ValueError as exc:
        raise PrerecError(f"{test_path}: user_id must be integer indices ({str(exc).splitlines()[0]})") from exc

    item_file = folder / f"{name}.item2index"
    item_map = read_index(item_file)
    user_file = folder / f"{name}.user2index"
    if user_file.exists():
        user_ids = map_indices(users_idx, read_index(user_file), test_path, user_file)
    else:
        user_ids = users_idx.astype(str).astype(object)
        report.notes.append(f"no {user_file.name}: user ids are the integer indices")
    inter = pd.DataFrame({
        "user_id": np.repeat(user_ids, lengths),
        "item_id": map_indices(flat, item_map, test_path, item_file),
    })
    report.rows_read = len(inter)

    text_path = folder / f"{name}.text"
    texts = None
    if text_path.exists():
        texts = strip_types(read_delimited(text_path, sep="\t", quoting=csv.QUOTE_NONE))
        require_columns(texts, ("item_id", "text"), text_path)
    else:
        report.notes.append(f"no {text_path.name} (no item text)")
    return [build_domain(spec.name or name, inter, texts, source=str(test_path), report=report,
                         sort_by_time=False)]
