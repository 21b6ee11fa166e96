"""Full-ranking evaluation of any :class:`Recommender` on prepared target domains (docs/method.md 6).

For each instance of the chosen split's users (every position t >= 1: history = previous <= 64
items, target = item t, day = the target's day) the model scores the whole catalog; only
``(n_higher, n_tied)`` of the target is kept, so results can be recomputed independently from
the per-instance table. Metrics are averaged over instances within a domain, then over domains
without weights.

Options beyond the paper's protocol (both off by default, for comparability):

- ``filter_history``: items of the instance's (<= 64 item) history are excluded from the
  ranking, except the target itself when it occurs in the history (a repeat is still a hit).
  Excluded items count neither as higher nor as tied; the catalog size N used for K and the
  r-NDCG rescaling stays the whole catalog.
- subsets: ``unseen`` instances are those whose target item id never occurs in any source
  domain's catalog; ``seen`` the rest. They are reported beside ``all``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from prerec.constants import SPLIT_SEED
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.evaluation.metrics import DEFAULT_KS, DEFAULT_RATIO, instance_metrics, mean_metrics, rank_counts
from prerec.recommender import Recommender

INSTANCE_COLUMNS = ("model", "domain", "user_id", "position", "item_id", "n_items", "n_higher", "n_tied")
SUBSETS = ("all", "seen", "unseen")


@dataclass
class EvalConfig:
    """How to evaluate. ``max_instances`` (a seeded random subset) is for quick runs only."""

    ratio: float = DEFAULT_RATIO
    ks: tuple[int, ...] = DEFAULT_KS
    split: str = "test"
    batch_size: int = 512
    filter_history: bool = False
    max_instances: int | None = None
    seed: int = SPLIT_SEED
    progress: bool = True


def evaluation_instances(target: PreparedDomain, cfg: EvalConfig) -> Instances:
    """Every instance of the split's users (or a seeded subset of ``max_instances``)."""
    if cfg.split not in ("train", "valid", "test"):
        raise PrerecError(f"--split {cfg.split!r}: expected train, valid or test")
    inst = make_instances(target.split.part(cfg.split))
    if cfg.max_instances is not None and len(inst) > cfg.max_instances:
        rows = np.random.default_rng(cfg.seed).choice(len(inst), cfg.max_instances, replace=False)
        inst = inst.take(np.sort(rows))
    return inst


def rank_instances(model: Recommender, target: PreparedDomain, inst: Instances, cfg: EvalConfig,
                   desc: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(n_higher, n_tied)`` of every instance's target under ``model``, batch by batch."""
    hist, lengths = inst.histories()
    days, targets = inst.days, inst.targets
    higher = np.empty(len(inst), dtype=np.int64)
    tied = np.empty(len(inst), dtype=np.int64)
    bar = tqdm(total=len(inst), desc=desc or f"evaluate {target.name}", unit="inst", leave=False,
               disable=not cfg.progress)
    for a in range(0, len(inst), cfg.batch_size):
        sl = slice(a, a + cfg.batch_size)
        scores = np.array(model.score(target, hist[sl], lengths[sl], days[sl]), dtype=np.float32, copy=True)
        if scores.shape != (len(hist[sl]), target.n_items):
            raise ValueError(f"{model.name}: score returned {scores.shape}, expected "
                             f"({len(hist[sl])}, {target.n_items})")
        if cfg.filter_history:
            h = hist[sl]
            rows = np.repeat(np.arange(len(h)), h.shape[1])
            cols = h.reshape(-1)
            drop = (cols >= 0) & (cols != np.repeat(targets[sl], h.shape[1]))
            scores[rows[drop], cols[drop]] = np.nan  # NaN is never higher nor tied
        higher[sl], tied[sl] = rank_counts(scores, targets[sl])
        bar.update(len(scores))
    bar.close()
    return higher, tied


@dataclass
class DomainRanks:
    """The outcome of one model on one domain: per-instance ranks plus what identifies them."""

    model: str
    domain: str
    n_items: int
    user_id: np.ndarray
    position: np.ndarray
    item_id: np.ndarray
    n_higher: np.ndarray
    n_tied: np.ndarray
    unseen: np.ndarray  # bool per instance

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "model": self.model, "domain": self.domain, "user_id": self.user_id.astype(str),
            "position": self.position.astype(np.int64), "item_id": self.item_id.astype(str),
            "n_items": np.full(len(self.n_higher), self.n_items, dtype=np.int64),
            "n_higher": self.n_higher, "n_tied": self.n_tied,
        })


