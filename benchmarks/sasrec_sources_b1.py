"""The ``sasrec-sources`` baseline on B1: SASRec on the pooled source countries by shared stock code.

B1's split and protocol (targets Germany, France, Spain, Belgium, Switzerland, Portugal; every
other Online Retail country a source; user split seed 2023; full ranking of every test
instance; Recall@1%, r-NDCG@1%, Recall@20, NDCG@20), evaluated by
``prerec.evaluation.Experiment``. The model is fitted once on the sources (every user of every
source country but a seeded 5% held out for early stopping; RecBole's SASRec defaults unless
``--epochs`` / ``--patience`` say otherwise) and applied zero-shot to the six targets; no choice
reads a target.

The model needs no text, so domains are prepared with empty embeddings (the split and the
popularity index do not depend on them). Prints a table, the epochs run and the wall time;
``--json`` writes the summary. Run it with one torch thread on a shared machine:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sasrec_sources_b1.py [--json sasrec_sources_b1.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace

import numpy as np
import torch

from prerec.baselines.sasrec import SASRecConfig
from prerec.baselines.sasrec_sources import SASRecSources
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
    defaults = SASRecConfig()
    ap.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs (default: %(default)s)")
    ap.add_argument("--patience", type=int, default=defaults.patience, help="default: %(default)s")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("prerec.evaluation").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sources = prepared(load_domains([f"{SPEC}#!{','.join(TARGETS)}"]))
    targets = prepared(load_domains([f"{SPEC}#{','.join(TARGETS)}"]))
    cfg = replace(defaults, epochs=args.epochs, patience=args.patience, seed=SEED)
    t_fit = time.perf_counter()
    model = SASRecSources(cfg).fit(sources)
    fit_s = time.perf_counter() - t_fit
    exp = Experiment(targets, {"sasrec-sources": model},
                     EvalConfig(ratio=0.01, ks=(20,), seed=SEED, progress=False),
                     title="B1: sasrec-sources (mean over the six targets)")
    summary = exp.run().summary()
    exp.print()
    m = summary["mean"]["sasrec-sources"]
    best = max(model.history, key=lambda h: h["valid"]) if model.history else {"epoch": 0, "valid": float("nan")}
    wall = time.perf_counter() - t0
    print(f"sasrec-sources  Recall@1% {m['recall@k%']:.4f}  r-NDCG@1% {m['rndcg@k%']:.4f}  "
          f"Recall@20 {m['recall@20']:.4f}  NDCG@20 {m['ndcg@20']:.4f}  instances {m['instances']:,}")
    print(f"{len(sources)} sources; {model.stats}; epochs run {len(model.history)} (most {cfg.epochs}, patience "
          f"{cfg.patience}), best epoch {best['epoch']} (held-out r-NDCG@1% {best['valid']:.4f}); "
          f"fit {fit_s:.0f} s, wall {wall:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "history": model.history, "stats": model.stats,
                       "config": vars(cfg), "fit_seconds": fit_s, "wall_seconds": wall}, f, indent=2)


if __name__ == "__main__":
    main()
