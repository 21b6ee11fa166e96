"""Item-to-item transitions by shared item identity: the counts behind ``markov`` and PreRec's
transition head.

Over every user of every source domain, count how often item a is followed by item b
(consecutive items of a time-ordered sequence), items matched across domains only by their
declared key space (:mod:`prerec.data.identity`). A history h scores item j by

    T_h(j) = sum over l = 0 .. L-1 of 2^-l * count(h_{t-l} -> j)

(the last item weighs 1, the one before 1/2, ...; history items without an identity add nothing).
``markov`` ranks by T alone. PreRec's **transition head** adds beta * log(1 + T_h(j)) to its score
(docs/method.md, "Transition head"): what the sources' logs say about *which item follows which*
travels to a new domain the way the popularity head carries *how popular* an item is there, while
items no source has seen keep PreRec's text score. beta is fitted after pre-training on held-out
users (:mod:`prerec.training.transitions`), never on a target's test users.

Counts are kept as identity-coded pairs (``prev * V + next`` over a vocabulary of V identities)
and turned into a CSR table over one target's catalog when it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from prerec.checkpoint import load_tensors, save_tensors_atomic
from prerec.errors import PrerecError

DEFAULT_LAST = 5
TRANSITIONS_FILE = "transitions.safetensors"


@dataclass(frozen=True)
class TransitionTable:
    """Transition counts over one target's catalog in CSR form, plus the tie-breaking counts."""

    indptr: np.ndarray  # (n + 1,) int64
    indices: np.ndarray  # (nnz,) int64: next item
    counts: np.ndarray  # (nnz,) float64
    tie: np.ndarray  # (n,) int64


def consecutive_pairs(items: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) of every pair of consecutive items within a sequence of a CSR log."""
    if len(items) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    starts = np.zeros(len(items), dtype=bool)
    starts[offsets[:-1][offsets[:-1] < len(items)]] = True
    nxt = np.flatnonzero(~starts)
    nxt = nxt[nxt > 0]
    return items[nxt - 1], items[nxt]


def count_pairs(a: np.ndarray, b: np.ndarray, n: int, weights: np.ndarray | None = None) -> TransitionTable:
    """CSR of the counts of pairs (a, b) over ``n`` items (tie counts left empty)."""
    code = a.astype(np.int64) * n + b.astype(np.int64)
    uniq, inverse = np.unique(code, return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=len(uniq)).astype(np.float64)
    rows = uniq // n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return TransitionTable(indptr, uniq % n, counts, np.zeros(n, dtype=np.int64))


def identity_pairs(maps: dict[str, np.ndarray], domains: list, n_identity: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, counts) of the identity-coded transitions of ``domains`` (prepared or raw domains),
    ``maps[name]``: each catalog item's identity row (-1: none)."""
    codes = []
    for d in domains:
        seq = getattr(d, "domain", d).sequences
        a, b = consecutive_pairs(maps[d.name][seq.items], seq.offsets)
        keep = (a >= 0) & (b >= 0)
        codes.append(a[keep] * n_identity + b[keep])
    uniq, counts = np.unique(np.concatenate(codes) if codes else np.empty(0, np.int64), return_counts=True)
    return uniq.astype(np.int64), counts.astype(np.float64)


