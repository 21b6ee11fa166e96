# ruff: noqa: E701, E702
"""Probe, run once (session of 2026-12-02) and kept so that the figures docs/popularity.md quotes
from it can be reproduced. Validation users: a trained run scoring the target's text centred by the target's own catalog mean instead of the sources' (inference only).

    python benchmarks/probes/target_centring.py RUN TARGET_SPEC valid 6000
"""
import sys

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.prepared import prepare_domain
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.evaluation.popularity_share import score_parts
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.text import embed_catalog

torch.set_num_threads(1)
run = load_run(sys.argv[1]); split = sys.argv[3]; cap = int(sys.argv[4])
dom = load_domain(sys.argv[2])
raw = embed_catalog(dom, run.encoder)
tf = run.transform
for variant in ("sources-mean", "target-mean"):
    if variant == "target-mean":
        tf.mean = raw.mean(0).astype(np.float32)
    target = prepare_domain(dom, tf.apply(raw), run.config.split_seed)
    rec = PreRecRecommender(run, "zero-shot", transitions=False)
    inst = make_instances(getattr(target.split, split))
    hist, lengths = inst.histories(64)
    days, targets = np.asarray(inst.days, np.int64), inst.targets
    idx = np.arange(len(inst))
    if len(idx) > cap:
        idx = np.sort(np.random.default_rng(0).choice(len(idx), cap, replace=False))
    rows = {}
    x = target.item_emb
    for a in range(0, len(idx), 512):
        ii = idx[a:a+512]
        uv, g = score_parts(rec, target, hist[ii], lengths[ii], days[ii])
        mask = np.zeros_like(uv, bool)
        for r, i in enumerate(ii): mask[r, hist[i, :lengths[i]]] = True
        xm = np.stack([x[hist[i, :lengths[i]]].mean(0) for i in ii])
        txt = xm @ x.T
        for name, s in {"uv": uv, "prerec": uv + g, "prerec-demote": np.where(mask, -1e9, uv + g), "text": txt}.items():
            h, m = rank_counts(s.astype(np.float32), targets[ii])
            rows.setdefault(name, ([], [])); rows[name][0].append(h); rows[name][1].append(m)
    for k, (h, m) in rows.items():
        met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
        print(f"{dom.name} {variant:14s} {k:14s} {met['recall@k%'].mean():.4f} {met['rndcg@k%'].mean():.4f}", flush=True)
