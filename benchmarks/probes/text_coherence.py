# ruff: noqa: B007, E701, E702, RUF007
"""Probe, run once (session of 2026-12-02) and kept so that the figures docs/popularity.md quotes
from it can be reproduced. Validation users of a fold's target and sources: Recall@1% of c U.V + g(F) (with the repeat mixture) by quartile of the history's text coherence (mean cosine of the last item with the others).

    python benchmarks/probes/text_coherence.py RUN TARGET_SPEC SOURCE_SPEC ...
"""
import sys

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.evaluation.popularity_share import score_parts
from prerec.intervention import PreRecRecommender
from prerec.repeats import apply_repeat_mixture
from prerec.run import load_run

torch.set_num_threads(1)
run = load_run(sys.argv[1]); run.model.cfg.repeat_mixture = False
for spec in sys.argv[2:]:
    target = run.prepare(load_domain(spec))
    rec = PreRecRecommender(run, "zero-shot", transitions=False)
    inst = make_instances(target.split.valid)
    idx = np.arange(len(inst))
    if len(idx) > 5000: idx = np.sort(np.random.default_rng(0).choice(len(idx), 5000, replace=False))
    hist, lengths = inst.histories(64); days, targets = np.asarray(inst.days, np.int64), inst.targets
    x = target.item_emb / np.linalg.norm(target.item_emb, axis=1, keepdims=True)
    coh, res = [], {c: ([], []) for c in (0.0, 0.5, 1.0)}
    for a in range(0, len(idx), 512):
        ii = idx[a:a+512]
        uv, g = score_parts(rec, target, hist[ii], lengths[ii], days[ii])
        for r, i in enumerate(ii):
            h = x[hist[i, :lengths[i]]]
            coh.append(float((h[:-1] @ h[-1]).mean()) if lengths[i] > 1 else np.nan)
        for c in res:
            s = apply_repeat_mixture(torch.as_tensor(c * uv + g), hist[ii], lengths[ii]).numpy()
            hh, m = rank_counts(s.astype(np.float32), targets[ii]); res[c][0].append(hh); res[c][1].append(m)
    coh = np.array(coh)
    mets = {c: instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)["recall@k%"] for c, (h, m) in res.items()}
    qs = np.nanquantile(coh, [0, .25, .5, .75, 1])
    print(f"== {target.name}: coherence quartiles {np.round(qs, 3)}")
    for lo, hi in zip(qs[:-1], qs[1:]):
        sel = (coh >= lo) & (coh <= hi)
        print(f"  [{lo:.3f},{hi:.3f}] n={sel.sum()} " + " ".join(f"c={c}: {mets[c][sel].mean():.4f}" for c in mets))