def catalog_table(codes: np.ndarray, counts: np.ndarray, n_identity: int, catalog_rows: np.ndarray,
                  extra: tuple[np.ndarray, np.ndarray] | None = None) -> TransitionTable:
    """The identity-coded counts as a table over a catalog (``catalog_rows``: each item's identity
    row, -1 for none); ``extra`` adds (previous, next) pairs already in catalog numbering."""
    n = len(catalog_rows)
    to_catalog = np.full(max(n_identity, 1), -1, dtype=np.int64)
    known = catalog_rows >= 0
    to_catalog[catalog_rows[known]] = np.flatnonzero(known)
    a, b = to_catalog[codes // max(n_identity, 1)], to_catalog[codes % max(n_identity, 1)]
    keep = (a >= 0) & (b >= 0)
    a, b, w = a[keep], b[keep], counts[keep]
    if extra is not None and len(extra[0]):
        a, b = np.concatenate([a, extra[0]]), np.concatenate([b, extra[1]])
        w = np.concatenate([w, np.ones(len(extra[0]))])
    return count_pairs(a, b, n, w)


def history_entries(table: TransitionTable, histories: np.ndarray, lengths: np.ndarray,
                    last: int = DEFAULT_LAST) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero T_h(j) of every row as (row, item, T) triples, one per (row, item)."""
    histories = np.asarray(histories, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(table.indptr) - 1
    rows, items, weights = [], [], []
    for lag in range(last):
        pos = lengths - 1 - lag
        ok = (pos >= 0) & (pos < histories.shape[1])
        r = np.flatnonzero(ok)
        rows.append(r)
        items.append(histories[r, pos[ok]])
        weights.append(np.full(len(r), 2.0 ** -lag))
    r, it, w = np.concatenate(rows), np.concatenate(items), np.concatenate(weights)
    valid = (it >= 0) & (it < n)
    r, it, w = r[valid], it[valid], w[valid]
    start, lens = table.indptr[it], table.indptr[it + 1] - table.indptr[it]
    within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    take = np.repeat(start, lens) + within
    code = np.repeat(r, lens) * n + table.indices[take]
    uniq, inv = np.unique(code, return_inverse=True)
    t = np.bincount(inv, weights=np.repeat(w, lens) * table.counts[take], minlength=len(uniq))
    return uniq // n, uniq % n, t


def transition_scores(table: TransitionTable, histories: np.ndarray, lengths: np.ndarray,
                      last: int = DEFAULT_LAST) -> np.ndarray:
    """T ``(b, n_items)`` float64, dense (the markov baseline's primary key)."""
    n = len(table.indptr) - 1
    rows, items, t = history_entries(table, histories, lengths, last)
    out = np.zeros((len(histories), n), dtype=np.float64)
    out[rows, items] = t
    return out


@dataclass
class TransitionHead:
    """beta * log(1 + T_h(j)) over the counts a run learned from (identity-coded pairs)."""

    codes: np.ndarray  # (m,) int64: prev * n_identity + next
    counts: np.ndarray  # (m,) float64
    n_identity: int
    beta: float = 0.0
    last: int = DEFAULT_LAST
    fitted: dict = field(default_factory=dict)  # how beta was chosen (written with the run)

    def table(self, catalog_rows: np.ndarray | None) -> TransitionTable | None:
        """The counts over a catalog (each item's identity row, -1: none); ``None`` when no item of
        the catalog has an identity (a domain that declares no shared key space)."""
        if catalog_rows is None or not (np.asarray(catalog_rows) >= 0).any():
            return None
        return catalog_table(self.codes, self.counts, self.n_identity, np.asarray(catalog_rows, np.int64))

    def terms(self, table: TransitionTable, histories: np.ndarray,
              lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, item, beta log(1 + T)) of every nonzero T_h(j)."""
        rows, items, t = history_entries(table, histories, lengths, self.last)
        return rows, items, self.beta * np.log1p(t)

    def add_to(self, scores: torch.Tensor, table: TransitionTable, histories: np.ndarray,
               lengths: np.ndarray) -> torch.Tensor:
        """scores += beta * log(1 + T), in place on a ``(b, n_items)`` tensor (and returned)."""
        if self.beta == 0.0:
            return scores
        rows, items, add = self.terms(table, histories, lengths)
        if len(add):
            scores.index_put_((torch.from_numpy(rows).to(scores.device), torch.from_numpy(items).to(scores.device)),
                              torch.from_numpy(add).to(scores.device, scores.dtype), accumulate=True)
        return scores

    def with_pairs(self, n_identity: int, prev: np.ndarray, nxt: np.ndarray) -> TransitionHead:
        """The head over a vocabulary grown to ``n_identity`` rows, plus the pairs (prev, next) in it."""
        old_prev, old_next = self.codes // max(self.n_identity, 1), self.codes % max(self.n_identity, 1)
        keep = (prev >= 0) & (nxt >= 0)
        code = np.concatenate([old_prev * n_identity + old_next, prev[keep] * n_identity + nxt[keep]])
        w = np.concatenate([self.counts, np.ones(int(keep.sum()))])
        uniq, inv = np.unique(code, return_inverse=True)
        return replace(self, codes=uniq.astype(np.int64), counts=np.bincount(inv, weights=w, minlength=len(uniq)),
                       n_identity=int(n_identity))

    def save(self, run_dir: str | Path) -> None:
        save_tensors_atomic(Path(run_dir) / TRANSITIONS_FILE,
                            {"codes": torch.from_numpy(self.codes), "counts": torch.from_numpy(self.counts)},
                            {"n_identity": self.n_identity, "beta": self.beta, "last": self.last,
                             "fitted": self.fitted})


def load_transition_head(run_dir: str | Path) -> TransitionHead | None:
    """The run's transition head, or ``None`` when it has none."""
    path = Path(run_dir) / TRANSITIONS_FILE
    if not path.exists():
        return None
    try:
        tensors, meta = load_tensors(path)
        return TransitionHead(tensors["codes"].numpy().astype(np.int64), tensors["counts"].numpy().astype(np.float64),
                              int(meta["n_identity"]), float(meta["beta"]), int(meta["last"]),
                              dict(meta.get("fitted", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise PrerecError(f"{path}: not a transition head ({exc})") from None
