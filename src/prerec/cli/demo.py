"""``prerec demo``: the main job, end to end, on the embedded Online Retail data.

B1 of docs/evaluation.md, shortened to run within 15 minutes on 2 CPU cores
(``prerec/configs/experiments/demo.toml``): pre-train PreRec on the source countries, score the
six target countries zero-shot, compare with the baselines, draw the incremental curve, and
show a few recommendations with their item text. ``--overview`` shows only the data.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from prerec.data import load_domains
from prerec.popularity import PopularityIndex

B1_TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="B1 end to end on the embedded Online Retail data (about 10 minutes)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    p.add_argument("--overview", action="store_true", help="only show the domains and what is popular now")
    p.add_argument("--top", type=int, default=5, help="items shown per table")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_demo)


def popularity_overview(console: Console, top: int) -> None:
    """The domains of the embedded data, and each target market's items popular right now."""
    domains = load_domains(["online-retail:embedded"])
    table = Table(title="Online Retail (embedded, CC BY 4.0): one domain per country")
    for col in ("domain", "role", "users", "items", "interactions", "days", "rows dropped"):
        table.add_column(col, justify="left" if col in ("domain", "role") else "right")
    for d in sorted(domains, key=lambda d: -len(d.interactions))[:12]:
        role = "target" if d.name in B1_TARGETS else "source"
        table.add_row(d.name, role, f"{d.n_users:,}", f"{d.n_items:,}", f"{len(d.interactions):,}",
                      f"{len(np.unique(d.sequences.days)):,}", f"{sum(d.report.dropped.values()):,}")
    table.caption = f"12 largest of {len(domains)} countries; `prerec data stats online-retail:embedded` lists all"
    console.print(table)
    for d in domains:
        if d.name not in B1_TARGETS[:2]:
            continue
        seqs = d.sequences
        today = int(seqs.days.max()) + 1
        f = PopularityIndex(seqs.items, seqs.days).item_factors(today, d.n_items)
        order = np.argsort(-f[:, 1], kind="stable")[:top]
        t = Table(title=f"{d.name}: popular in the 15 days before the log ends")
        for col in ("item", "text", "F1", "F2"):
            t.add_column(col)
        for j in order:
            t.add_row(str(d.item_ids[j]), d.texts.iloc[j][:60], f"{f[j, 0]:.2f}", f"{f[j, 1]:.2f}")
        console.print(t)


def sample_recommendations(console: Console, run_dir: Path, top: int) -> None:
    """Zero-shot recommendations for a few German test users, with item texts."""
    from prerec.data.instances import make_instances
    from prerec.intervention import PreRecRecommender
    from prerec.run import load_run

    run = load_run(run_dir)
    target = run.prepare(load_domains(["Germany=online-retail:embedded#Germany"])[0])
    rec = PreRecRecommender(run, "zero-shot")
    inst = make_instances(target.split.test)
    # three users, each at a late position of their sequence
    last = np.flatnonzero(np.r_[inst.seq[1:] != inst.seq[:-1], True])[:3]
    chosen = inst.take(last)
    hist, lengths = chosen.histories()
    ids, scores = rec.recommend(target, hist, lengths, chosen.days, k=top)
    texts = target.domain.texts
    for row in range(len(chosen)):
        t = Table(title=f"Germany, test customer {chosen.users[row]}: zero-shot top {top} (no German training)")
        t.add_column("", justify="right")
        t.add_column("item")
        t.add_column("text")
        t.add_column("score", justify="right")
        for h in hist[row, max(lengths[row] - 3, 0): lengths[row]]:
            t.add_row("history", str(target.domain.item_ids[h]), texts.iloc[h][:55], "")
        for rank, (j, s) in enumerate(zip(ids[row], scores[row]), 1):
            mark = " <- bought next" if j == chosen.targets[row] else ""
            t.add_row(f"#{rank}", str(target.domain.item_ids[j]), texts.iloc[j][:55] + mark, f"{s:.3f}")
        console.print(t)


def run_demo(args: argparse.Namespace) -> int:
    from prerec.evaluation.benchmark import Benchmark, BenchmarkConfig
    from prerec.evaluation.experiment import comparison_table

    console = Console(width=max(Console().width, 160))
    popularity_overview(console, args.top)
    if args.overview:
        return 0
    config = Path(str(resources.files("prerec.configs") / "experiments" / "demo.toml"))
    cfg = BenchmarkConfig.from_toml(config)
    console.rule("B1 zero-shot: pre-train on the source countries, recommend in six new ones")
    result = Benchmark(cfg, args.out, progress=not args.no_progress).run()
    console.print(comparison_table(result["results"], title=f"{cfg.name}: Recall@K% (K = floor({cfg.ratio} N))"))
    sample_recommendations(console, args.out / "runs" / "all-prerec", args.top)
    console.print(f"table: {args.out / 'table.md'}   results: {args.out / 'results.json'}   "
                  f"plot: {args.out / 'incremental.png'}   ({result['seconds']['total']:.0f} s)")
    return 0
