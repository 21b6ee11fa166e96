"""The ``markov`` baseline on B1: source transitions by shared stock code, zero-shot.

B1's split and protocol (targets Germany, France, Spain, Belgium, Switzerland, Portugal; every
other Online Retail country a source; user split seed 2023; full ranking of every test
instance; Recall@1% and r-NDCG@1%), evaluated by ``prerec.evaluation.Experiment``. Rows:

- ``markov-L5``, ``markov-L1``: source transitions only (zero-shot), last 5 / last item;
- ``markov-L5+target``: plus each target's own training users' transitions (not zero-shot).

The chain needs no text, so targets are prepared with empty embeddings (the split and
popularity index do not depend on them). Prints a table; ``--json`` writes the summary.

    .venv/bin/python benchmarks/markov_b1.py [--json markov_b1.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from prerec.baselines.markov import MarkovBaseline
from prerec.data import load_domains
from prerec.data.prepared import prepare_domain
from prerec.evaluation.evaluate import EvalConfig
from prerec.evaluation.experiment import Experiment

TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")
SPEC = "online-retail:embedded"
SEED = 2023


def prepared(domains):
    return [prepare_domain(d, np.zeros((d.n_items, 1), dtype=np.float32), SEED) for d in domains]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    sources = prepared(load_domains([f"{SPEC}#!{','.join(TARGETS)}"]))
    targets = prepared(load_domains([f"{SPEC}#{','.join(TARGETS)}"]))
    models = {
        "markov-L5": MarkovBaseline(last=5).fit(sources),
        "markov-L1": MarkovBaseline(last=1).fit(sources),
        "markov-L5+target": lambda t: MarkovBaseline(last=5).fit(sources, t),
    }
    exp = Experiment(targets, models, EvalConfig(ratio=0.01, ks=(20,), seed=SEED, progress=False),
                     title="B1: markov (mean over the six targets)")
    summary = exp.run().summary()
    exp.print()
    for name in models:
        m = summary["mean"][name]
        print(f"{name:18s} Recall@1% {m['recall@k%']:.4f}  r-NDCG@1% {m['rndcg@k%']:.4f}  "
              f"instances {m['instances']:,}")
    print(f"{len(sources)} sources; {time.perf_counter() - t0:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
