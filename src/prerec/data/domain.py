"""A domain: one market or platform, with its interaction log and its item catalog.

Every reader ends in :func:`build_domain`, which validates and normalises what the reader
found, so that the rest of the system sees one shape:

- ``interactions``: columns ``user_id`` (str), ``item_id`` (str), ``timestamp`` (nullable
  Int64, unix seconds), grouped by user, each user's rows in time order (ties and missing
  timestamps keep file order);
- ``texts``: item_id -> text for every item of the catalog (the items that occur in the log);
  an item the source gave no text gets ``""`` and is counted in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from prerec.errors import PrerecError

SECONDS_PER_DAY = 86400
NO_DAY = -1  # the day of an interaction in a domain without timestamps


@dataclass
class DataReport:
    """What a reader read, dropped and resolved, so nothing disappears silently."""

    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    items_without_text: int = 0
    conflicting_texts: int = 0
    texts_outside_log: int = 0
    notes: list[str] = field(default_factory=list)

    def drop(self, rule: str, count: int) -> None:
        self.dropped[rule] = self.dropped.get(rule, 0) + int(count)


@dataclass(frozen=True)
class Sequences:
    """Users' time-ordered item sequences in CSR form (no Python object per interaction).

    ``items`` are indices into the domain's ``item_ids``; ``days`` are
    ``floor(unix_seconds / 86400)``, or ``NO_DAY`` where the domain has no timestamps.
    """

    users: np.ndarray  # (n_users,) str
    offsets: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (n_interactions,) int64
    days: np.ndarray  # (n_interactions,) int64

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_interactions(self) -> int:
        return int(self.offsets[-1])

    def sequence(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items and days of the k-th user."""
        a, b = self.offsets[k], self.offsets[k + 1]
        return self.items[a:b], self.days[a:b]

    def subset(self, rows: np.ndarray) -> Sequences:
        """The sequences of the given users (positions into ``users``), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # gather index of every interaction of the chosen users, vectorised
        starts = np.repeat(self.offsets[rows], lengths)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        take = starts + within
        return Sequences(self.users[rows], offsets, self.items[take], self.days[take])


@dataclass
class Domain:
    """One domain: its name, its normalised log and its catalog texts."""

    name: str
    interactions: pd.DataFrame
    texts: pd.Series  # index: item_id (str), values: text (str), the catalog in a fixed order
    report: DataReport = field(default_factory=DataReport)
    source: str = ""
    # the item key space the ids belong to, when they are shared with other domains (Online
    # Retail's countries, XMarket's markets); None: ids mean nothing outside this domain
    id_space: str | None = None

    @property
    def has_time(self) -> bool:
        return bool(self.interactions["timestamp"].notna().any())

    @cached_property
    def item_ids(self) -> np.ndarray:
        """The catalog: every item of the log, sorted (the per-domain item id map)."""
        return self.texts.index.to_numpy(dtype=object)

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item: k for k, item in enumerate(self.item_ids)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return int(self.interactions["user_id"].nunique())

    def encode_items(self, item_ids: list[str] | np.ndarray, *, what: str = "item") -> np.ndarray:
        """Map external item ids to catalog indices; an unknown id is a clear error."""
        index = self.item_index
        out = np.empty(len(item_ids), dtype=np.int64)
        for k, item in enumerate(item_ids):
            j = index.get(str(item))
            if j is None:
                raise PrerecError(f"{what} {item!r} is not in the catalog of domain {self.name!r}")
            out[k] = j
        return out

    @cached_property
    def sequences(self) -> Sequences:
        """Every user's sequence (users in order of first appearance in the normalised log)."""
        df = self.interactions
        users, user_codes = np.unique(df["user_id"].to_numpy(dtype=object), return_inverse=True)
        # interactions are grouped by user already; keep group order = order of first row
        change = np.r_[True, user_codes[1:] != user_codes[:-1]]
        starts = np.flatnonzero(change)
        offsets = np.r_[starts, len(df)].astype(np.int64)
        item_codes = pd.Index(self.item_ids).get_indexer(df["item_id"].to_numpy(dtype=object))
        ts = df["timestamp"]
        if ts.notna().all():
            days = (ts.to_numpy(dtype=np.int64) // SECONDS_PER_DAY).astype(np.int64)
        else:
            days = np.full(len(df), NO_DAY, dtype=np.int64)
        return Sequences(users[user_codes[starts]], offsets, item_codes.astype(np.int64), days)

    def stats(self) -> dict[str, object]:
        """The figures ``prerec data stats`` prints."""
        df = self.interactions
        span: str = "none (no timestamps)"
        if self.has_time:
            t0 = pd.to_datetime(int(df["timestamp"].min()), unit="s")
            t1 = pd.to_datetime(int(df["timestamp"].max()), unit="s")
            span = f"{t0:%Y-%m-%d} .. {t1:%Y-%m-%d} ({(t1 - t0).days + 1} days)"
        with_text = int((self.texts.str.len() > 0).sum())
        return {
            "domain": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(df),
            "time span": span,
            "text coverage": f"{with_text}/{self.n_items} ({100.0 * with_text / max(self.n_items, 1):.1f}%)",
            "rows read": self.report.rows_read,
            "dropped": dict(self.report.dropped),
            "conflicting texts resolved": self.report.conflicting_texts,
        }


def resolve_texts(items: pd.Series, texts: pd.Series) -> tuple[pd.Series, pd.Index]:
    """One text per item: the most frequent non-empty one, ties to the lexicographically smallest.

    Returns the resolved ``item_id -> text`` series and the ids of items that had several texts.
    """
    frame = pd.DataFrame({"item_id": items.astype(str).to_numpy(), "text": texts.to_numpy(dtype=object)})
    frame["text"] = frame["text"].where(frame["text"].notna(), "").astype(str).str.strip()
    frame = frame[(frame["text"] != "") & (frame["text"].str.lower() != "nan")]
    counts = frame.groupby(["item_id", "text"], sort=False).size().rename("n").reset_index()
    n_distinct = counts.groupby("item_id")["text"].size()
    conflicts = n_distinct.index[n_distinct.to_numpy() > 1]
    counts = counts.sort_values(["item_id", "n", "text"], ascending=[True, False, True], kind="stable")
    best = counts.drop_duplicates("item_id", keep="first").set_index("item_id")["text"]
    return best, conflicts


def refuse_unparsable(given: pd.Series, parsed: pd.Series, where: str, expected: str = "") -> None:
    """A clear error naming the first row whose timestamp was given but could not be parsed."""
    bad = given.notna() & parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        hint = f" ({expected})" if expected else ""
        raise PrerecError(f"{where}: unparsable timestamp {given.iloc[row]!r} in row {row + 1}{hint}")


def parse_timestamps(values: pd.Series, *, where: str) -> pd.Series:
    """Unix seconds (nullable Int64) from integers, floats, datetimes or date strings."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dt = values
    elif pd.api.types.is_numeric_dtype(values):
        num = pd.to_numeric(values, errors="coerce")
        refuse_unparsable(values, num, where)
        if num.notna().any() and float(num.max()) > 1e11:  # milliseconds
            num = num // 1000
        return num.astype("Float64").floordiv(1).astype("Int64")
    else:
        text = values.astype("string")
        digits = text.str.fullmatch(r"-?\d+(\.\d+)?").fillna(False).astype(bool)
        if bool(digits[text.notna()].all()):
            return parse_timestamps(pd.to_numeric(text), where=where)
        dt = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        refuse_unparsable(text, dt, where, "expected unix seconds or a date such as 2011-12-09 or 2011-12-09 12:50:00")
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_convert(None)
    secs = (dt - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    return secs.astype("Int64")


def build_domain(
    name: str,
    interactions: pd.DataFrame,
    texts: pd.DataFrame | None,
    *,
    source: str,
    report: DataReport | None = None,
    sort_by_time: bool = True,
) -> Domain:
    """Validate and normalise a reader's frames into a :class:`Domain`.

    ``interactions`` needs ``user_id`` and ``item_id`` and may have ``timestamp`` (already
    unix seconds). ``texts`` needs ``item_id`` and ``text``; repeated ids with different texts
    are resolved by :func:`resolve_texts` and counted.
    """
    report = report or DataReport()
    if not report.rows_read:
        report.rows_read = len(interactions)
    df = pd.DataFrame(
        {
            "user_id": interactions["user_id"],
            "item_id": interactions["item_id"],
            "timestamp": interactions.get("timestamp", pd.NA),
        }
    )
    missing = df["user_id"].isna() | df["item_id"].isna()
    if missing.any():
        report.drop("missing user_id or item_id", int(missing.sum()))
        df = df[~missing]
    df["user_id"] = df["user_id"].astype(str)
    df["item_id"] = df["item_id"].astype(str)
    df["timestamp"] = df["timestamp"].astype("Int64")
    has_ts = df["timestamp"].notna()
    if has_ts.any() and not has_ts.all():
        raise PrerecError(
            f"{source}: {int((~has_ts).sum())} of {len(df)} interactions have no timestamp; "
            "a domain needs timestamps on every row or on none"
        )
    if df.empty:
        raise PrerecError(f"{source}: domain {name!r} has no interactions left after cleaning")
    # group by user (order of first appearance), then time; stable, so ties keep file order
    first_seen = df.groupby("user_id", sort=False).ngroup()
    order_keys = [first_seen.to_numpy()]
    if sort_by_time and bool(has_ts.all()):
        order = np.lexsort((df["timestamp"].to_numpy(dtype=np.int64), order_keys[0]))
    else:
        order = np.argsort(order_keys[0], kind="stable")
    df = df.iloc[order].reset_index(drop=True)

    catalog_texts = _catalog_texts(np.sort(df["item_id"].unique()), texts, report)
    return Domain(name=name, interactions=df, texts=catalog_texts, report=report, source=source)


def _catalog_texts(catalog: np.ndarray, texts: pd.DataFrame | None, report: DataReport) -> pd.Series:
    """One text per catalog item (empty where none), counting conflicts and texts outside the log."""
    if texts is not None and len(texts):
        resolved, conflicts = resolve_texts(texts["item_id"], texts["text"])
        in_catalog = pd.Index(catalog)  # hash lookups (Series.isin on Arrow strings loops in Python)
        report.conflicting_texts += int((in_catalog.get_indexer(conflicts) >= 0).sum())
        report.texts_outside_log += int((in_catalog.get_indexer(resolved.index) < 0).sum())
    else:
        resolved = pd.Series(dtype=object)
    catalog_texts = resolved.reindex(catalog).fillna("").astype(str)
    catalog_texts.index = pd.Index(catalog, dtype=object, name="item_id")
    catalog_texts.name = "text"
    report.items_without_text = int((catalog_texts == "").sum())
    return catalog_texts
