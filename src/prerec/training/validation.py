"""Validation during training: mean r-NDCG@K% (and Recall@K%) on validation users.

Validation instances are every position of every validation user (SPEC.md section 6), or a
fixed random subset of ``max_instances`` of them (drawn once with the run's seed), ranked
against the domain's whole catalog with shared ties (``prerec.evaluation.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.evaluation.metrics import instance_metrics


@dataclass
class ValidationSet:
    """Fixed validation instances of one domain, scored in one mode."""

    prepared: PreparedDomain
    mode: str  # "in-domain" or "zero-shot"
    histories: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    days: np.ndarray

    @classmethod
    def build(cls, prepared: PreparedDomain, mode: str, max_instances: int = 0, seed: int = 2023,
              max_history: int = 64) -> ValidationSet:
        inst = make_instances(prepared.split.valid)
        if max_instances and len(inst) > max_instances:
            rows = np.sort(np.random.default_rng([seed, 0x7A1]).choice(len(inst), max_instances, replace=False))
            inst = inst.take(rows)
        hist, lengths = inst.histories(max_history)
        return cls(prepared, mode, hist, lengths, inst.targets, inst.days)

    def __len__(self) -> int:
        return len(self.targets)


@torch.no_grad()
def rank_counts_torch(scores: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(n_higher, n_tied) per row, on the scores' device (same definition as evaluation.metrics)."""
    t = scores.gather(1, targets[:, None])
    higher = (scores > t).sum(1)
    tied = (scores == t).sum(1)
    return higher.cpu().numpy(), tied.cpu().numpy()


def validate(recommenders: dict[str, object], sets: list[ValidationSet], ratio: float,
             batch_size: int = 512) -> tuple[float, dict]:
    """Mean over domains (unweighted) of the mean r-NDCG@K% over each domain's instances.

    ``recommenders`` maps a mode to a :class:`prerec.intervention.PreRecRecommender`.
    """
    details: dict[str, dict] = {}
    for vs in sets:
        rec = recommenders[vs.mode]
        rec.clear_cache()
        highers, tieds = [], []
        for a in range(0, len(vs), batch_size):
            b = a + batch_size
            s = rec.score_tensor(vs.prepared, vs.histories[a:b], vs.lengths[a:b], vs.days[a:b])
            h, t = rank_counts_torch(s, torch.as_tensor(vs.targets[a:b], device=s.device))
            highers.append(h)
            tieds.append(t)
        rec.clear_cache()
        if not len(vs):
            continue
        m = instance_metrics(np.concatenate(highers), np.concatenate(tieds), vs.prepared.n_items, ratio)
        details[vs.prepared.name] = {
            "mode": vs.mode, "instances": len(vs),
            "recall@k%": float(m["recall@k%"].mean()), "rndcg@k%": float(m["rndcg@k%"].mean()),
            "recall@20": float(m["recall@20"].mean()), "ndcg@20": float(m["ndcg@20"].mean()),
        }
    if not details:
        return float("nan"), details
    metric = float(np.mean([d["rndcg@k%"] for d in details.values()]))
    return metric, details
