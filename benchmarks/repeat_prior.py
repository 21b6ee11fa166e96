"""The repeat mixture's prior, chosen on held-out source domains (never on a target's users).

    python benchmarks/repeat_prior.py RUN DOMAIN_SPEC --domains EIRE,Netherlands --out DIR

Scores every user of the named domains (source domains the run was *not* trained on: B1's
``select_on`` countries) zero-shot with the run, and ranks them with the repeat mixture off,
with every prior of the grid (``prerec.repeats``: Beta(m n, (1 - m) n), mean m, weight n
transitions), and with the history's items removed outright ("demote"). Prints and writes
``table.md`` and ``results.json``: Recall@1% and r-NDCG@1% per domain and their mean, and the
share of instances whose target is already in the history. The mixture is applied to the run's
own score (its ``repeat_mixture`` switched off first), so one trained run serves every row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.readers import load_domains
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.intervention import PreRecRecommender
from prerec.repeats import apply_repeat_mixture, history_mask
from prerec.run import load_run

MEANS = (0.05, 0.01, 0.002, 0.0005)
WEIGHT = 2.0


def rows_for(rec: PreRecRecommender, target, batch: int = 512) -> tuple[dict, float, int]:
    """{row: (Recall@1%, r-NDCG@1%)}, the repeat share and the number of instances of every user."""
    inst = make_instances(target.domain.sequences)
    hist, lengths = inst.histories(rec.run.model.cfg.max_history)
    days, targets = np.asarray(inst.days, np.int64), inst.targets
    names = ["off", "demote", *(f"m = {m:g}" for m in MEANS)]
    counts = {n: ([], []) for n in names}
    repeats = 0
    for a in range(0, len(inst), batch):
        sl = slice(a, a + batch)
        s = rec.score_tensor(target, hist[sl], lengths[sl], days[sl]).double()
        mask = history_mask(hist[sl], lengths[sl], target.n_items)
        repeats += int(mask[torch.arange(len(s)), torch.as_tensor(targets[sl])].sum())
        variants = {"off": s, "demote": s.masked_fill(mask, float("-inf"))}
        for m in MEANS:
            variants[f"m = {m:g}"] = apply_repeat_mixture(s.clone(), hist[sl], lengths[sl],
                                                          prior=(m * WEIGHT, (1 - m) * WEIGHT))
        for n, v in variants.items():
            h, c = rank_counts(v.float().numpy(), targets[sl])
            counts[n][0].append(h)
            counts[n][1].append(c)
    out = {}
    for n, (h, c) in counts.items():
        met = instance_metrics(np.concatenate(h), np.concatenate(c), target.n_items, 0.01)
        out[n] = (float(met["recall@k%"].mean()), float(met["rndcg@k%"].mean()))
    return out, repeats / max(len(inst), 1), len(inst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("spec", help="the domains' spec, e.g. online-retail:embedded")
    ap.add_argument("--domains", required=True, help="comma-separated held-out source domains")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    trained = {s.name for s in run.sources if s.role == "train"}
    wanted = args.domains.split(",")
    if overlap := trained & set(wanted):
        raise SystemExit(f"{', '.join(sorted(overlap))}: trained on by this run, not held out")
    run.model.cfg.repeat_mixture = False
    rec = PreRecRecommender(run, "zero-shot")
    results = {}
    for dom in load_domains([args.spec]):
        if dom.name in wanted:
            results[dom.name] = rows_for(rec, run.prepare(dom))
    names = next(iter(results.values()))[0]
    lines = [f"# Repeat prior on held-out sources ({', '.join(results)}), run `{args.run}`", "",
             "| row | " + " | ".join(f"{d} Recall / r-NDCG" for d in results) + " | mean Recall | mean r-NDCG |",
             "|---|" + "---|" * (len(results) + 2)]
    for n in names:
        vals = [results[d][0][n] for d in results]
        lines.append(f"| {n} | " + " | ".join(f"{r:.4f} / {g:.4f}" for r, g in vals)
                     + f" | {np.mean([v[0] for v in vals]):.4f} | {np.mean([v[1] for v in vals]):.4f} |")
    lines += ["", "Instances (target already in the history): "
              + ", ".join(f"{d} {results[d][2]:,} ({results[d][1]:.1%})" for d in results), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text("\n".join(lines))
    (args.out / "results.json").write_text(json.dumps(
        {"run": args.run, "weight": WEIGHT, "means": MEANS,
         "domains": {d: {"rows": r, "repeat_share": s, "instances": n} for d, (r, s, n) in results.items()}},
        indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
