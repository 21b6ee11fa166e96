"""``sasrec-sources``: SASRec trained on the pooled source domains by shared item id, zero-shot.

What a practitioner opening a new market tries after counting transitions (``markov``): train
the project's SASRec (:mod:`prerec.baselines.sasrec`, RecBole's defaults, same network and
epoch loop) on the old markets' logs pooled into one, with items matched across domains only
through their declared key space (:mod:`prerec.data.identity`), and apply it to the new market
as it is.

- Vocabulary: the identity vocabulary over the sources (one embedding per (key space, item id));
  where no source declares shared ids, ``fit`` raises a :class:`~prerec.errors.PrerecError`
  saying why (a benchmark prints n/a). An item of a source without an identity (its domain
  declares no key space) is dropped from its user's sequence; how many is logged.
- Training instances: every (history, next item) instance of every user of every source domain
  (its training, validation and test users alike): the target never sees them, so nothing of
  the target's split leaks. Because all source users train, early stopping cannot use the
  sources' validation users; instead a seeded ``holdout`` fraction (5%) of the pooled source
  users (among those with two or more items with an identity) is held out of training, and the
  epoch is chosen on r-NDCG@1% over the whole vocabulary of at most ``eval_instances`` of their
  instances (a seeded sample). The target is never used for a choice.
- Scoring a target: its catalog is matched to the vocabulary (it must declare the sources' key
  space); history items without an identity are dropped (the rest left-aligned again); a
  catalog item with an identity scores U . E_id; one without (no source ever had it) gets the
  row's lowest score minus 1, so it ranks last and every score stays finite.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from prerec.baselines.sasrec import (
    SASRecConfig,
    SASRecNet,
    net_scores,
    resolve_device,
    train_net,
    validation_metric,
)
from prerec.data.domain import Sequences
from prerec.data.identity import Identity, build_identity, match_target
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.recommender import Recommender

log = logging.getLogger(__name__)
HOLDOUT = 0.05


def identity_sequences(seqs: Sequences, identity_of: np.ndarray) -> tuple[Sequences, int]:
    """``seqs`` with every item replaced by its identity (``identity_of[item]``); items without
    one (-1) are dropped. Returns the new sequences and how many items were dropped."""
    ids = identity_of[seqs.items]
    keep = ids >= 0
    owner = np.repeat(np.arange(len(seqs)), seqs.lengths)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner[keep], minlength=len(seqs)), out=offsets[1:])
    return Sequences(seqs.users, offsets, ids[keep], seqs.days[keep]), int((~keep).sum())


def pool_sequences(parts: list[Sequences], names: list[str]) -> Sequences:
    """One :class:`Sequences` of every user of ``parts`` (users named ``domain/user``)."""
    users = np.concatenate([np.array([f"{n}/{u}" for u in s.users], dtype=object) for s, n in zip(parts, names)])
    lengths = np.concatenate([s.lengths for s in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Sequences(users, offsets, np.concatenate([s.items for s in parts]).astype(np.int64),
                     np.concatenate([s.days for s in parts]).astype(np.int64))


def split_holdout(pooled: Sequences, fraction: float, rng: np.random.Generator) -> tuple[Sequences, Sequences]:
    """(training users, held-out users): a seeded ``fraction`` of the users with two or more
    items (at least one when there are two such users) is held out."""
    eligible = np.flatnonzero(pooled.lengths >= 2)
    n_hold = round(fraction * len(eligible))
    n_hold = max(n_hold, 1) if len(eligible) >= 2 and fraction > 0 else n_hold
    held = np.sort(rng.choice(eligible, n_hold, replace=False)) if n_hold else np.empty(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(pooled)), held)
    return pooled.subset(rest), pooled.subset(held)


def to_identity_histories(histories: np.ndarray, lengths: np.ndarray,
                          identity_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned catalog histories -> left-aligned identity histories: items without an
    identity (and anything past a row's length) are dropped, the rest keep their order."""
    hist = np.asarray(histories, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    real = (np.arange(hist.shape[1])[None, :] < lengths[:, None]) & (hist >= 0)
    ids = np.where(real, identity_of[np.where(real, hist, 0)], -1) if identity_of.size else np.full_like(hist, -1)
    keep = ids >= 0
    order = np.argsort(~keep, axis=1, kind="stable")  # kept items first, in their order
    return np.take_along_axis(ids, order, axis=1), keep.sum(axis=1).astype(np.int64)


class SASRecSources(Recommender):
    """``sasrec-sources``: SASRec on the pooled sources by shared item id, applied zero-shot."""

    name = "sasrec-sources"

    def __init__(self, config: SASRecConfig | None = None, holdout: float = HOLDOUT) -> None:
        if not 0.0 <= float(holdout) < 1.0:
            raise PrerecError(f"sasrec-sources: holdout={holdout!r}: expected a fraction in [0, 1)")
        self.config = config or SASRecConfig()
        self.holdout = float(holdout)
        self.net: SASRecNet | None = None
        self.device = torch.device("cpu")
        self.identity: Identity | None = None
        self.sources: list[str] = []
        self.history: list[dict[str, float]] = []
        self.stats: dict[str, int] = {}

    def fit(self, sources: list[PreparedDomain], target: PreparedDomain | None = None) -> SASRecSources:
        """Train on every instance of the sources' users but a held-out 5% (early stopping);
        ``target`` (optional) is only matched to the vocabulary, never trained on."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.device = resolve_device(cfg)
        identity = build_identity(sources, target, required=True)
        self.identity, self.sources, self.history = identity, [s.name for s in sources], []
        parts, dropped = [], 0
        for s in sources:
            seqs, n = identity_sequences(s.domain.sequences, identity.maps[s.name])
            parts.append(seqs)
            dropped += n
        train_users, held_users = split_holdout(pool_sequences(parts, self.sources), self.holdout, rng)
        train, valid = make_instances(train_users), make_instances(held_users)
        if len(valid) > cfg.eval_instances:
            valid = valid.take(np.sort(rng.choice(len(valid), cfg.eval_instances, replace=False)))
        self.stats = {"items_without_identity": dropped, "train_users": len(train_users),
                      "held_out_users": len(held_users), "train_instances": len(train),
                      "valid_instances": len(valid), "vocabulary": len(identity)}
        log.info("sasrec-sources: %d source(s), vocabulary %d, %d source interaction(s) without identity dropped; "
                 "%d instances of %d users, early stopping on %d instances of %d held-out users", len(sources),
                 len(identity), dropped, len(train), len(train_users), len(valid), len(held_users))
        self.net = SASRecNet(len(identity), cfg).to(self.device)
        if len(train) == 0:
            log.info("sasrec-sources: no training instances, the model stays at its initialisation")
            return self
        self.history, best = train_net(self.net, train, (lambda: self._validate(valid)) if len(valid) else None,
                                       cfg, rng, self.device, f"sasrec-sources ({len(train):,} inst.)")
        log.info("sasrec-sources: %d epochs, best held-out score %.4f", len(self.history), best)
        return self

    def _validate(self, valid: Instances) -> float:
        hist, lens = valid.histories(self.config.max_len)
        scores = net_scores(self.net, hist, lens, self.config.max_len, self.device)
        return validation_metric(scores, valid.targets, len(self.identity), self.config.ratio)

    def match(self, target: PreparedDomain) -> SASRecSources:
        """Map ``target``'s catalog onto the vocabulary (a PrerecError when it cannot share ids)."""
        if self.identity is None or self.net is None:
            raise PrerecError("sasrec-sources: call fit(sources) before scoring")
        if target.name in self.sources:
            raise PrerecError(f"sasrec-sources: target {target.name!r} is also a source")
        if target.name not in self.identity.maps:
            match_target(self.identity, target, required=True)
        return self

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        self.match(target)
        identity_of = self.identity.maps[target.name]
        hist, lens = to_identity_histories(histories, lengths, identity_of)
        known = np.flatnonzero(identity_of >= 0)
        out = np.empty((len(hist), target.n_items), dtype=np.float32)
        out[:, known] = net_scores(self.net, hist, lens, self.config.max_len, self.device, items=identity_of[known])
        if len(known) < target.n_items:
            low = out[:, known].min(axis=1, keepdims=True) if len(known) else np.ones((len(hist), 1), np.float32)
            floor = np.minimum(low - 1.0, np.nextafter(low, -np.inf))  # strictly lower, even for large scores
            out[:, np.setdiff1d(np.arange(target.n_items), known)] = floor
        return out
