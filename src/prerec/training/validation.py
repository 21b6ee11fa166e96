"""Validation during training: mean r-NDCG@K% (and Recall@K%) on validation users.

Validation instances are every position of every validation user (docs/method.md,
"Evaluation"), or a fixed random subset of ``max_instances`` of them (drawn once with the run's
seed), ranked against the domain's whole catalog with shared ties (``prerec.evaluation.metrics``).
Scores come from a scoring function handed in by the caller, so this module knows nothing of
the model or of its inference modes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from prerec.constants import MAX_HISTORY, SPLIT_SEED
from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.evaluation.metrics import instance_metrics


@dataclass
class ValidationSet:
    """Fixed validation instances of one domain, scored in one inference mode."""

    prepared: PreparedDomain
    inference: str  # "in-domain" or "zero-shot"
    histories: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    days: np.ndarray

    @classmethod
    def build(cls, prepared: PreparedDomain, inference: str, max_instances: int = 0, seed: int = SPLIT_SEED,
              max_history: int = MAX_HISTORY) -> ValidationSet:
        inst = make_instances(prepared.split.valid)
        if max_instances and len(inst) > max_instances:
            rows = np.sort(np.random.default_rng([seed, 0x7A1]).choice(len(inst), max_instances, replace=False))
            inst = inst.take(rows)
        hist, lengths = inst.histories(max_history)
        return cls(prepared, inference, hist, lengths, inst.targets, inst.days)

    def __len__(self) -> int:
        return len(self.targets)


@torch.no_grad()
def rank_counts_torch(scores: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(n_higher, n_tied) per row, on the scores' device (same definition as evaluation.metrics)."""
    t = scores.gather(1, targets[:, None])
    higher = (scores > t).sum(1)
    tied = (scores == t).sum(1)
    return higher.cpu().numpy(), tied.cpu().numpy()


ScoreFunction = Callable[[str, PreparedDomain, np.ndarray, np.ndarray, np.ndarray], torch.Tensor]


def validate(score: ScoreFunction, sets: list[ValidationSet], ratio: float,
             batch_size: int = 512) -> tuple[float, dict]:
    """Mean over domains (unweighted) of the mean r-NDCG@K% over each domain's instances.

    ``score(inference, prepared, histories, lengths, days)`` returns the scores ``(b, n_items)``
    of one batch over the domain's whole catalog.
    """
    details: dict[str, dict] = {}
    for vs in sets:
        highers, tieds = [], []
        for a in range(0, len(vs), batch_size):
            b = a + batch_size
            s = score(vs.inference, vs.prepared, vs.histories[a:b], vs.lengths[a:b], vs.days[a:b])
            h, t = rank_counts_torch(s, torch.as_tensor(vs.targets[a:b], device=s.device))
            highers.append(h)
            tieds.append(t)
        if not len(vs):
            continue
        m = instance_metrics(np.concatenate(highers), np.concatenate(tieds), vs.prepared.n_items, ratio)
        details[vs.prepared.name] = {
            "inference": vs.inference, "instances": len(vs),
            "recall@k%": float(m["recall@k%"].mean()), "rndcg@k%": float(m["rndcg@k%"].mean()),
            "recall@20": float(m["recall@20"].mean()), "ndcg@20": float(m["ndcg@20"].mean()),
        }
    if not details:
        return float("nan"), details
    metric = float(np.mean([d["rndcg@k%"] for d in details.values()]))
    return metric, details
