"""``online-retail``: the UCI Online Retail files, one domain per country (docs/evaluation.md, B1).

PATH is a Parquet/CSV file with the columns of either release, or several of them: a folder
(every ``.parquet``/``.csv``/``.tsv`` in it, by name) or a comma-separated list of files, read
into one log; ``embedded`` is the copy shipped inside the package (CC BY 4.0, see
``prerec/data/embedded/ATTRIBUTION.md``).

- Online Retail (2010-2011): ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
  UnitPrice, CustomerID, Country``;
- Online Retail II (its sheets "Year 2009-2010" and "Year 2010-2011" exported one file each):
  ``Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country``,
  renamed to the columns above.

``#Country`` selects one country, ``#A,B`` several, ``#!A,B`` every country but those (B1's
sources: ``#!Germany,France,Spain,Belgium,Switzerland,Portugal``); without a selector every
country is its own domain. Every country of the shop shares one item key space
(``online-retail:stockcode``): a stock code is the same product in every market.

Cleaning, in this order, each rule's removed rows counted per country:
0. (several files only) an invoice already read from an earlier file (files that share
   invoices, e.g. the UCI file and II's 2010-2011 sheet, are read once: the first file's lines);
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
from prerec.data.readers.tables import read_table, require_columns
from prerec.errors import PrerecError

log = logging.getLogger(__name__)
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID", "Country")
COLUMNS_II = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Customer ID", "Country")
RELEASE_II = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}  # II -> UCI names
ID_SPACE = "online-retail:stockcode"
FILE_SUFFIXES = (".parquet", ".csv", ".tsv")
REPEATED_INVOICE = "invoice in an earlier file"
RULES = (
    REPEATED_INVOICE,
    "no CustomerID",
    "cancellation",
    "Quantity <= 0",
    "not a product stock code",
    "repeated item in one invoice",
)


def embedded_path() -> Path:
    """The Online Retail file shipped inside the package."""
    return Path(str(resources.files("prerec.data") / "embedded" / "online_retail.parquet"))


def input_files(spec: DomainSpec) -> list[Path]:
    """The files of PATH: ``embedded``, one file, a folder of table files, or ``a,b`` (a list)."""
    if spec.path in ("", "embedded"):
        return [embedded_path()]
    whole = Path(spec.path).expanduser()
    if "," in spec.path and not whole.exists():
        parts = [p.strip() for p in spec.path.split(",") if p.strip()]
        missing = [p for p in parts if not Path(p).expanduser().is_file()]
        if missing:
            raise PrerecError(f"{spec.text}: no such file: {', '.join(missing)}")
        return [Path(p).expanduser() for p in parts]
    path = spec.existing_path()
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
    if not files:
        raise PrerecError(f"{spec.text}: no {', '.join(FILE_SUFFIXES)} file in the folder {path}")
    return files


def read_release(path: Path) -> pd.DataFrame:
    """One file of either release, with the Online Retail (UCI) column names."""
    raw = read_table(path, dtype={"InvoiceNo": str, "Invoice": str, "StockCode": str})
    if "InvoiceNo" not in raw.columns and "Invoice" in raw.columns:  # Online Retail II
        require_columns(raw, COLUMNS_II, path)
        return raw.rename(columns=RELEASE_II)
    require_columns(raw, COLUMNS, path)
    return raw


def clean(raw: pd.DataFrame, earlier_invoices: pd.Index | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the B1 rules; return the kept rows and a (country x rule) table of removed rows.

    ``earlier_invoices``: invoice numbers already read from earlier files (their lines here are
    removed first, as rule 0)."""
    df = raw.copy()
    df["InvoiceNo"] = df["InvoiceNo"].astype(str).str.strip()
    df["StockCode"] = df["StockCode"].astype(str).str.strip()
    df["Country"] = df["Country"].astype(str)
    customer = df["CustomerID"]
    no_customer = customer.isna() | customer.astype(str).str.strip().isin(["", "nan", "NaN", "None"])
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    seen = np.zeros(len(df), dtype=bool)
    if earlier_invoices is not None and len(earlier_invoices):
        seen = earlier_invoices.get_indexer(df["InvoiceNo"]) >= 0
    masks = {
        RULES[0]: seen,
        RULES[1]: no_customer.to_numpy(),
        RULES[2]: df["InvoiceNo"].str.upper().str.startswith("C").to_numpy(),
        RULES[3]: (quantity.isna() | (quantity <= 0)).to_numpy(),
        RULES[4]: ~df["StockCode"].str.match(r"^\d{5}").to_numpy(dtype=bool),
    }
    keep = np.ones(len(df), dtype=bool)
    removed = {}
    for rule, mask in masks.items():
        hit = keep & mask
        removed[rule] = df.loc[hit, "Country"].value_counts()
        keep &= ~mask
    kept = df[keep]
    dup = kept.duplicated(["InvoiceNo", "StockCode"], keep="first").to_numpy()
    removed[RULES[5]] = kept.loc[dup, "Country"].value_counts()
    kept = kept[~dup]
    table = pd.DataFrame(removed).reindex(columns=list(RULES)).fillna(0).astype(int)
    return kept, table


