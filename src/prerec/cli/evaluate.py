"""``prerec evaluate``: full-ranking metrics (docs/method.md, "Evaluation") of PreRec and baselines on targets.

Writes the contract's JSON (``{domain: {model: metrics}, "mean": {model: metrics}}``), optionally
the per-instance table (``--instances-out``) and the seen/unseen breakdown (``--detail-json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prerec.constants import SPLIT_SEED
from prerec.data import load_domains
from prerec.errors import PrerecError
from prerec.evaluation.evaluate import EvalConfig, Results, evaluate_model, json_safe
from prerec.evaluation.metrics import DEFAULT_RATIO
from prerec.evaluation.prepare import prepare_without_run
from prerec.intervention import INFERENCE_MODES, PreRecRecommender
from prerec.registry import build_model, for_target, parse_names, run_free_names
from prerec.repeats import REPEAT_CHOICES, override
from prerec.run import load_run

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="full-ranking Recall@K%%, r-NDCG@K%%, Recall@20, NDCG@20 on targets")
    p.add_argument("--run", type=Path, help="pre-trained run directory (without it: baselines only)")
    p.add_argument("--target", action="append", required=True, metavar="NAME=FORMAT:PATH",
                   help="target domain (repeat for several)")
    p.add_argument("--mode", choices=INFERENCE_MODES, default="zero-shot", help="PreRec inference mode (row 'prerec')")
    p.add_argument("--repeat-mixture", choices=REPEAT_CHOICES, default="run",
                   help="rank by the repeat mixture (docs/method.md): as the run was trained (default), on or off")
    p.add_argument("--json", type=Path, required=True, help="results file (the contract's JSON)")
    p.add_argument("--baselines", default="", help=f"comma list of: {','.join(run_free_names())}")
    p.add_argument("--instances-out", type=Path, help="Parquet file, one row per instance and model")
    p.add_argument("--detail-json", type=Path, help="JSON with all/seen/unseen subsets per domain and model")
    p.add_argument("--ratio", type=float, default=DEFAULT_RATIO, help="K = floor(ratio * N) (default 0.01)")
    p.add_argument("--ks", default="20", help="fixed cut-offs for Recall@k and NDCG@k (comma list; 20 always)")
    p.add_argument("--split", choices=("test", "valid", "train"), default="test", help="users evaluated")
    p.add_argument("--filter-history", action="store_true",
                   help="exclude history items (except the target itself) from the ranking")
    p.add_argument("--mc-draws", type=int, help="draws of D for --mode zero-shot-mc")
    p.add_argument("--mc-source", choices=("empirical", "prior"), help="distribution of D for zero-shot-mc")
    p.add_argument("--encoder", default=None, help="text encoder when no --run is given (default e5)")
    p.add_argument("--seed", type=int, default=SPLIT_SEED, help="user split seed when no --run is given")
    p.add_argument("--batch-size", type=int, default=512, help="instances scored at once")
    p.add_argument("--max-instances", type=int, help="evaluate a seeded random subset per domain (quick look)")
    p.set_defaults(handler=run_evaluate)


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()} | {20})
    except ValueError as exc:
        raise PrerecError(f"--ks {text!r}: expected a comma list of integers") from exc
    if ks[0] < 1:
        raise PrerecError(f"--ks {text!r}: cut-offs must be >= 1")
    return tuple(ks)


def write_json(path: Path, obj: object) -> None:
    """Atomic strict-JSON write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_parquet(path: Path, frame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def results_table(summary: dict, title: str, ks: tuple[int, ...] = (20,)) -> Table:
    """A rich table of one summary: a row per (domain, model)."""
    table = Table(title=title)
    cols = ["recall@k%", "rndcg@k%", *[f"{m}@{k}" for k in ks for m in ("recall", "ndcg")]]
    for c in ("domain", "model", *cols, "instances"):
        table.add_column(c, justify="left" if c in ("domain", "model") else "right", no_wrap=True)
    for domain, models in summary.items():
        for model, m in models.items():
            cells = ["-" if m.get(c) is None or m[c] != m[c] else f"{m[c]:.4f}" for c in cols]
            table.add_row(domain, model, *cells, f"{m['instances']:,}", end_section=False)
        table.add_section()
    return table


def run_evaluate(args: argparse.Namespace) -> int:
    baselines = parse_names(args.baselines, run_free_names())
    if args.run is None and not baselines:
        raise PrerecError("nothing to evaluate: give --run RUN_DIR and/or --baselines")
    if args.ratio <= 0 or args.ratio > 1:
        raise PrerecError(f"--ratio {args.ratio}: expected 0 < ratio <= 1")
    ks = parse_ks(args.ks)
    cfg = EvalConfig(ratio=args.ratio, ks=ks, split=args.split, batch_size=args.batch_size,
                     filter_history=args.filter_history, max_instances=args.max_instances)
    run = load_run(args.run) if args.run is not None else None
    if run is not None:
        override(run, args.repeat_mixture)
    domains = load_domains(args.target)
    if run is not None:
        targets = [run.prepare(d) for d in domains]
        mc = {k: v for k, v in (("mc_draws", args.mc_draws), ("mc_source", args.mc_source)) if v is not None}
        models = {"prerec": PreRecRecommender(run, args.mode, **mc)}
        sources = {str(i) for ids in run.source_item_ids().values() for i in ids}
    else:
        targets = prepare_without_run(domains, args.encoder, args.seed)
        models, sources = {}, None
    results = Results(ratio=cfg.ratio, ks=ks)
    for target in targets:
        per_target = dict(models)
        for name in baselines:  # sasrec-scratch trains here, on this target's training users
            per_target[name] = for_target(build_model(name), target)
        for name, model in per_target.items():
            results.add(evaluate_model(model, target, cfg, name=name, source_items=sources))
    summary = results.summary("all")
    write_json(args.json, summary)
    if args.instances_out is not None:
        write_parquet(args.instances_out, results.instances_frame())
    detail = {s: results.summary(s) for s in ("all", "seen", "unseen")} if sources is not None else None
    if args.detail_json is not None:
        write_json(args.detail_json, detail or {"all": summary})
    console = Console(width=max(Console().width, 120), stderr=False)
    console.print(results_table(summary, f"{args.split} split, K = floor({cfg.ratio} N)"
                                + (", history filtered" if cfg.filter_history else ""), ks))
    if detail is not None and detail["unseen"]["mean"] and any(
            m["instances"] for m in detail["unseen"]["mean"].values()):
        console.print(results_table(detail["unseen"], "unseen targets (item id in no source domain)", ks))
    log.info("wrote %s", args.json)
    return 0
