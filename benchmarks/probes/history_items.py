# ruff: noqa: E701, E702
"""Probe, run once (session of 2026-12-02) and kept so that the figures docs/popularity.md quotes
from it can be reproduced. Validation users of a B2 target: popularity and zero-shot PreRec with the history's items as scored, removed, or put first.

    python benchmarks/probes/history_items.py RUN TARGET_SPEC
"""
import sys

import numpy as np

from prerec.data.instances import make_instances
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.evaluation.popularity_share import score_parts
from prerec.intervention import PreRecRecommender
from prerec.run import load_run

run = load_run(sys.argv[1]); split = sys.argv[3] if len(sys.argv) > 3 else "valid"
target = run.prepare(load_domain(sys.argv[2]))
rec = PreRecRecommender(run, "zero-shot", transitions=False)
inst = make_instances(getattr(target.split, split))
hist, lengths = inst.histories(run.model.cfg.max_history)
days, targets = np.asarray(inst.days, np.int64), inst.targets
# repeat rate: target in history
inh = np.array([targets[i] in set(hist[i, :lengths[i]].tolist()) for i in range(len(inst))])
print(target.name, split, len(inst), "instances; target in history:", inh.mean().round(4))
tr = make_instances(target.split.train); th, tl = tr.histories(64)
inh_tr = np.array([tr.targets[i] in set(th[i, :tl[i]].tolist()) for i in range(len(tr))])
print(" train users repeat rate:", inh_tr.mean().round(4))
rows = {}
for a in range(0, len(inst), 512):
    sl = slice(a, a + 512)
    uv, pop = score_parts(rec, target, hist[sl], lengths[sl], days[sl])
    n = len(uv); mask = np.zeros_like(uv, bool)
    for i in range(n):
        mask[i, hist[sl][i, :lengths[sl][i]]] = True
    for name, s in {"pop": pop, "prerec": uv + pop}.items():
        for mode in ("plain", "demote", "promote"):
            t = s.copy()
            if mode == "demote": t[mask] = -1e9
            if mode == "promote": t[mask] += 1e6
            h, m = rank_counts(t.astype(np.float32), targets[sl])
            rows.setdefault((name, mode), ([], []))
            rows[(name, mode)][0].append(h); rows[(name, mode)][1].append(m)
for k, (h, m) in rows.items():
    met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
    print(k, round(met['recall@k%'].mean(), 4), round(met['rndcg@k%'].mean(), 4))
