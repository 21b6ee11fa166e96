"""Inference modes of a pre-trained PreRec run (SPEC.md section 4) and fine-tuning.

- ``zero-shot`` (the causal intervention do(D)): D = 0, the item offsets dropped, the
  popularity head fed with the *target's* own factors on the request day;
- ``in-domain`` (a source domain, or a fine-tuned target): its D_k and offsets e_j on;
- ``zero-shot-mc``: scores averaged over draws of D, from the empirical distribution of the
  learned source D_k (``mc_source="empirical"``: each source domain weighted equally, the
  exact average when there are at most ``mc_draws`` sources) or from the prior
  N(0, 1/lambda_D) (``mc_source="prior"``).

:class:`PreRecRecommender` implements :class:`prerec.recommender.Recommender`;
:func:`finetune` trains on a target's first N training instances (incremental training; all
of them = full fine-tuning) and returns an in-domain recommender for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender

if TYPE_CHECKING:
    from prerec.training.run import Run

MODES = ("zero-shot", "in-domain", "zero-shot-mc")
MC_SOURCES = ("empirical", "prior")


class PreRecRecommender(Recommender):
    """A run's model scoring a target domain's whole catalog in one of the inference modes."""

    def __init__(self, run: Run, mode: str = "zero-shot", mc_draws: int = 16, mc_source: str = "empirical",
                 batch_size: int = 512, seed: int = 2023) -> None:
        if mode not in MODES:
            raise PrerecError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if mc_source not in MC_SOURCES:
            raise PrerecError(f"mc_source {mc_source!r}: expected one of {', '.join(MC_SOURCES)}")
        self.run = run
        self.model = run.model
        self.mode = mode
        self.mc_draws = int(mc_draws)
        self.mc_source = mc_source
        self.batch_size = int(batch_size)
        self.seed = seed
        self.name = {"zero-shot": "prerec", "in-domain": "prerec-in-domain", "zero-shot-mc": "prerec-mc"}[mode]
        self._items: dict[str, torch.Tensor] = {}
        self._pop: dict[tuple[str, int | None], torch.Tensor] = {}
        self._mc: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- pieces (also used by the service) ---------------------------------------------------

    def _domain_index(self, target: PreparedDomain) -> int:
        return self.run.domain_index(target.name)

    def _offset_rows(self, target: PreparedDomain) -> np.ndarray | None:
        """Offset row of each target item in in-domain mode (-1: the item has none)."""
        if self.mode != "in-domain" or self.model.offsets is None:
            return None
        return self.run.offset_rows(target.name, target.domain.item_ids)

    def clear_cache(self) -> None:
        self._items.clear()
        self._pop.clear()

    def item_vectors(self, target: PreparedDomain) -> np.ndarray:
        """V ``(n_items, H)`` float32 of the target's catalog (computed once per target)."""
        return self.item_tensor(target).float().cpu().numpy()

    def user_vectors(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """U ``(b, H)`` float32 for left-aligned histories (catalog indices, -1 padding)."""
        return self.user_tensor(target, histories, lengths).float().cpu().numpy()

    @torch.no_grad()
    def item_tensor(self, target: PreparedDomain) -> torch.Tensor:
        """V ``(n_items, H)`` on the model's device (cached per target)."""
        key = target.name
        if key not in self._items:
            self.model.eval()
            x = torch.from_numpy(np.ascontiguousarray(target.item_emb, dtype=np.float32)).to(self.device)
            rows = self._offset_rows(target)
            rows_t = torch.from_numpy(rows).to(self.device) if rows is not None else None
            self._items[key] = self.model.item_vectors(x, rows_t)
        return self._items[key]

    def _domain_draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(D draws (m, H), weights (m,)) for the Monte Carlo mode."""
        H = self.model.cfg.hidden_size
        if self.mc_source == "prior":
            g = torch.Generator().manual_seed(self.seed)
            lam = float(self.run.config.lambda_domain)
            d = torch.randn(self.mc_draws, H, generator=g) / lam**0.5
            return d.to(self.device), torch.full((self.mc_draws,), 1.0 / self.mc_draws, device=self.device)
        if self.model.domain is None:
            raise PrerecError("zero-shot-mc with mc_source='empirical' needs a model with a domain confounder")
        learned = self.model.domain.detach()[torch.as_tensor(self.run.trained_domain_indices(), device=self.device)]
        k = len(learned)
        if k <= self.mc_draws:  # the exact expectation over the empirical distribution
            return learned, torch.full((k,), 1.0 / k, device=self.device)
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randint(k, (self.mc_draws,), generator=g).to(self.device)
        return learned[pick], torch.full((self.mc_draws,), 1.0 / self.mc_draws, device=self.device)

    @torch.no_grad()
    def user_tensor(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
                    domain_vector: torch.Tensor | None = None) -> torch.Tensor:
        """U ``(b, H)`` on the model's device for left-aligned histories (-1 padding).

        ``domain_vector`` overrides D (used by the Monte Carlo mode); otherwise D = 0 in the
        zero-shot modes and D_k of the target in in-domain mode.
        """
        self.model.eval()
        V = self.item_tensor(target)
        hist = torch.as_tensor(np.asarray(histories, dtype=np.int64), device=self.device)
        L = self.model.cfg.max_history
        lens = torch.as_tensor(np.asarray(lengths, dtype=np.int64), device=self.device)
        if hist.shape[1] > L:  # keep the last L items of each history (left-aligned)
            start = (lens - L).clamp(min=0)
            idx = start[:, None] + torch.arange(L, device=self.device)[None, :]
            hist = torch.gather(hist, 1, idx.clamp(max=hist.shape[1] - 1))
            lens = lens.clamp(max=L)
            hist = torch.where(torch.arange(L, device=self.device)[None, :] < lens[:, None], hist,
                               torch.full_like(hist, -1))
        width = max(int(lens.max().item()) if len(lens) else 1, 1)
        hist = hist[:, :width]
        h = torch.where((hist >= 0).unsqueeze(-1), V[hist.clamp(min=0)], torch.zeros((), device=V.device))
        dvec = None
        if domain_vector is not None:
            dvec = domain_vector.expand(len(hist), -1)
        elif self.mode == "in-domain" and self.model.domain is not None:
            k = self._domain_index(target)
            if k >= 0:
                dvec = self.model.domain[k].expand(len(hist), -1)
        return self.model.user_vectors(h, lens, dvec)

    @torch.no_grad()
    def day_popularity(self, target: PreparedDomain, day: int | None) -> torch.Tensor:
        """Z over the whole catalog on ``day`` ``(n_items,)``: g evaluated once per distinct factor row."""
        if self.model.pop is None:
            return torch.zeros(target.n_items, device=self.device)
        key = (target.name, None if target.popularity.days is None else int(day))
        if key not in self._pop:
            self.model.eval()
            f = target.factors(key[1], np.arange(target.n_items))
            uniq, inv = np.unique(f, axis=0, return_inverse=True)
            z = self.model.popularity(torch.from_numpy(uniq).to(self.device))
            self._pop[key] = z[torch.from_numpy(inv.reshape(-1)).to(self.device)]
            if len(self._pop) > 4096:  # bound the cache
                self._pop.pop(next(iter(self._pop)))
        return self._pop[key]

    @torch.no_grad()
    def popularity_scores(self, target: PreparedDomain, days: np.ndarray | int | None,
                          items: np.ndarray) -> np.ndarray:
        """Z for each (day, item) pair ``(n,)`` float32."""
        items = np.asarray(items, dtype=np.int64)
        if self.model.pop is None:
            return np.zeros(len(items), dtype=np.float32)
        f = target.factors(days, items)
        uniq, inv = np.unique(f, axis=0, return_inverse=True)
        z = self.model.popularity(torch.from_numpy(uniq).to(self.device)).cpu().numpy()
        return z[inv.reshape(-1)].astype(np.float32)

    # ---- the Recommender interface -----------------------------------------------------------

    @torch.no_grad()
    def score_tensor(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
                     days: np.ndarray) -> torch.Tensor:
        """Scores ``(b, n_items)`` as a tensor on the model's device (one chunk)."""
        V = self.item_tensor(target)
        if self.mode == "zero-shot-mc":
            draws, weights = self._domain_draws()
            s = None
            for d, w in zip(draws, weights):
                part = self.user_tensor(target, histories, lengths, domain_vector=d) @ V.T * w
                s = part if s is None else s + part
        else:
            s = self.user_tensor(target, histories, lengths) @ V.T
        if self.model.pop is not None:
            days = np.broadcast_to(np.asarray(days if days is not None else -1, dtype=np.int64), (len(s),))
            for day in np.unique(days):
                rows = torch.from_numpy(np.flatnonzero(days == day)).to(s.device)
                s[rows] += self.day_popularity(target, int(day))
        return s

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        histories = np.asarray(histories, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        days = np.broadcast_to(np.asarray(days if days is not None else -1, dtype=np.int64), (len(histories),))
        out = np.empty((len(histories), target.n_items), dtype=np.float32)
        for a in range(0, len(histories), self.batch_size):
            b = a + self.batch_size
            out[a:b] = self.score_tensor(target, histories[a:b], lengths[a:b], days[a:b]).float().cpu().numpy()
        return out


def finetune(run: Run, target: PreparedDomain, n_instances: int | None = None, *, lr: float = 1e-4,
             epochs: int = 25, patience: int = 3, batch_size: int | None = None, mode: str | None = None,
             valid_max_instances: int | None = None, progress: bool = False,
             log: Callable[[dict], None] | None = None) -> PreRecRecommender:
    """Incremental training / fine-tuning on ``target`` (SPEC.md section 4).

    Starts from the run's weights, adds a *fresh* domain confounder for the target (starting at
    0) and new offsets for its items (same prior), trains on the first ``n_instances`` target
    training instances (``None``: all = full fine-tuning) with Adam at ``lr``, no schedule, at
    most ``epochs`` epochs, early stopping (``patience``) on the target's validation r-NDCG@K%.
    Returns an in-domain recommender for the target (its run is a new in-memory run).
    """
    from prerec.training.finetune import finetune_run

    new_run = finetune_run(run, target, n_instances, lr=lr, epochs=epochs, patience=patience,
                           batch_size=batch_size, mode=mode, valid_max_instances=valid_max_instances,
                           progress=progress, log=log)
    return PreRecRecommender(new_run, mode="in-domain", batch_size=run.config.eval_batch_size)
