"""``xmarket``: the full XMarket release (Bonab et al., CIKM 2021), the format the paper used.

PATH is the release folder, ``DIR/<market>/<category>/`` holding
``reviews_<market>_<category>.json.gz`` and ``metadata_<market>_<category>.json.gz`` (plain
``.json`` accepted too), or one market's folder. ``#market`` selects a market; without it every
market is its own domain. All categories of a market are merged into one domain.

- Reviews (JSON lines; a line is one review object, or a JSON array of review objects as in the
  published files): ``reviewerID`` -> user, ``asin`` -> item, ``cleanReviewTime``
  (``YYYY-MM-DD``) -> day. The same review listed under several categories (same reviewer,
  asin and date) counts once.
- Metadata (JSON lines): ``asin``, ``title``, ``features`` (list, may be missing) and
  ``categories`` (list). Item text, as the paper (docs/method.md, "Training") and its code build it:
  ``title + " " + " ".join(features) + " This item belongs to the following categories: " +
  " ".join(categories)`` (the category sentence only when there are categories). An asin repeated
  across categories is kept once: identical texts merge; differing ones are resolved like every
  text conflict (most frequent, then lexicographically smallest) and counted.
- Reviewed asins without metadata stay in the log and are counted as items without text.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import require_columns
from prerec.data.readers.xmarket_5core import parse_days
from prerec.errors import PrerecError

REVIEW_COLUMNS = ("reviewerID", "asin", "cleanReviewTime")
CATEGORY_SENTENCE = "This item belongs to the following categories:"
_FILE = re.compile(r"^(reviews|metadata)_(?P<market>[^_]+)_(?P<category>.+)\.json(\.gz)?$")


def read_json_records(path: Path) -> pd.DataFrame:
    """JSON lines of objects, or of arrays of objects, parsed in one ``json.loads`` call."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise PrerecError(f"{path}: cannot read: {exc}") from exc
    body = re.sub(r"(?m)^\s*\[\s*\]\s*$", "", text).strip()  # empty arrays
    if not body:
        return pd.DataFrame()
    if body.startswith("["):  # lines are arrays: merge them into one array
        body = re.sub(r"\]\s*\n\s*\[", ",", body)
    else:  # lines are objects
        body = "[" + re.sub(r"\}\s*\n\s*\{", "},{", body) + "]"
    try:
        records = json.loads(body)
    except json.JSONDecodeError:
        raise PrerecError(f"{path}: {first_bad_line(text)}") from None
    if not all(isinstance(r, dict) for r in records[:1]):
        raise PrerecError(f"{path}: expected one JSON object (or array of objects) per line")
    return pd.DataFrame.from_records(records)


def first_bad_line(text: str) -> str:
    """Locate the first line that is not valid JSON (only run when parsing failed)."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                return f"line {n} is not valid JSON ({exc.msg})"
    return "not valid JSON lines"


def join_list(values: pd.Series) -> pd.Series:
    """A column of string lists (or missing values, or plain strings) -> one space-joined string.

    One call per metadata row (items, not interactions)."""

    def one(v: object) -> str:
        if isinstance(v, list | tuple):  # nested lists (category paths) are flattened one level
            return " ".join(one(x) if isinstance(x, list | tuple) else str(x).strip() for x in v if x is not None)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return str(v)

    return values.map(one).astype(str).str.strip()


def item_text(meta: pd.DataFrame) -> pd.Series:
    """``title + features + category sentence + categories`` for each metadata row."""
    title = join_list(meta["title"]) if "title" in meta else pd.Series("", index=meta.index)
    features = join_list(meta["features"]) if "features" in meta else pd.Series("", index=meta.index)
    categories = join_list(meta["categories"]) if "categories" in meta else pd.Series("", index=meta.index)
    cat = np.where(categories != "", CATEGORY_SENTENCE + " " + categories, "")
    text = title + " " + features + " " + cat
    return text.str.replace(r"\s+", " ", regex=True).str.strip()


def find_markets(root: Path) -> dict[str, list[tuple[str, Path, Path | None]]]:
    """market -> [(category, reviews file, metadata file or None)], from either folder layout."""
    found: dict[str, list[tuple[str, Path, Path | None]]] = {}
    for pattern in ("*/*/reviews_*.json*", "*/reviews_*.json*"):
        for reviews in sorted(root.glob(pattern)):
            m = _FILE.match(reviews.name)
            if not m:
                continue
            market, category = m["market"], m["category"]
            meta = None
            for suffix in (".json.gz", ".json"):
                p = reviews.parent / f"metadata_{market}_{category}{suffix}"
                if p.exists():
                    meta = p
                    break
            found.setdefault(market, []).append((category, reviews, meta))
        if found:
            break
    return found


def read_market(name: str, market: str, files: list[tuple[str, Path, Path | None]], source: str) -> Domain:
    reviews, metas, report = [], [], DataReport()
    for category, review_path, meta_path in files:
        r = read_json_records(review_path)
        if r.empty:
            report.notes.append(f"{review_path.name} holds no reviews")
            continue
        require_columns(r, REVIEW_COLUMNS, review_path)
        days = parse_days(r["cleanReviewTime"].astype("string"), review_path, "cleanReviewTime",
                          row_name="review", first=1)
        reviews.append(pd.DataFrame({
            "user_id": r["reviewerID"].to_numpy(), "item_id": r["asin"].to_numpy(), "timestamp": days.to_numpy(),
        }))
        if meta_path is None:
            report.notes.append(f"no metadata file for {market}/{category}: its items may lack text")
            continue
        m = read_json_records(meta_path)
        if m.empty:
            continue
        require_columns(m, ("asin",), meta_path)
        metas.append(pd.DataFrame({"item_id": m["asin"].astype(str).to_numpy(), "text": item_text(m).to_numpy()}))
    if not reviews:
        raise PrerecError(f"{source}: market {market!r} has no reviews")
    log = pd.concat(reviews, ignore_index=True)
    report.rows_read = len(log)
    repeated = log.duplicated(["user_id", "item_id", "timestamp"], keep="first").to_numpy()
    report.drop("same review in several categories", int(repeated.sum()))
    log = log[~repeated]
    texts = pd.concat(metas, ignore_index=True) if metas else None
    return build_domain(name, log, texts, source=source, report=report)


@reader("xmarket", id_space="xmarket:asin")
def read_xmarket(spec: DomainSpec) -> list[Domain]:
    root = spec.existing_path()
    if not root.is_dir():
        raise PrerecError(f"{spec.text}: {root} is not a folder (expected DIR/<market>/<category>/reviews_*.json.gz)")
    markets = find_markets(root)
    if not markets:
        raise PrerecError(
            f"{spec.text}: no reviews_<market>_<category>.json.gz under {root} "
            "(expected DIR/<market>/<category>/)"
        )
    if spec.selector is not None:
        if spec.selector not in markets:
            raise PrerecError(f"{spec.text}: no market {spec.selector!r} under {root}; markets: {', '.join(markets)}")
        markets = {spec.selector: markets[spec.selector]}
    return [read_market(spec.name if spec.name and len(markets) == 1 else market, market, files, f"{root}#{market}")
            for market, files in markets.items()]