def read_log(files: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Read and clean every file into one log: (cleaned interactions with a ``country`` column,
    removed rows per country and rule, rows read per country, Description per kept row)."""
    frames, descriptions, removed, rows_read = [], [], [], []
    invoices = pd.Index([], dtype=object)
    for path in files:
        raw = read_release(path)
        kept, table = clean(raw, invoices if len(files) > 1 else None)
        invoices = invoices.append(pd.Index(pd.unique(raw["InvoiceNo"].astype(str).str.strip())))
        customer = pd.to_numeric(kept["CustomerID"], errors="coerce")
        customer = customer.astype("Int64").astype(str) if customer.notna().all() else kept["CustomerID"].astype(str)
        frames.append(pd.DataFrame({
            "user_id": customer.to_numpy(),
            "item_id": kept["StockCode"].to_numpy(),
            "timestamp": parse_timestamps(kept["InvoiceDate"], where=f"{path} (InvoiceDate)").to_numpy(),
            "country": kept["Country"].to_numpy(),
        }))
        descriptions.append(kept["Description"].astype(str))
        removed.append(table)
        rows_read.append(raw["Country"].astype(str).value_counts())
    frame = pd.concat(frames, ignore_index=True)
    frame["timestamp"] = frame["timestamp"].astype("Int64")
    table = pd.concat(removed).groupby(level=0).sum()
    return frame, table, pd.concat(rows_read).groupby(level=0).sum(), pd.concat(descriptions, ignore_index=True)


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


@reader("online-retail", id_space=ID_SPACE)
def read_online_retail(spec: DomainSpec) -> list[Domain]:
    files = input_files(spec)
    path = ",".join(map(str, files))
    frame, removed, rows_read, descriptions = read_log(files)
    rules = RULES if len(files) > 1 else RULES[1:]
    countries = sorted(rows_read.index)
    if spec.selector is not None:
        countries = select_countries(spec, countries, path)
    # one text per stock code over all countries, so every market describes an item alike
    resolved, conflicting = resolve_texts(frame["item_id"], descriptions)
    conflicting = pd.Index(conflicting.to_numpy(dtype=object))
    by_country = frame.groupby("country", sort=False).indices  # row positions, one pass
    domains, skipped = [], []
    for country in countries:
        rows = frame.iloc[by_country.get(country, np.empty(0, dtype=np.int64))]
        report = DataReport(rows_read=int(rows_read[country]))
        for rule in rules:
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
        raise PrerecError(f"{path}: no country has interactions left after cleaning (rules: {', '.join(rules)})")
    if skipped:
        log.warning("%s: skipped, no row left after cleaning: %s", spec.text, ", ".join(skipped))
    return domains
