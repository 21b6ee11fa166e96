"""``xmarket-5core``: XMarket's processed per-market files, ``<market>_5core.txt``.

Space-separated with a header ``userId itemId rate date``; ``date`` is ``YYYY-MM-DD`` (day
resolution, so interactions of one day keep file order). One market per file. PATH is a file
(the domain is named after its market, ``de`` for ``de_5core.txt``) or a folder: every
``*_5core.txt`` in it is a domain, ``#market`` picks one. Ratings are not used (every row is an
interaction). These files carry no item text: every item is counted as without text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import read_delimited, require_columns
from prerec.errors import PrerecError

COLUMNS = ("userId", "itemId", "date")
SUFFIX = "_5core.txt"


def parse_days(values: pd.Series, path: Path, column: str, row_name: str = "line", first: int = 2) -> pd.Series:
    """``YYYY-MM-DD`` strings -> unix seconds at 00:00 UTC; the first bad row is a clear error
    (rows are called ``row_name`` and numbered from ``first``: line 2 is a header file's first row)."""
    dt = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    bad = dt.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PrerecError(
            f"{path}: unparsable {column} {values.iloc[row]!r} on {row_name} {row + first} (expected YYYY-MM-DD)"
        )
    return ((dt - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).astype("Int64")


def read_file(path: Path, name: str) -> Domain:
    df = read_delimited(path, sep=" ")
    require_columns(df, COLUMNS, path)
    frame = pd.DataFrame({
        "user_id": df["userId"],
        "item_id": df["itemId"],
        "timestamp": parse_days(df["date"], path, "date").to_numpy(),
    })
    report = DataReport(rows_read=len(df))
    report.notes.append("XMarket 5-core files carry no item text")
    return build_domain(name, frame, None, source=str(path), report=report)


@reader("xmarket-5core", id_space="xmarket:asin")
def read_xmarket_5core(spec: DomainSpec) -> list[Domain]:
    path = spec.existing_path()
    if path.is_file():
        market = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
        return [read_file(path, spec.name or market)]
    files = {p.name[: -len(SUFFIX)]: p for p in sorted(path.glob(f"*{SUFFIX}"))}
    if spec.selector is not None:
        if spec.selector not in files:
            raise PrerecError(
                f"{spec.text}: no {spec.selector}{SUFFIX} in {path}; markets: {', '.join(files) or 'none'}"
            )
        files = {spec.selector: files[spec.selector]}
    if not files:
        raise PrerecError(f"{spec.text}: {path} holds no <market>{SUFFIX} file")
    return [read_file(p, market) for market, p in files.items()]
