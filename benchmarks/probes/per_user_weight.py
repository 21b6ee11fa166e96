# ruff: noqa: B023, E701, E702
"""Probe, run once (session of 2026-12-02) and kept so that the figures docs/popularity.md quotes
from it can be reproduced. Validation users: the repeat mixture (prior Beta(0.1, 1.9), its first setting) and a per-user weight of U.V chosen by the likelihood of the user's own past transitions.

    python benchmarks/probes/per_user_weight.py RUN TARGET_SPEC valid 4000
"""
import sys

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.intervention import PreRecRecommender
from prerec.run import load_run

torch.set_num_threads(1)
run = load_run(sys.argv[1]); split = sys.argv[3]; cap = int(sys.argv[4])
target = run.prepare(load_domain(sys.argv[2]))
rec = PreRecRecommender(run, "zero-shot", transitions=False)
inst = make_instances(getattr(target.split, split))
hist, lengths = inst.histories(64)
days, targets = np.asarray(inst.days, np.int64), inst.targets
idx = np.arange(len(inst))
if len(idx) > cap:
    idx = np.sort(np.random.default_rng(0).choice(len(idx), cap, replace=False))
V = rec.item_tensor(target).float(); N = len(V)
model = run.model.eval()
CS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
P = 16
rows = {}
def add(name, s, t):
    h, m = rank_counts(s.astype(np.float32), t)
    rows.setdefault(name, ([], [])); rows[name][0].append(h); rows[name][1].append(m)
with torch.no_grad():
  for a in range(0, len(idx), 256):
    ii = idx[a:a + 256]
    H = torch.as_tensor(hist[ii]); L = torch.as_tensor(lengths[ii]); b = len(ii)
    Hc = H.clamp(min=0)
    h = torch.where((H >= 0).unsqueeze(-1), V[Hc], torch.zeros(()))
    out = model.encode(h)  # b, Lmax, H
    uv = out[torch.arange(b), L - 1] @ V.T
    g = torch.stack([rec.day_popularity(target, int(d)).float() for d in days[ii]])
    t = targets[ii]
    # history mask and counts
    cnt = torch.zeros(b, N)
    Lmax = H.shape[1]
    valid = torch.arange(Lmax)[None, :] < L[:, None]
    cnt.scatter_add_(1, Hc, valid.float())
    inhist = cnt > 0
    rec_w = torch.zeros(b, N)
    age = (L[:, None] - 1 - torch.arange(Lmax)[None, :]).clamp(min=0).float()
    rec_w.scatter_add_(1, Hc, valid.float() * 0.7 ** age)
    # repeats within history: position t>=1 whose item occurred before
    rep = torch.zeros(b)
    for k in range(1, Lmax):
        prev = (H[:, :k] == H[:, k:k + 1]).any(1) & (k < L)
        rep += prev.float()
    T = (L - 1).clamp(min=0).float()
    # per-user c from own past transitions (last P)
    ll = torch.zeros(b, len(CS))
    for k in range(P):
        pos = L - 2 - k  # predicting position pos+1 from output at pos
        ok = pos >= 0
        if not ok.any(): break
        pp = pos.clamp(min=0)
        u = out[torch.arange(b), pp] @ V.T
        nxt = Hc[torch.arange(b), pp + 1]
        for ci, c in enumerate(CS):
            s = c * u + g
            lp = s.gather(1, nxt[:, None])[:, 0] - torch.logsumexp(s, 1)
            ll[:, ci] += torch.where(ok, lp, torch.zeros(()))
    cstar = torch.tensor(CS)[ll.argmax(1)]
    cstar = torch.where(L >= 2, cstar, torch.ones(()))
    def mixture(s, prep, a0=0.1, b0=1.9):
        r = (rep + a0) / (T + a0 + b0)
        sn = s.masked_fill(inhist, -1e30)
        lpn = torch.log1p(-r)[:, None] + sn - torch.logsumexp(sn, 1, keepdim=True)
        lpr = torch.log(r)[:, None] + torch.log(prep / prep.sum(1, keepdim=True) + 1e-30)
        return torch.where(inhist, lpr, lpn)
    pre = uv + g
    ada = cstar[:, None] * uv + g
    add("pop", g.numpy(), t)
    add("pop+demote", g.masked_fill(inhist, -1e9).numpy(), t)
    add("pop+mix(count)", mixture(g, cnt).numpy(), t)
    add("prerec", pre.numpy(), t)
    add("prerec+demote", pre.masked_fill(inhist, -1e9).numpy(), t)
    add("prerec+mix(count)", mixture(pre, cnt).numpy(), t)
    add("prerec+mix(recency.7)", mixture(pre, rec_w).numpy(), t)
    add("adaptive-c", ada.numpy(), t)
    add("adaptive-c+mix(count)", mixture(ada, cnt).numpy(), t)
    add("adaptive-c+mix(recency.7)", mixture(ada, rec_w).numpy(), t)
    rows.setdefault("cstar", []) if False else None
    rows.setdefault("_c", []); rows["_c"].append(cstar.numpy())
print(target.name, split, len(idx), "instances")
print("c* distribution:", {c: round(float((np.concatenate(rows['_c']) == c).mean()), 3) for c in CS})
for k, v in rows.items():
    if k == "_c": continue
    met = instance_metrics(np.concatenate(v[0]), np.concatenate(v[1]), target.n_items, 0.01)
    print(f"{k:28s} {met['recall@k%'].mean():.4f} {met['rndcg@k%'].mean():.4f}")