def unseen_mask(target: PreparedDomain, item_index: np.ndarray, source_items: Iterable[str] | None) -> np.ndarray:
    """True where the target item's id occurs in no source domain (all False without sources)."""
    if source_items is None:
        return np.zeros(len(item_index), dtype=bool)
    known = pd.Index(pd.unique(np.asarray(list(source_items), dtype=object)))
    ids = target.domain.item_ids[item_index]
    return known.get_indexer(ids) < 0


def evaluate_model(model: Recommender, target: PreparedDomain, cfg: EvalConfig, name: str | None = None,
                   source_items: Iterable[str] | None = None, instances: Instances | None = None) -> DomainRanks:
    """Rank every evaluation instance of ``target`` under ``model``."""
    inst = instances if instances is not None else evaluation_instances(target, cfg)
    name = name or model.name
    higher, tied = rank_instances(model, target, inst, cfg, desc=f"{name} on {target.name}")
    targets = inst.targets
    return DomainRanks(name, target.name, target.n_items, inst.users, inst.pos, target.domain.item_ids[targets],
                       higher, tied, unseen_mask(target, targets, source_items))


@dataclass
class Results:
    """All (model, domain) outcomes of one evaluation, with the summaries the CLI writes."""

    ratio: float = DEFAULT_RATIO
    ks: tuple[int, ...] = DEFAULT_KS
    ranks: list[DomainRanks] = field(default_factory=list)

    def add(self, r: DomainRanks) -> None:
        self.ranks.append(r)

    @property
    def domains(self) -> list[str]:
        return list(dict.fromkeys(r.domain for r in self.ranks))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.ranks))

    def _domain_metrics(self, r: DomainRanks, subset: str) -> dict[str, float]:
        values = instance_metrics(r.n_higher, r.n_tied, r.n_items, ratio=self.ratio, ks=self.ks)
        rows = {"all": None, "seen": np.flatnonzero(~r.unseen), "unseen": np.flatnonzero(r.unseen)}[subset]
        out: dict[str, float | int] = mean_metrics(values, rows)
        out["instances"] = len(r.n_higher) if rows is None else len(rows)
        return out

    def summary(self, subset: str = "all") -> dict[str, dict[str, dict[str, float]]]:
        """``{domain: {model: metrics}, "mean": {model: metrics}}``: the contract's JSON.

        The mean is the unweighted mean over domains that have instances in the subset;
        ``instances`` in the mean is their total.
        """
        if subset not in SUBSETS:
            raise ValueError(f"subset {subset!r}: expected one of {SUBSETS}")
        out: dict[str, dict[str, dict[str, float]]] = {}
        for r in self.ranks:
            out.setdefault(r.domain, {})[r.model] = self._domain_metrics(r, subset)
        mean: dict[str, dict[str, float]] = {}
        for model in self.models:
            rows = [out[d][model] for d in self.domains if model in out[d] and out[d][model]["instances"] > 0]
            keys = [k for k in (rows[0] if rows else {}) if k != "instances"]
            m = {k: float(np.mean([row[k] for row in rows])) for k in keys}
            m["instances"] = int(sum(row["instances"] for row in rows))
            mean[model] = m
        if "mean" in out:
            raise PrerecError("a target domain may not be called 'mean' (the JSON's average row)")
        out["mean"] = mean
        return out

    def instances_frame(self) -> pd.DataFrame:
        """One row per evaluated instance and model, columns ``INSTANCE_COLUMNS``."""
        if not self.ranks:
            return pd.DataFrame({c: [] for c in INSTANCE_COLUMNS})
        return pd.concat([r.frame() for r in self.ranks], ignore_index=True)[list(INSTANCE_COLUMNS)]


def json_safe(obj):
    """NaN -> None, so the JSON file is strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
