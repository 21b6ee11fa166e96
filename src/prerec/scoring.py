"""The one place PreRec's scores are computed, for every inference mode and every caller.

    V_j = W x_j + a_id(j) (+ e_j in-domain)    item_vectors
    U   = n/(n+k) sum_d w_d f(V_hist + D_d)    user_vectors   (the intervention gives the draws d and
                                                          their weights w_d, times a zero-shot target's
                                                          taste weight; n the history's length, k
                                                          history_shrinkage)
    Z_j = g(F_j(day))                          popularity_scores
    s   = U . V_j + Z_j                        combine

Training validation, ``prerec evaluate`` (through :class:`prerec.intervention.PreRecRecommender`)
and the service (:class:`prerec.serving.model.ServingModel`, every retrieval backend) call these
functions; the formulas are in docs/method.md ("Inference"). A Monte Carlo average over draws of
D is an average of user vectors: U . V is linear in U, so sum_d w_d (U_d . V) = (sum_d w_d U_d) . V.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prerec.constants import PAD
from prerec.model import PreRec
from prerec.popularity import PopularityIndex

DomainDraws = Sequence[tuple[torch.Tensor | None, float]]


def last_items(histories: np.ndarray, lengths: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``limit`` entries of left-aligned, PAD-padded histories, trimmed to the widest row.

    Returns ``(histories (b, w), lengths (b,))`` with ``w = max(1, longest kept row)``.
    """
    histories = np.asarray(histories, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if histories.ndim != 2 or len(lengths) != len(histories):
        raise ValueError(f"histories {histories.shape} and lengths {lengths.shape} do not match")
    if histories.shape[1] > limit:
        start = np.maximum(lengths - limit, 0)
        cols = np.minimum(start[:, None] + np.arange(limit)[None, :], histories.shape[1] - 1)
        lengths = np.minimum(lengths, limit)
        histories = np.where(np.arange(limit)[None, :] < lengths[:, None],
                             np.take_along_axis(histories, cols, 1), PAD)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    return histories[:, :width], lengths


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, axis=0, return_inverse=True)`` for a 2-D array without NaN: the distinct rows
    in lexicographic order and each row's index among them.

    One ``lexsort`` over the columns; ``np.unique(axis=0)`` sorts rows as opaque records and was
    16x slower on a day's ~3e5 factor rows (benchmarks/scale.py, full-ranking evaluation).
    """
    a = np.asarray(a)
    if not len(a):
        return a[:0].copy(), np.zeros(0, np.int64)
    order = np.lexsort(a.T[::-1])  # by column 0, then column 1, ...
    rows = a[order]
    new = np.empty(len(a), dtype=bool)
    new[0] = True
    np.any(rows[1:] != rows[:-1], axis=1, out=new[1:])
    inv = np.empty(len(a), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return rows[new], inv


def combine(users, vectors, popularity):
    """s = U . V + Z for numpy arrays or torch tensors alike.

    ``vectors`` ``(n, H)`` shared by every user (``popularity`` ``(n,)`` or ``(b, n)``), or
    ``(b, c, H)``: each user's own candidates (``popularity`` ``(b, c)``).
    """
    if vectors.ndim == 3:
        return (vectors @ users[:, :, None])[:, :, 0] + popularity
    return users @ vectors.T + popularity


@dataclass(frozen=True)
class PopularityScores:
    """Z_j = g(F_j(day)) of every catalog item for one day.

    ``base`` is the score every item outside the day's window shares (g(0)); ``special`` the
    window's items, the only ones whose score may differ from it.
    """

    scores: np.ndarray  # (n_items,) float32
    base: float
    special: np.ndarray  # (m,) int64


class Scorer:
    """A model's V, U, g(F) and scores under one intervention (see :mod:`prerec.intervention`).

    ``draws(domain)`` returns the domain vectors to average the user tower over (``None`` means
    D = 0) with their weights.
    """

    def __init__(self, model: PreRec, draws: callable) -> None:
        self.model = model
        self.draws = draws
        self.max_history = int(model.cfg.max_history)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _tensor(self, a: np.ndarray | torch.Tensor, dtype=None) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.to(self.device)
        return torch.as_tensor(np.ascontiguousarray(a, dtype=dtype), device=self.device)

    @torch.no_grad()
    def item_vectors(self, x: np.ndarray | torch.Tensor, offset_rows: np.ndarray | None = None,
                     identity_rows: np.ndarray | None = None) -> torch.Tensor:
        """V ``(n, H)`` from text embeddings ``(n, F)``; ``offset_rows`` adds e_j and
        ``identity_rows`` the item identity a_v (-1: none)."""
        self.model.eval()
        rows = None if offset_rows is None else self._tensor(offset_rows, np.int64)
        ident = None if identity_rows is None else self._tensor(identity_rows, np.int64)
        return self.model.item_vectors(self._tensor(x, np.float32), rows, ident)

    @torch.no_grad()
    def user_vectors(self, vectors: np.ndarray | torch.Tensor, histories: np.ndarray, lengths: np.ndarray,
                     domain: str | None = None) -> torch.Tensor:
        """U ``(b, H)``: ``histories`` are rows of ``vectors`` (left-aligned, PAD-padded); only the
        last ``max_history`` count. ``domain`` is the target whose D the intervention decides.
        With ``history_shrinkage`` k > 0, U is scaled by n / (n + k) (n real history items): the
        user part of a short history counts less against the popularity head (inference only; the
        training loss uses the model's own U)."""
        self.model.eval()
        V = self._tensor(vectors, np.float32)
        hist, lens = last_items(histories, lengths, self.max_history)
        hist_t = self._tensor(hist)
        h = torch.where((hist_t >= 0).unsqueeze(-1), V[hist_t.clamp(min=0)], torch.zeros((), device=V.device))
        lens_t = self._tensor(lens)
        users = None
        for dvec, weight in self.draws(domain):
            d = None if dvec is None else dvec.to(V.device).expand(len(h), -1)
            u = self.model.user_vectors(h, lens_t, d)
            if weight != 1.0:
                u = u * weight
            users = u if users is None else users + u
        k = float(self.model.cfg.history_shrinkage)
        if k > 0:
            n = lens_t.to(users.dtype).unsqueeze(-1)
            users = users * (n / (n + k))
        return users

    @torch.no_grad()
    def popularity(self, factors: np.ndarray) -> np.ndarray:
        """g(F) ``(m,)`` float32 for factor rows ``(m, n_factors)``, evaluated once per distinct row."""
        factors = np.asarray(factors, dtype=np.float32).reshape(-1, self.model.cfg.n_factors)
        if self.model.pop is None or not len(factors):
            return np.zeros(len(factors), np.float32)
        self.model.eval()
        uniq, inv = unique_rows(factors)
        z = self.model.popularity(self._tensor(uniq)).float().cpu().numpy()
        return z[inv.reshape(-1)].astype(np.float32)

    def popularity_scores(self, index: PopularityIndex, day: int | None, n_items: int) -> PopularityScores:
        """Z over a catalog of ``n_items`` on ``day``: g(0) for every item outside the window.

        The factors are the model's own set (``popularity_factors``, saved with the run)."""
        cfg = self.model.cfg
        items, factors = index.window_factors(day, cfg.popularity_factors)
        z = self.popularity(np.vstack([np.zeros((1, cfg.n_factors), np.float32), factors]))
        scores = np.full(n_items, z[0], dtype=np.float32)
        scores[items] = z[1:]
        return PopularityScores(scores, float(z[0]), items)
