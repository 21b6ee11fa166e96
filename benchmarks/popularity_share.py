"""The popularity head's share of zero-shot PreRec scores, and the ranking without either part.

Usage: python benchmarks/popularity_share.py --run RUN_DIR [--run RUN_DIR ...] --target SPEC
                                             [--target SPEC ...] [--split test] [--max-instances N]
                                             [--out DIR]

One ``--run`` serves every target (a fixed-target benchmark such as B1); or one ``--run`` per
``--target``, in the same order (leave-one-out folds such as B2).

For each target (a domain spec, ``NAME=FORMAT:PATH[#SELECTOR]``), on its evaluation instances:
the shares of the score's variance over the catalog that come from U.V, from g(F) and from
their covariance (mean over instances), and Recall@K% / r-NDCG@K% / Recall@20 / NDCG@20 of the
full zero-shot score, of U.V alone and of g(F) alone (``prerec.evaluation.popularity_share``).
Prints a table; with ``--out`` also writes ``table.md`` and ``results.json`` there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prerec.data.readers import load_domain
from prerec.evaluation.evaluate import EvalConfig
from prerec.evaluation.popularity_share import PARTS, ShareResult, measure_target
from prerec.intervention import PreRecRecommender
from prerec.run import load_run


def table(results: list[ShareResult], runs: list[str], split: str, max_instances: int | None) -> str:
    """Markdown: the variance shares, then each part's metrics."""
    subset = f", a seeded subset of at most {max_instances} instances" if max_instances else ""
    lines = [
        "# The popularity head's share of zero-shot scores",
        "",
        f"Run{'s' if len(runs) > 1 else ''} {', '.join(f'`{r}`' for r in runs)}, zero-shot (D = 0, offsets dropped, the target's own popularity), "
        f"{split} instances{subset}. Shares: of the score's variance over the catalog, per "
        "instance, then averaged (U.V + g + 2cov = 1). sd g/UV: median of sd(g) / sd(U.V).",
        "",
        "| target | instances | items | U.V | g(F) | 2cov | sd g/UV | "
        + " | ".join(f"R@1% {p}" for p in PARTS) + " | " + " | ".join(f"rNDCG@1% {p}" for p in PARTS) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * (2 * len(PARTS)),
    ]
    for r in results:
        rec = [f"{r.metrics[p]['recall@k%']:.4f}" for p in PARTS]
        ndcg = [f"{r.metrics[p]['rndcg@k%']:.4f}" for p in PARTS]
        lines.append(f"| {r.target} | {r.instances} | {r.n_items} | {r.share['uv']:.3f} | {r.share['pop']:.3f} | "
                     f"{r.share['cov']:+.3f} | {r.sd_ratio_median:.2f} | " + " | ".join(rec + ndcg) + " |")
    if results:
        mean = {p: sum(r.metrics[p]["recall@k%"] for r in results) / len(results) for p in PARTS}
        lines += ["", "Mean Recall@K% over targets: "
                  + ", ".join(f"{p} {mean[p]:.4f}" for p in PARTS) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[ShareResult]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True,
                    help="a pre-trained run directory: one for every target, or one per target")
    ap.add_argument("--target", action="append", required=True, help="a target domain spec (repeatable)")
    ap.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ap.add_argument("--max-instances", type=int, default=None, help="a seeded subset per target")
    ap.add_argument("--out", default=None, help="folder for table.md and results.json")
    args = ap.parse_args(argv)
    if len(args.run) not in (1, len(args.target)):
        ap.error(f"{len(args.run)} --run for {len(args.target)} --target: give one, or one per target")
    runs = args.run * len(args.target) if len(args.run) == 1 else args.run
    results, loaded = [], {}
    for run_dir, spec in zip(runs, args.target):
        if run_dir not in loaded:
            run = load_run(run_dir)
            loaded = {run_dir: (run, PreRecRecommender(run, "zero-shot", batch_size=run.config.eval_batch_size))}
        run, rec = loaded[run_dir]
        cfg = EvalConfig(split=args.split, max_instances=args.max_instances, progress=False,
                         batch_size=run.config.eval_batch_size)
        results.append(measure_target(rec, run.prepare(load_domain(spec)), cfg))
    text = table(results, args.run, args.split, args.max_instances)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(text)
        meta = {"runs": runs, "targets": args.target, "split": args.split,
                "max_instances": args.max_instances, "mode": "zero-shot"}
        (out / "results.json").write_text(json.dumps({"settings": meta,
                                                      "targets": [r.to_dict() for r in results]}, indent=1))
    return results


if __name__ == "__main__":
    main()
