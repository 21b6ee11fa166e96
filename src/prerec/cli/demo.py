"""``prerec demo``: the main job on the embedded Online Retail data.

It shows the domains (countries) with their statistics and each target market's items that are
popular right now (the popularity factors of the day after its log ends).
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table

from prerec.data import load_domains
from prerec.popularity import PopularityIndex

B1_TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo on the embedded Online Retail data")
    p.add_argument("--top", type=int, default=5, help="popular items shown per target market")
    p.set_defaults(handler=run_demo)


def popularity_overview(console: Console, top: int) -> None:
    domains = load_domains(["online-retail:embedded"])
    table = Table(title="Online Retail (embedded, CC BY 4.0): one domain per country")
    for col in ("domain", "role", "users", "items", "interactions", "days", "rows dropped"):
        table.add_column(col, justify="left" if col in ("domain", "role") else "right")
    for d in sorted(domains, key=lambda d: -len(d.interactions)):
        seqs = d.sequences
        role = "target" if d.name in B1_TARGETS else "source"
        table.add_row(d.name, role, f"{d.n_users:,}", f"{d.n_items:,}", f"{len(d.interactions):,}",
                      f"{len(np.unique(seqs.days)):,}", f"{sum(d.report.dropped.values()):,}")
    console.print(table)
    for d in domains:
        if d.name not in B1_TARGETS:
            continue
        seqs = d.sequences
        today = int(seqs.days.max()) + 1
        f = PopularityIndex(seqs.items, seqs.days).item_factors(today, d.n_items)
        order = np.argsort(-f[:, 1], kind="stable")[:top]
        t = Table(title=f"{d.name}: popular now (window before day {today})", show_lines=False)
        for col in ("item", "text", "f1", "f2"):
            t.add_column(col)
        for j in order:
            t.add_row(str(d.item_ids[j]), d.texts.iloc[j][:60], f"{f[j, 0]:.2f}", f"{f[j, 1]:.2f}")
        console.print(t)


def run_demo(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, 120))
    popularity_overview(console, args.top)
    return 0
