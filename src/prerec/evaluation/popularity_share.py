"""How much of a zero-shot PreRec score comes from the popularity head, and what each part ranks.

A zero-shot score is s = U.V + g(F) (docs/model.md): the user tower against the item vectors,
plus the popularity head on the target's own factors of the request day. Per evaluation
instance the score varies over the catalog; its variance splits exactly into

    Var(s) = Var(U.V) + Var(g) + 2 Cov(U.V, g),

each taken over the catalog for that one request (the variance the ranking sees) and reported
as a share of Var(s), averaged over instances. The ranking is then measured three ways: the
full score, U.V alone (the head removed) and g alone (the user part removed), with the
evaluation's full ranking and shared ties, so that "the head added nothing" is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from prerec.data.prepared import PreparedDomain
from prerec.evaluation.evaluate import EvalConfig, evaluation_instances
from prerec.evaluation.metrics import instance_metrics, mean_metrics, rank_counts
from prerec.intervention import PreRecRecommender

PARTS = ("full", "uv-only", "pop-only")


@dataclass
class ShareResult:
    """One target: the variance shares (means over instances) and each part's metrics."""

    target: str
    instances: int
    n_items: int
    share: dict[str, float]  # "uv", "pop", "cov": Var(U.V), Var(g), 2 Cov as shares of Var(s)
    sd_ratio_median: float  # median over instances of sd(g) / sd(U.V)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # part -> metric -> mean

    def to_dict(self) -> dict:
        return {"target": self.target, "instances": self.instances, "n_items": self.n_items,
                "share": self.share, "sd_ratio_median": self.sd_ratio_median, "metrics": self.metrics}


@torch.no_grad()
def score_parts(rec: PreRecRecommender, target: PreparedDomain, histories: np.ndarray,
                lengths: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U.V, g) of a batch, each ``(b, n_items)`` float64; their sum is the zero-shot score."""
    V = rec.item_tensor(target)
    uv = (rec.scorer.user_vectors(V, histories, lengths, target.name) @ V.T).double().cpu().numpy()
    g = np.empty_like(uv)
    for day in np.unique(days):
        rows = np.flatnonzero(days == day)
        g[rows] = rec.day_popularity(target, int(day)).double().cpu().numpy()[None, :]
    return uv, g


def variance_parts(uv: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per row: Var(U.V), Var(g), 2 Cov(U.V, g) over the catalog, ``(b, 3)``."""
    duv = uv - uv.mean(axis=1, keepdims=True)
    dg = g - g.mean(axis=1, keepdims=True)
    n = uv.shape[1]
    return np.stack([(duv**2).sum(1) / n, (dg**2).sum(1) / n, 2 * (duv * dg).sum(1) / n], axis=1)


def check_sum(rec: PreRecRecommender, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray, uv: np.ndarray, g: np.ndarray) -> None:
    """The parts must add up to the recommender's own score (guards against the model's scoring
    path changing under this measurement)."""
    full = rec.score(target, histories, lengths, days)
    err = float(np.max(np.abs(full - (uv + g)))) if full.size else 0.0
    if err > 1e-3 * max(1.0, float(np.max(np.abs(full)))):
        raise RuntimeError(f"{target.name}: U.V + g differs from the recommender's score by {err:.3g}")


def measure_target(rec: PreRecRecommender, target: PreparedDomain, cfg: EvalConfig) -> ShareResult:
    """Variance shares and the three rankings on ``target``'s evaluation instances."""
    if rec.inference != "zero-shot":
        raise ValueError(f"the share is defined for the zero-shot mode, not {rec.inference!r}")
    if rec.run.model.cfg.repeat_mixture:
        raise ValueError("the share is defined for s = U.V + g(F); this run ranks by the repeat mixture "
                         "(prerec.repeats): measure it with repeat_mixture off (run.model.cfg.repeat_mixture = False)")
    inst = evaluation_instances(target, cfg)
    hist, lengths = inst.histories()
    days, targets = np.asarray(inst.days, dtype=np.int64), inst.targets
    var = np.empty((len(inst), 3))
    ranks = {p: (np.empty(len(inst), np.int64), np.empty(len(inst), np.int64)) for p in PARTS}
    for a in range(0, len(inst), cfg.batch_size):
        sl = slice(a, a + cfg.batch_size)
        uv, g = score_parts(rec, target, hist[sl], lengths[sl], days[sl])
        if a == 0:
            check_sum(rec, target, hist[sl], lengths[sl], days[sl], uv, g)
        var[sl] = variance_parts(uv, g)
        for part, s in zip(PARTS, (uv + g, uv, g)):
            ranks[part][0][sl], ranks[part][1][sl] = rank_counts(s.astype(np.float32), targets[sl])
    total = var.sum(axis=1)
    ok = total > 0
    share = {k: float(np.mean(var[ok, i] / total[ok])) if ok.any() else float("nan")
             for i, k in enumerate(("uv", "pop", "cov"))}
    with np.errstate(divide="ignore", invalid="ignore"):
        sd_ratio = np.sqrt(var[:, 1] / var[:, 0])
    res = ShareResult(target.name, len(inst), target.n_items, share,
                      float(np.nanmedian(sd_ratio)) if len(inst) else float("nan"))
    for part, (h, m) in ranks.items():
        res.metrics[part] = mean_metrics(instance_metrics(h, m, target.n_items, cfg.ratio, cfg.ks))
    return res
