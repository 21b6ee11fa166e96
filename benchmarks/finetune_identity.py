"""Fine-tune one pre-trained run on one target with and without target identity, at N = all.

    python benchmarks/finetune_identity.py RUN_DIR "NAME=FORMAT:PATH" [--n N]

Prints, for ``target_identity`` off and on, the epoch fine-tuning kept and its validation
r-NDCG@1% on the target's validation users (the figure a choice may rest on), then the test
Recall@1% and r-NDCG@1% (to report, not to choose). Used for docs/identity.md ("Fine-tuning where
the sources share no ids").
"""

from __future__ import annotations

import argparse
import time

from prerec.config import FinetuneConfig
from prerec.data.readers import load_domain
from prerec.evaluation.evaluate import EvalConfig, evaluate_model
from prerec.evaluation.metrics import instance_metrics
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.training.finetune import finetune_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("target")
    ap.add_argument("--n", type=int, default=None, help="target training instances (default: all)")
    args = ap.parse_args()
    run = load_run(args.run)
    target = run.prepare(load_domain(args.target))
    print("| target_identity | epoch kept | validation r-NDCG@1% | test Recall@1% | test r-NDCG@1% | seconds |")
    print("|---|---|---|---|---|---|")
    for on in (False, True):
        t0 = time.perf_counter()
        ft = finetune_run(run, target, args.n, FinetuneConfig(target_identity=on))
        r = evaluate_model(PreRecRecommender(ft, "in-domain"), target, EvalConfig(split="test", progress=False))
        m = instance_metrics(r.n_higher, r.n_tied, r.n_items, 0.01)
        valid = ft.selection["tried"][0]["valid_metric"]
        print(f"| {on} | {ft.epoch} | {valid:.4f} | {m['recall@k%'].mean():.4f} | {m['rndcg@k%'].mean():.4f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
