# ruff: noqa: E702
"""Probe, run once (session of 2026-12-02, later) and kept so that the figures docs/popularity.md
quotes from it can be reproduced. A target's validation users (6,000 instances, seed 0) ranked by a
repeat-mixture run's zero-shot score with U.V reweighted: a constant c, or w(n) = n / (n + k) by
the history's length n (the ``history_shrinkage`` key, applied after the fact), with and without
the sources' mean user vector removed (benchmarks/mean_user_probe.py); Recall@1% by history length.

    python benchmarks/probes/history_length.py RUN TARGET_SPEC SOURCE_SPEC [SOURCE_SPEC ...]
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mean_user_probe import user_vectors
from prerec.baselines.simple import PopularityRepeatBaseline
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.intervention import PreRecRecommender
from prerec.repeats import apply_repeat_mixture
from prerec.run import load_run

run_dir, target_spec, *source_specs = sys.argv[1:]
torch.set_num_threads(1)
run = load_run(run_dir)
run.model.cfg.repeat_mixture = False
rec = PreRecRecommender(run, "zero-shot", transitions=False)
u_src = torch.stack([user_vectors(rec, run.prepare(load_domain(s)), 3000)[0].mean(0) for s in source_specs]).mean(0, keepdim=True)
target = run.prepare(load_domain(target_spec))
U, inst, idx, hist, lengths = user_vectors(rec, target, 6000)
days, targets = np.asarray(inst.days, np.int64), inst.targets
V = rec.item_tensor(target).double()
L = torch.as_tensor(np.asarray(lengths)[idx]).double()
variants = {"prerec": (0.0, None), "U-Ubar": (u_src, None)}
for c in (0.25, 0.5, 0.75):
    variants[f"c={c}"] = (0.0, -c)
for k in (1, 3, 10, 30):
    variants[f"w(n),k={k}"] = (0.0, k)
    variants[f"w(n)(U-Ubar),k={k}"] = (u_src, k)
per = {}
for a in range(0, len(idx), 512):
    ii = idx[a:a + 512]
    u, n = U[a:a + 512], L[a:a + 512]
    g = torch.stack([rec.day_popularity(target, int(d)).double() for d in days[ii]])
    sc = {}
    for name, (c, k) in variants.items():
        w = 1.0 if k is None else (-k if k < 0 else (n / (n + k))[:, None])
        sc[name] = apply_repeat_mixture(w * ((u - c) @ V.T) + g, hist[ii], lengths[ii])
    sc["popularity-repeat"] = torch.as_tensor(PopularityRepeatBaseline().score(target, hist[ii], lengths[ii], days[ii]))
    for name, s in sc.items():
        h, m = rank_counts(s.float().numpy(), targets[ii])
        per.setdefault(name, ([], []))
        per[name][0].append(h); per[name][1].append(m)
nn = L.numpy()
buckets = [(1, 4), (5, 9), (10, 19), (20, 39), (40, 64)]
print("bucket sizes", [int(((nn >= lo) & (nn <= hi)).sum()) for lo, hi in buckets])
for name, (h, m) in per.items():
    met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
    r = met["recall@k%"]
    bs = " ".join(f"{r[(nn >= lo) & (nn <= hi)].mean():.3f}" for lo, hi in buckets)
    print(f"{target.name} | {name:22s} | {r.mean():.4f} | {met['rndcg@k%'].mean():.4f} | by n: {bs}", flush=True)
