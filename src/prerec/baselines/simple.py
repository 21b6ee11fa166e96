"""The training-free baselines (docs/evaluation.md): popularity (and popularity-repeat), text and text-last.

All three score the target's whole catalog from what a zero-shot model may use: the target's
own recent popularity (``popularity``) or the frozen item text embeddings (``text``,
``text-last``). Embeddings are L2-normalised, so cosine similarity is a dot product divided by
the norm of the query vector.
"""

from __future__ import annotations

import numpy as np
import torch

from prerec.data.prepared import PreparedDomain
from prerec.recommender import Recommender
from prerec.repeats import apply_repeat_mixture


class PopularityBaseline(Recommender):
    """The popularity head's input alone: items ranked by the L2 factor ``f2 = c_j / s_2`` of the
    request day's window (docs/method.md). Items outside the window all score 0 and tie."""

    name = "popularity"

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        days = np.asarray(days, dtype=np.int64)
        out = np.empty((len(days), target.n_items), dtype=np.float32)
        if target.popularity.days is None:  # one static window: every row is the same
            out[:] = target.factors(None, np.arange(target.n_items))[:, 1]
            return out
        for day in np.unique(days):
            out[days == day] = target.popularity.item_factors(int(day), target.n_items)[:, 1]
        return out


class PopularityRepeatBaseline(PopularityBaseline):
    """``popularity`` handled like a ``repeat_mixture`` run (:mod:`prerec.repeats`): the window's
    counts as the explore and repeat distributions (P ∝ c_j, so the logits are log f2), the mode
    weight r_h read from the history's own repeats. Items outside the window sit at log 1e-9."""

    name = "popularity-repeat"

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        f2 = super().score(target, histories, lengths, days)
        logits = torch.log(torch.as_tensor(np.maximum(f2, 1e-9), dtype=torch.float64))
        return apply_repeat_mixture(logits, histories, lengths).float().numpy()


def _history_mask(histories: np.ndarray) -> np.ndarray:
    return np.asarray(histories) >= 0


class TextMeanBaseline(Recommender):
    """Zero-shot by text alone: cosine(mean of the history's text embeddings, item embedding)."""

    name = "text"

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        emb = target.item_emb
        mask = _history_mask(histories)
        h = emb[np.where(mask, histories, 0)] * mask[..., None]  # (b, L, dim), padding zeroed
        query = h.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        return (query @ emb.T).astype(np.float32)


class TextLastBaseline(Recommender):
    """cosine(text embedding of the last history item, item embedding). The last item itself
    scores 1, so repeat purchases rank first."""

    name = "text-last"

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        lengths = np.asarray(lengths, dtype=np.int64)
        if (lengths < 1).any():
            raise ValueError("text-last needs a history of at least one item")
        last = np.asarray(histories)[np.arange(len(lengths)), lengths - 1]
        return (target.item_emb[last] @ target.item_emb.T).astype(np.float32)
