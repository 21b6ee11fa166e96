"""``online-retail``: the UCI Online Retail file, one domain per country (BENCHMARKS.md, B1).

PATH is the Parquet/CSV/Excel-exported file with the UCI columns, or ``embedded`` for the copy
shipped inside the package (CC BY 4.0, see ``prerec/data/embedded/ATTRIBUTION.md``).
``#Country`` selects one country, ``#A,B`` several, ``#!A,B`` every country but those (B1's
sources: ``#!Germany,France,Spain,Belgium,Switzerland,Portugal``); without a selector every
country is its own domain.

Cleaning, in this order, each rule's removed rows counted per country:
1. no CustomerID;  2. cancellation (InvoiceNo starts with "C");  3. Quantity <= 0;
4. not a product stock code (first five characters not all digits: POST, D, M, DOT, ...);
5. the same item repeated within one invoice (counts once).
Item text: the most frequent non-missing Description of the stock code over the cleaned rows
of all countries (ties: lexicographically smallest); "nan" descriptions are missing.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain, parse_timestamps, resolve_texts
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import read_table
from prerec.errors import PrerecError

log = logging.getLogger(__name__)
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID", "Country")
RULES = (
    "no CustomerID",
    "cancellation",
    "Quantity <= 0",
    "not a product stock code",
    "repeated item in one invoice",
)


def embedded_path() -> Path:
    """The Online Retail file shipped inside the package."""
    return Path(str(resources.files("prerec.data") / "embedded" / "online_retail.parquet"))


def clean(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the B1 rules; return the kept rows and a (country x rule) table of removed rows."""
    df = raw.copy()
    df["InvoiceNo"] = df["InvoiceNo"].astype(str)
    df["StockCode"] = df["StockCode"].astype(str).str.strip()
    df["Country"] = df["Country"].astype(str)
    customer = df["CustomerID"]
    no_customer = customer.isna() | customer.astype(str).str.strip().isin(["", "nan", "NaN", "None"])
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    masks = {
        RULES[0]: no_customer.to_numpy(),
        RULES[1]: df["InvoiceNo"].str.upper().str.startswith("C").to_numpy(),
        RULES[2]: (quantity.isna() | (quantity <= 0)).to_numpy(),
        RULES[3]: ~df["StockCode"].str.match(r"^\d{5}").to_numpy(dtype=bool),
    }
    keep = np.ones(len(df), dtype=bool)
    removed = {}
    for rule, mask in masks.items():
        hit = keep & mask
        removed[rule] = df.loc[hit, "Country"].value_counts()
        keep &= ~mask
    kept = df[keep]
    dup = kept.duplicated(["InvoiceNo", "StockCode"], keep="first").to_numpy()
    removed[RULES[4]] = kept.loc[dup, "Country"].value_counts()
    kept = kept[~dup]
    table = pd.DataFrame(removed).reindex(columns=list(RULES)).fillna(0).astype(int)
    return kept, table


def select_countries(spec: DomainSpec, countries: list[str], path: str) -> list[str]:
    """``#A,B`` keeps those countries; ``#!A,B`` keeps every country but those (B1's sources)."""
    selector = spec.selector or ""
    exclude = selector.startswith("!")
    names = [c.strip() for c in selector.lstrip("!").split(",") if c.strip()]
    unknown = [c for c in names if c not in countries]
    if unknown or not names:
        raise PrerecError(
            f"{spec.text}: no country {', '.join(map(repr, unknown)) or repr(selector)} in {path}; "
            f"countries: {', '.join(countries)}"
        )
    return [c for c in countries if c not in names] if exclude else names


@reader("online-retail")
def read_online_retail(spec: DomainSpec) -> list[Domain]:
    path = embedded_path() if spec.path in ("", "embedded") else spec.existing_path()
    raw = read_table(path, required=COLUMNS)
    kept, removed = clean(raw)
    rows_read = raw["Country"].astype(str).value_counts()
    countries = sorted(rows_read.index)
    if spec.selector is not None:
        countries = select_countries(spec, countries, str(path))

    customer = pd.to_numeric(kept["CustomerID"], errors="coerce")
    customer = customer.astype("Int64").astype(str) if customer.notna().all() else kept["CustomerID"].astype(str)
    timestamps = parse_timestamps(kept["InvoiceDate"], where=f"{path} (InvoiceDate)")
    frame = pd.DataFrame(
        {
            "user_id": customer.to_numpy(),
            "item_id": kept["StockCode"].to_numpy(),
            "timestamp": timestamps.to_numpy(),
            "country": kept["Country"].to_numpy(),
        }
    )
    # one text per stock code over all countries, so every market describes an item alike
    resolved, conflicting = resolve_texts(kept["StockCode"], kept["Description"].astype(str))
    conflicting = pd.Index(conflicting.to_numpy(dtype=object))
    by_country = frame.groupby("country", sort=False).indices  # row positions, one pass
    domains, skipped = [], []
    for country in countries:
        rows = frame.iloc[by_country.get(country, np.empty(0, dtype=np.int64))]
        report = DataReport(rows_read=int(rows_read[country]))
        for rule in RULES:
            report.drop(rule, int(removed[rule].get(country, 0)) if country in removed.index else 0)
        if rows.empty:
            if spec.selector is not None and not spec.selector.startswith("!"):
                raise PrerecError(f"{spec.text}: country {country!r} has no interactions left after cleaning")
            skipped.append(f"{country} ({int(rows_read[country]):,} rows)")
            continue
        own = resolved.reindex(pd.unique(rows["item_id"].to_numpy())).dropna()
        items = pd.DataFrame({"item_id": own.index.to_numpy(dtype=object), "text": own.to_numpy(dtype=object)})
        domain = build_domain(country, rows, items, source=f"{path}#{country}", report=report)
        domain.report.conflicting_texts = int((conflicting.get_indexer(domain.item_ids) >= 0).sum())
        domains.append(domain)
    if not domains:
        raise PrerecError(f"{path}: no country has interactions left after cleaning (rules: {', '.join(RULES)})")
    if skipped:
        log.warning("%s: skipped, no row left after cleaning: %s", spec.text, ", ".join(skipped))
    return domains
