"""What the service needs from a model, and the adapter from a pre-trained PreRec run.

The service works on *embeddings*, not on a fixed catalog: an item may be added by text at
any time, and a history may hold the raw text of an item no catalog has. So it asks the model
for four pieces, each a pure function of its inputs (zero-shot mode, SPEC.md section 4):

- ``embed_texts(texts)``: the run's frozen text pipeline (encoder, then the run's embedding
  post-processing, if any) -> x ``(n, F)``;
- ``item_vectors(x)``: V = W x (no offsets: a target's items have none) -> ``(n, H)``;
- ``user_vectors(x, histories, lengths)``: U from histories of row numbers into ``x``
  (left-aligned, -1 padding; D = 0; only the last ``max_history`` items) -> ``(b, H)``;
- ``popularity(factors)``: Z = g(F) for factor rows ``(m, 4)`` -> ``(m,)``.

The score of item j for a user is then U . V_j + g(F_j(today)), the same as
``PreRecRecommender(run, mode="zero-shot").score`` (tested).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain


class ServingModel(ABC):
    """The four pieces of a model the service calls; implementations must be thread-safe."""

    max_history: int = 64

    @abstractmethod
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Item text embeddings x ``(n, F)`` float32, exactly as the catalog's are computed."""

    @abstractmethod
    def prepare(self, domain: Domain) -> PreparedDomain:
        """The domain with its catalog embedded (no training)."""

    @abstractmethod
    def item_vectors(self, emb: np.ndarray) -> np.ndarray:
        """V ``(n, H)`` float32 from embeddings ``(n, F)``."""

    @abstractmethod
    def user_vectors(self, emb: np.ndarray, histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """U ``(b, H)`` float32; ``histories`` ``(b, L)`` are row numbers into ``emb``, -1 padded."""

    @abstractmethod
    def popularity(self, factors: np.ndarray) -> np.ndarray:
        """g(F) ``(m,)`` float32 for factor rows ``(m, 4)``."""


class TorchServingModel(ServingModel):
    """A :class:`prerec.model.PreRec` module in zero-shot mode, with its run's text pipeline."""

    def __init__(self, module: object, embed: Callable[[list[str]], np.ndarray],
                 prepare: Callable[[Domain], PreparedDomain], name: str = "prerec") -> None:
        import torch

        self._torch = torch
        self.module = module
        self.module.eval()
        self._embed = embed
        self._prepare = prepare
        self._embed_lock = threading.Lock()  # text encoders are not promised to be thread-safe
        self.name = name
        self.max_history = int(module.cfg.max_history)
        self.device = next(module.parameters()).device

    @classmethod
    def from_run(cls, run_dir: str | Path) -> TorchServingModel:
        """Load a run saved by ``prerec pretrain`` (the model is loaded once)."""
        from prerec.training.run import load_run

        run = load_run(run_dir, device="cpu")

        def embed(texts: list[str]) -> np.ndarray:
            return run.transform.apply(run.encoder.encode(texts))

        model = cls(run.model, embed, run.prepare, name=str(run_dir))
        model.run = run
        return model

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, int(self.module.cfg.text_dim)), np.float32)
        with self._embed_lock:
            return np.ascontiguousarray(self._embed(list(texts)), dtype=np.float32)

    def prepare(self, domain: Domain) -> PreparedDomain:
        with self._embed_lock:
            return self._prepare(domain)

    def _tensor(self, x: np.ndarray):
        return self._torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def item_vectors(self, emb: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            v = self.module.item_vectors(self._tensor(np.asarray(emb, np.float32)), None)
        return v.float().cpu().numpy()

    def user_vectors(self, emb: np.ndarray, histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        torch = self._torch
        histories = np.asarray(histories, np.int64)
        lengths = np.asarray(lengths, np.int64)
        L = self.max_history
        if histories.shape[1] > L:  # keep the last L items of each (left-aligned) history
            start = np.maximum(lengths - L, 0)
            cols = start[:, None] + np.arange(L)[None, :]
            histories = np.take_along_axis(histories, np.minimum(cols, histories.shape[1] - 1), 1)
            lengths = np.minimum(lengths, L)
            histories = np.where(np.arange(L)[None, :] < lengths[:, None], histories, -1)
        width = max(int(lengths.max()) if len(lengths) else 1, 1)
        histories = histories[:, :width]
        with torch.inference_mode():
            V = self.module.item_vectors(self._tensor(np.asarray(emb, np.float32)), None)
            hist = self._tensor(histories)
            h = torch.where((hist >= 0).unsqueeze(-1), V[hist.clamp(min=0)], torch.zeros((), device=V.device))
            u = self.module.user_vectors(h, self._tensor(lengths), None)
        return u.float().cpu().numpy()

    def popularity(self, factors: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            z = self.module.popularity(self._tensor(np.asarray(factors, np.float32)))
        return z.float().cpu().numpy().reshape(-1)
