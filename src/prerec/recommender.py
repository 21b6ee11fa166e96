"""The one small interface every model implements (in the spirit of ``implicit``).

Batch-first: a batch is a left-aligned history matrix ``(b, L)`` of catalog indices padded
with -1, its lengths ``(b,)`` and the day of each request ``(b,)`` (whose popularity factors
apply). ``score`` returns the full score matrix ``(b, n_items)`` over the target's catalog;
``recommend`` the top ``k`` item indices and their scores. Evaluation, the experiment runner
and the service only ever use these two methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from prerec.data.prepared import PreparedDomain


class Recommender(ABC):
    """Scores every catalog item of a prepared domain for a batch of histories."""

    name: str = "recommender"

    def fit(self, sources: list[PreparedDomain], target: PreparedDomain | None = None) -> Recommender:
        """Train (if the model trains at all). Default: nothing to learn."""
        return self

    @abstractmethod
    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        """Scores ``(b, n_items)`` float32 for each history over the target's whole catalog."""

    def recommend(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
                  days: np.ndarray, k: int = 10, exclude_seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` catalog indices ``(b, k)`` and their scores, best first."""
        scores = np.array(self.score(target, histories, lengths, days), dtype=np.float32, copy=True)
        if exclude_seen:
            rows = np.repeat(np.arange(len(histories)), histories.shape[1])
            cols = histories.reshape(-1)
            keep = cols >= 0
            scores[rows[keep], cols[keep]] = -np.inf
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        ids = np.take_along_axis(top, order, axis=1)
        return ids, np.take_along_axis(top_scores, order, axis=1)
