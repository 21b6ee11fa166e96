"""A probe on a target's *validation* users: remove the mean user vector's item prior from U.V.

    python benchmarks/mean_user_probe.py RUN TARGET_SPEC SOURCE_SPEC [SOURCE_SPEC ...]

Ranks 6,000 validation instances of the target (seed 0) by the run's zero-shot score with the
repeat mixture, as is and with U replaced by U - Ubar: Ubar the mean zero-shot user vector of the
target's own validation requests (not a zero-shot quantity: it shows the room), or of the sources'
validation users (3,000 instances each, each source weighing the same); the popularity rows on the
same instances beside them. Ubar . V_j is an item prior
the text tower carries from the sources, beside the target's own popularity g(F). Measured in
docs/popularity.md ("The repeat mixture", leads).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from prerec.baselines.simple import PopularityBaseline, PopularityRepeatBaseline
from prerec.data.instances import make_instances
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.intervention import PreRecRecommender
from prerec.repeats import apply_repeat_mixture
from prerec.run import load_run


def user_vectors(rec: PreRecRecommender, prepared, cap: int):
    """Zero-shot U of up to ``cap`` validation instances (seed 0), with the instances."""
    inst = make_instances(prepared.split.valid)
    idx = np.arange(len(inst))
    if len(idx) > cap:
        idx = np.sort(np.random.default_rng(0).choice(len(idx), cap, replace=False))
    hist, lengths = inst.histories(64)
    V = rec.item_tensor(prepared)
    U = torch.cat([rec.scorer.user_vectors(V, hist[idx[a:a + 512]], lengths[idx[a:a + 512]], prepared.name).double()
                   for a in range(0, len(idx), 512)])
    return U, inst, idx, hist, lengths


def main(run_dir: str, target_spec: str, source_specs: list[str]) -> None:
    torch.set_num_threads(1)
    run = load_run(run_dir)
    run.model.cfg.repeat_mixture = False  # applied below, to each variant's score
    rec = PreRecRecommender(run, "zero-shot", transitions=False)
    u_src = torch.stack([user_vectors(rec, run.prepare(load_domain(s)), 3000)[0].mean(0) for s in source_specs])
    u_src = u_src.mean(0, keepdim=True)
    target = run.prepare(load_domain(target_spec))
    U, inst, idx, hist, lengths = user_vectors(rec, target, 6000)
    days, targets = np.asarray(inst.days, np.int64), inst.targets
    V = rec.item_tensor(target).double()
    u_tgt = U.mean(0, keepdim=True)
    counts: dict[str, tuple[list, list]] = {}
    for a in range(0, len(idx), 512):
        ii, u = idx[a:a + 512], U[a:a + 512]
        g = torch.stack([rec.day_popularity(target, int(d)).double() for d in days[ii]])
        scores = {name: apply_repeat_mixture((u - centre) @ V.T + g, hist[ii], lengths[ii]) for name, centre in
                  (("prerec", 0.0), ("U - Ubar(target)", u_tgt), ("U - Ubar(sources)", u_src))}
        scores["popularity"] = torch.as_tensor(PopularityBaseline().score(target, hist[ii], lengths[ii], days[ii]))
        scores["popularity-repeat"] = torch.as_tensor(
            PopularityRepeatBaseline().score(target, hist[ii], lengths[ii], days[ii]))
        for name, s in scores.items():
            h, m = rank_counts(s.float().numpy(), targets[ii])
            counts.setdefault(name, ([], []))
            counts[name][0].append(h)
            counts[name][1].append(m)
    for name, (h, m) in counts.items():
        met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
        print(f"{target.name} | {name} | {met['recall@k%'].mean():.4f} | {met['rndcg@k%'].mean():.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
