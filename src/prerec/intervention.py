"""Inference modes of a pre-trained run: what the causal intervention sets D and e to.

- ``zero-shot`` (do(D), realised as D = 0): the item offsets dropped, the popularity head fed
  with the *target's* own factors on the request day; items the run knows by a shared identity
  keep it (a_v), the others are text only; with a transition head (:mod:`prerec.transitions`)
  beta log(1 + T) adds what the sources' logs say follows the history's last items; with
  ``repeat_mixture`` (:mod:`prerec.repeats`) the history's own items are placed by the
  repeat/explore mixture (every mode);
- ``in-domain`` (a source domain, or a fine-tuned target): its D_k and offsets e_j on;
- ``auto``: ``in-domain`` for a domain the run has learned (a source, or a target it was
  fine-tuned on: ``prerec finetune``), ``zero-shot`` for any other (what a service wants);
- with ``taste_calibration`` tau > 0, a zero-shot domain's user part U is scaled by
  min(1, (d_target + 2 se) / (tau d_sources)), d the text's taste signal (:mod:`prerec.text.taste`) read
  from the target's log when it is first scored (:meth:`Intervention.observe`);
- ``zero-shot-mc``: the user tower averaged over draws of D, from the empirical distribution of
  the learned source D_k (``mc_source="empirical"``: each source domain weighted equally, the
  exact average when there are at most ``mc_draws`` sources) or from the prior N(0, 1/lambda_D)
  (``mc_source="prior"``).

docs/method.md ("Inference") states the modes as equations. :class:`Intervention` turns a mode
into the draws of D and the offset rows the :class:`prerec.scoring.Scorer` uses;
:class:`PreRecRecommender` is PreRec behind the :class:`prerec.recommender.Recommender` interface.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from prerec.constants import MC_SEED
from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender
from prerec.repeats import apply_repeat_mixture
from prerec.run import Run
from prerec.scoring import DomainDraws, Scorer, last_items
from prerec.text.taste import MIN_USERS, text_weight
from prerec.transitions import TransitionTable

log = logging.getLogger(__name__)

INFERENCE_MODES = ("zero-shot", "in-domain", "zero-shot-mc", "auto")
MC_SOURCES = ("empirical", "prior")
MODEL_NAMES = {"zero-shot": "prerec", "in-domain": "prerec-in-domain", "zero-shot-mc": "prerec-mc", "auto": "prerec"}


class Intervention:
    """The values of D and e one inference mode uses for a run."""

    def __init__(self, run: Run, inference: str = "zero-shot", mc_draws: int = 16, mc_source: str = "empirical",
                 seed: int = MC_SEED) -> None:
        if inference not in INFERENCE_MODES:
            raise PrerecError(f"inference mode {inference!r}: expected one of {', '.join(INFERENCE_MODES)}")
        if mc_source not in MC_SOURCES:
            raise PrerecError(f"mc_source {mc_source!r}: expected one of {', '.join(MC_SOURCES)}")
        self.run, self.inference = run, inference
        self.mc_draws, self.mc_source, self.seed = int(mc_draws), mc_source, seed
        self._mc: DomainDraws | None = None
        self._weights: dict[str, float] = {}

    def mode_for(self, domain: str | None) -> str:
        """The mode a domain is scored in: ``auto`` resolved by whether the run has learned it."""
        if self.inference != "auto":
            return self.inference
        return "in-domain" if domain is not None and self.run.source(domain) is not None else "zero-shot"

    def offset_rows(self, name: str, item_ids: np.ndarray) -> np.ndarray | None:
        """Offset row of each item in in-domain mode (-1: the item has none); ``None`` otherwise."""
        if self.mode_for(name) != "in-domain" or self.run.model.offsets is None:
            return None
        return self.run.offset_rows(name, item_ids)

    def identity_rows(self, domain: Domain) -> np.ndarray | None:
        """Identity row of each catalog item (every mode: identity is not a domain bias)."""
        return self.run.identity_rows(domain)

    def observe(self, name: str, prepared: PreparedDomain) -> None:
        """Read the taste signal of a domain scored zero-shot from its training users' log (once
        per name; only with ``taste_calibration`` on). Every caller that scores a prepared domain
        calls it first, so evaluation, validation and the service weigh U.V alike."""
        tau = float(self.run.model.cfg.taste_calibration)
        if tau <= 0 or name in self._weights or self.mode_for(name) == "in-domain":
            return
        sources = self.run.source_taste_signal()
        if sources is None:
            log.warning("taste_calibration: no source of this run has a readable taste signal (none has %d "
                        "training users with two distinct items); U.V keeps its full weight on %s", MIN_USERS, name)
            self._weights[name] = 1.0
            return
        target = prepared.taste
        weight = text_weight(target, sources, tau)
        if target is None or not target.readable:
            log.debug("taste_calibration: %s has too small a log to read a taste signal from (fewer than %d "
                      "training users with two distinct items); U.V keeps its full weight", name, MIN_USERS)
        else:
            log.debug("taste signal of %s: %.3f ± %.3f over %d users (sources %.3f, tau %g): U.V weight %.3f",
                      name, target.value, target.se, target.users, sources, tau, weight)
        self._weights[name] = weight

    def text_weight(self, domain: str | None) -> float:
        """The factor on U (and so on U.V) for ``domain``: 1 in-domain or with the key off."""
        if float(self.run.model.cfg.taste_calibration) <= 0 or self.mode_for(domain) == "in-domain":
            return 1.0
        if domain not in self._weights:
            raise PrerecError(f"taste_calibration: domain {domain!r} is scored before its taste signal was "
                              "read (Intervention.observe with its prepared domain)")
        return self._weights[domain]

    def draws(self, domain: str | None) -> DomainDraws:
        """The domain vectors the user tower is averaged over, with their weights (times the
        domain's :meth:`text_weight`)."""
        model = self.run.model
        mode = self.mode_for(domain)
        if mode == "in-domain":
            k = self.run.domain_index(domain)
            return [(None if model.domain is None else model.domain[k].detach(), 1.0)]
        scale = self.text_weight(domain)
        if mode == "zero-shot":
            return [(None, scale)]
        if self._mc is None:
            d, w = self.monte_carlo_draws()
            self._mc = [(d[i], float(w[i])) for i in range(len(d))]
        return self._mc if scale == 1.0 else [(d, w * scale) for d, w in self._mc]

    def monte_carlo_draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(D draws (m, H), weights (m,)) for the Monte Carlo mode."""
        model = self.run.model
        H = model.cfg.hidden_size
        if self.mc_source == "prior":
            g = torch.Generator().manual_seed(self.seed)
            lam = float(self.run.config.lambda_domain)
            d = torch.randn(self.mc_draws, H, generator=g) / lam**0.5
            return d, torch.full((self.mc_draws,), 1.0 / self.mc_draws)
        if model.domain is None:
            raise PrerecError("zero-shot-mc with mc_source='empirical' needs a model with a domain confounder")
        learned = model.domain.detach().cpu()[torch.as_tensor(self.run.trained_domain_indices())]
        k = len(learned)
        if k <= self.mc_draws:  # the exact expectation over the empirical distribution
            return learned, torch.full((k,), 1.0 / k)
        g = torch.Generator().manual_seed(self.seed)
        pick = torch.randint(k, (self.mc_draws,), generator=g)
        return learned[pick], torch.full((self.mc_draws,), 1.0 / self.mc_draws)


class PreRecRecommender(Recommender):
    """A run's model scoring a target domain's whole catalog in one of the inference modes."""

    def __init__(self, run: Run, inference: str = "zero-shot", mc_draws: int = 16, mc_source: str = "empirical",
                 batch_size: int = 512, seed: int = MC_SEED, transitions: bool = True) -> None:
        self.run = run
        self.transitions = run.transitions if transitions else None
        self.intervention = Intervention(run, inference, mc_draws, mc_source, seed)
        self.scorer = Scorer(run.model, self.intervention.draws)
        self.inference = inference
        self.batch_size = int(batch_size)
        self.name = MODEL_NAMES[inference]
        self._vectors: dict[str, torch.Tensor] = {}
        self._pop: dict[tuple[str, int | None], torch.Tensor] = {}
        self._tables: dict[str, TransitionTable | None] = {}

    def clear_cache(self) -> None:
        self._vectors.clear()
        self._pop.clear()
        self._tables.clear()

    def transition_table(self, target: PreparedDomain) -> TransitionTable | None:
        """The transition head's counts over the target's catalog (cached per target); ``None``
        without a head or when the target declares no shared key space."""
        if self.transitions is None:
            return None
        if target.name not in self._tables:
            self._tables[target.name] = self.transitions.table(self.intervention.identity_rows(target.domain))
        return self._tables[target.name]

    def item_tensor(self, target: PreparedDomain) -> torch.Tensor:
        """V ``(n_items, H)`` of the target's catalog on the model's device (cached per target)."""
        self.intervention.observe(target.name, target)
        if target.name not in self._vectors:
            rows = self.intervention.offset_rows(target.name, target.domain.item_ids)
            identity = self.intervention.identity_rows(target.domain)
            self._vectors[target.name] = self.scorer.item_vectors(target.item_emb, rows, identity)
        return self._vectors[target.name]

    def day_popularity(self, target: PreparedDomain, day: int | None) -> torch.Tensor:
        """Z over the whole catalog on ``day`` ``(n_items,)`` (cached per target and day)."""
        key = (target.name, None if not target.popularity.timed else int(day))
        if key not in self._pop:
            z = self.scorer.popularity_scores(target.popularity, key[1], target.n_items).scores
            self._pop[key] = torch.from_numpy(z).to(self.scorer.device)
            if len(self._pop) > 4096:  # bound the cache
                self._pop.pop(next(iter(self._pop)))
        return self._pop[key]

    def score_tensor(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
                     days: np.ndarray | None) -> torch.Tensor:
        """Scores ``(b, n_items)`` as a tensor on the model's device (one chunk)."""
        V = self.item_tensor(target)
        s = self.scorer.user_vectors(V, histories, lengths, target.name) @ V.T
        if self.run.model.pop is not None:
            days = np.broadcast_to(np.asarray(days if days is not None else -1, dtype=np.int64), (len(s),))
            for day in np.unique(days):
                rows = torch.from_numpy(np.flatnonzero(days == day)).to(s.device)
                s[rows] += self.day_popularity(target, int(day))
        table = self.transition_table(target)
        if table is not None:
            self.transitions.add_to(s, table, histories, lengths)
        if self.run.model.cfg.repeat_mixture:
            apply_repeat_mixture(s, *last_items(histories, lengths, self.run.model.cfg.max_history))
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
