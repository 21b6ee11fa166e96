"""The training-free popularity row with the history's own items handled: a diagnostic, not a row.

    python benchmarks/popularity_repeat.py "NAME=FORMAT:PATH[#SELECTOR]" [...]

For each target's *test* users (split seed 2023, as the benchmarks), ranks by the ``popularity``
row's score (f2 = c / s_2 of the request day's window) three ways: as is; with the history's items
put last; and with the repeat mixture of ``prerec.repeats`` applied to log f2 (the window's count
shares as the explore and repeat components). It says how much of zero-shot PreRec's gain from
the mixture a count-only model would get as well (docs/popularity.md, "The repeat mixture").
Prints ``target | row | Recall@1% | r-NDCG@1%``.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from prerec.baselines.simple import PopularityBaseline
from prerec.constants import SPLIT_SEED
from prerec.data.instances import make_instances
from prerec.data.prepared import prepare_domain
from prerec.data.readers import load_domain
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.repeats import apply_repeat_mixture, history_mask


def main(specs: list[str]) -> None:
    for spec in specs:
        dom = load_domain(spec)
        target = prepare_domain(dom, np.zeros((dom.n_items, 1), np.float32), SPLIT_SEED)  # no text needed
        inst = make_instances(target.split.test)
        hist, lengths = inst.histories(64)
        days, targets = np.asarray(inst.days, np.int64), inst.targets
        counts: dict[str, tuple[list, list]] = {}
        for a in range(0, len(inst), 1024):
            sl = slice(a, a + 1024)
            f2 = torch.as_tensor(PopularityBaseline().score(target, hist[sl], lengths[sl], days[sl]), dtype=torch.float64)
            mask = history_mask(hist[sl], lengths[sl], target.n_items)
            rows = {"popularity": f2, "popularity, history last": f2.masked_fill(mask, -1.0),
                    "popularity + repeat mixture": apply_repeat_mixture(torch.log(f2.clamp(min=1e-9)), hist[sl], lengths[sl])}
            for name, s in rows.items():
                h, m = rank_counts(s.float().numpy(), targets[sl])
                counts.setdefault(name, ([], []))
                counts[name][0].append(h)
                counts[name][1].append(m)
        for name, (h, m) in counts.items():
            met = instance_metrics(np.concatenate(h), np.concatenate(m), target.n_items, 0.01)
            print(f"{dom.name} | {name} | {met['recall@k%'].mean():.4f} | {met['rndcg@k%'].mean():.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
