"""How much a domain's item texts say about its users' taste, read from its log without labels.

    taste_signal = (within - across) / sd(across)

``within`` is the mean over users (each with at least two distinct items, each weighing the
same) of the mean cosine between two *distinct* items of the user's sequence; ``across`` the
mean cosine between two interactions drawn independently from the log's user-uniform marginal
(a user uniformly, then one of the user's interactions uniformly), ``sd(across)`` its standard
deviation. A domain whose users' items are no closer in text than two random interactions'
(Last.fm's artist names: 0.15, against 0.4-1.1 for shops) gives a text tower little to go on.

``taste_calibration`` (a model key, :meth:`prerec.intervention.Intervention.observe`) compares
a zero-shot target's signal with the trained sources' and scales U.V down when the target's is
much weaker. A small log gives a noisy signal (Online Retail's countries with 3 to 40 such users
read anywhere in -0.2..0.4), so the signal needs ``MIN_USERS`` users, comes with its standard error
over them, and the target is judged by its upper bound ``value + 2 se``: U.V loses weight only
where the log shows clearly that the text says little. Everything is exact (no sampling): the within-user mean by each user's item sum,
|sum x|^2 = sum_i sum_j x_i . x_j; the across mean and variance by the marginal's first and second
moments, m = sum_i p_i x_i and M = sum_i p_i x_i x_i^T: E[x.y] = m.m, E[(x.y)^2] = tr(M M).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prerec.data.domain import Sequences

UPPER_BOUND_Z = 2.0  # the target is judged by value + 2 se (about a 98% one-sided upper bound)
MIN_USERS = 30  # fewer users with two distinct items: no signal (their spread is no standard error)


@dataclass(frozen=True)
class TasteSignal:
    """A domain's taste signal, its standard error (over users) and the users it was read from."""

    value: float
    se: float
    users: int

    @property
    def upper(self) -> float:
        return self.value + UPPER_BOUND_Z * self.se

    @property
    def readable(self) -> bool:
        """Read from enough users (``MIN_USERS``) for its standard error to mean something."""
        return self.users >= MIN_USERS


def taste_signal(item_emb: np.ndarray, sequences: Sequences) -> TasteSignal | None:
    """The standardised gap between same-user and random-pair text similarity (see the module).

    ``item_emb`` ``(n_items, F)`` in the space the model reads (any scale: rows are normalised);
    ``sequences`` the domain's log. ``None`` when it is undefined: fewer than two users with two
    distinct items, or every interaction on one item; with fewer than ``MIN_USERS`` such users it
    is returned but not ``readable``. The standard error is that of the mean over
    users of their within-user similarity (the across moments are exact and far less noisy).
    """
    x = np.asarray(item_emb, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    lengths = sequences.lengths
    users = np.repeat(np.arange(len(lengths)), lengths)
    if not len(users):
        return None

    pairs = np.unique(np.stack([users, sequences.items]), axis=1)  # distinct (user, item), by user
    distinct = np.bincount(pairs[0], minlength=len(lengths))
    starts = np.concatenate([[0], np.cumsum(distinct)[:-1]])
    sums = np.add.reduceat(x[pairs[1]], starts[distinct > 0], axis=0)
    n = distinct[distinct > 0].astype(np.float64)
    keep = n >= 2
    if keep.sum() < 2:
        return None
    per_user = (np.einsum("ij,ij->i", sums, sums)[keep] - n[keep]) / (n[keep] * (n[keep] - 1))

    active = lengths > 0
    p = np.bincount(sequences.items, weights=(1.0 / np.where(active, lengths, 1))[users] / active.sum(),
                    minlength=len(x))
    seen = np.flatnonzero(p > 0)
    xs, ps = x[seen], p[seen]
    m = ps @ xs
    M = (xs * ps[:, None]).T @ xs
    mean = float(m @ m)
    var = float(np.sum(M * M)) - mean**2
    if var <= 1e-12:
        return None
    sd = var**0.5
    return TasteSignal(float((per_user.mean() - mean) / sd), float(per_user.std(ddof=1) / len(per_user) ** 0.5 / sd),
                       len(per_user))


def text_weight(target: TasteSignal | None, sources: float, tau: float) -> float:
    """The factor ``taste_calibration`` = ``tau`` puts on a zero-shot target's U.V:
    min(1, upper bound / (tau x the sources' signal)), floored at 0; 1 with the key off, with no
    readable target signal, or when the sources' own signal is not positive (nothing to compare)."""
    if tau <= 0 or target is None or not target.readable or sources <= 0:
        return 1.0
    return float(np.clip(target.upper / (tau * sources), 0.0, 1.0))
