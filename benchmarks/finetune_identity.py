"""Fine-tune one pre-trained run on one target with and without target identity, at N = all.

    python benchmarks/finetune_identity.py RUN_DIR "NAME=FORMAT:PATH" [--n N]
        [--target-identity both|on|off] [--lr-grid 1e-4,1e-3] [--epochs E] [--lambda-identity L]
        [--identity-shrinkage K] [--n-negatives M]

Prints, for ``target_identity`` off and on, every learning rate tried with the validation
r-NDCG@1% of the epoch it kept on the target's validation users (the figures a choice may rest
on; with ``--lr-grid`` fine-tuning keeps the best of them), the kept model's transition head
(its beta refitted on the target's validation users, and their r-NDCG@1% with the pre-trained
beta and with the refit one; "none" without target identity), then the kept model's test
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
    ap.add_argument("--target-identity", choices=("both", "on", "off"), default="both")
    ap.add_argument("--lr-grid", default="", help="learning rates to choose from on validation users, e.g. 1e-4,1e-3")
    ap.add_argument("--epochs", type=int, default=None, help="most fine-tuning epochs (default: FinetuneConfig's)")
    ap.add_argument("--lambda-identity", type=float, default=None, help="identity prior (default: the run's)")
    ap.add_argument("--identity-shrinkage", type=float, default=None, help="kappa (default: the run's)")
    ap.add_argument("--n-negatives", type=int, default=None, help="negatives per instance (default: the run's)")
    ap.add_argument("--no-test", action="store_true", help="validation figures only (for settings not yet chosen)")
    args = ap.parse_args()
    extra = {k: v for k, v in (("epochs", args.epochs), ("identity_shrinkage", args.identity_shrinkage),
                               ("n_negatives", args.n_negatives)) if v is not None}
    if args.lambda_identity is not None:
        extra["lambda_identity_grid"] = [args.lambda_identity]
    grid = [float(x) for x in args.lr_grid.split(",") if x]
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.target_identity]
    run = load_run(args.run)
    target = run.prepare(load_domain(args.target))
    print("| target_identity | tried: lr (epoch kept) validation r-NDCG@1% | transition head: beta, validation "
          "r-NDCG@1% pre-trained beta -> refit | test Recall@1% | test r-NDCG@1% | seconds |\n|---|---|---|---|---|---|")
    for on in modes:
        t0 = time.perf_counter()
        ft = finetune_run(run, target, args.n, FinetuneConfig(target_identity=on, lr_grid=grid, **extra))
        test = "- | -"
        if not args.no_test:
            r = evaluate_model(PreRecRecommender(ft, "in-domain"), target, EvalConfig(split="test", progress=False))
            m = instance_metrics(r.n_higher, r.n_tied, r.n_items, 0.01)
            test = f"{m['recall@k%'].mean():.4f} | {m['rndcg@k%'].mean():.4f}"
        tried = ", ".join(f"{t['lr']:g} ({t['epoch']}) {t['valid_metric']:.4f}" for t in ft.selection["tried"])
        head = "none"
        if ft.transitions is not None and "valid_metric" in ft.transitions.fitted:
            f = ft.transitions.fitted
            head = (f"{ft.transitions.beta:.3f} ({f.get('kept', 'refit')}), {f['valid_metric_pretrained_beta']:.4f} -> "
                    f"{f['valid_metric']:.4f}")
        print(f"| {on} | {tried} | {head} | {test} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
