"""Rank a target's users by reweighted parts of the zero-shot score: a bound, not a choice.

    python benchmarks/score_mix.py RUN_DIR "NAME=FORMAT:PATH[#SELECTOR]" [--split valid]
        [--c 0,0.5,1,1.5,2,3,inf] [--gamma 0,0.25,0.5,1,2]

Ranks each instance's full catalog by ``c * U.V + g(F) + gamma * sd(U.V) * cos / sd(cos)``,
``cos`` the cosine of the history's last item's (post-processed) text with every item's (the
text-last row's score), ``sd`` per-row standard deviations over the catalog (``c = inf``: U.V
alone). Prints Recall@1% and r-NDCG@1% for every (c, gamma). Read on a target's *validation*
users it says what any reweighting of PreRec's parts could reach there, which a zero-shot model
may not choose by (docs/popularity.md, "What could move the bar").
"""

from __future__ import annotations

import argparse

import numpy as np

from prerec.data.instances import make_instances
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.evaluation.popularity_share import score_parts
from prerec.intervention import PreRecRecommender
from prerec.run import load_run


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("target")
    ap.add_argument("--split", default="valid", choices=("valid", "test"))
    ap.add_argument("--c", default="0,0.5,1,1.5,2,3,inf")
    ap.add_argument("--gamma", default="0,0.25,0.5,1,2")
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    run = load_run(args.run)
    target = run.prepare(load_domain(args.target))
    rec = PreRecRecommender(run, "zero-shot", transitions=False)
    inst = make_instances(getattr(target.split, args.split))
    hist, lengths = inst.histories(run.model.cfg.max_history)
    days, targets = np.asarray(inst.days, np.int64), inst.targets
    x = target.item_emb / np.linalg.norm(target.item_emb, axis=1, keepdims=True)
    cs, gammas = floats(args.c), floats(args.gamma)
    ranks: dict = {(c, g): ([], []) for c in cs for g in gammas}
    for a in range(0, len(inst), args.batch):
        sl = slice(a, a + args.batch)
        uv, pop = score_parts(rec, target, hist[sl], lengths[sl], days[sl])
        last = hist[sl][np.arange(len(lengths[sl])), lengths[sl] - 1]
        cos = x[last] @ x.T
        cos_scaled = uv.std(1, keepdims=True) * cos / np.maximum(cos.std(1, keepdims=True), 1e-12)
        for c in cs:
            base = uv if np.isinf(c) else c * uv + pop
            for g in gammas:
                h, m = rank_counts((base + g * cos_scaled).astype(np.float32), targets[sl])
                ranks[(c, g)][0].append(h)
                ranks[(c, g)][1].append(m)
    print(f"{target.name}, {args.split} users, {len(inst)} instances, {target.n_items} items\n")
    print("| c | gamma | Recall@1% | r-NDCG@1% |\n|---|---|---|---|")
    for (c, g), (h, m) in ranks.items():
        met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
        print(f"| {c:g} | {g:g} | {met['recall@k%'].mean():.4f} | {met['rndcg@k%'].mean():.4f} |")


if __name__ == "__main__":
    main()
