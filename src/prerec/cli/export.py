"""``prerec export recbole``: a domain's split as RecBole atomic files (see
:mod:`prerec.evaluation.recbole_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prerec.constants import SPLIT_SEED
from prerec.data.readers import load_domain
from prerec.evaluation.recbole_export import export_recbole


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a domain's split for other toolkits (RecBole)")
    esub = p.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    r = esub.add_parser("recbole", help="RecBole atomic files: <name>.{train,valid,test}.inter, .item, .text")
    r.add_argument("domain", metavar="NAME=FORMAT:PATH")
    r.add_argument("--out", required=True, type=Path, help="folder; files go to OUT/NAME/")
    r.add_argument("--seed", type=int, default=SPLIT_SEED, help="user split seed (default 2023)")
    r.add_argument("--max-len", type=int, default=50, help="history items kept per row (RecBole's default 50)")
    r.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    domain = load_domain(args.domain)
    counts = export_recbole(domain, args.out, seed=args.seed, max_len=args.max_len)
    print(f"wrote {args.out / domain.name}: " + ", ".join(f"{k} {v:,} rows" for k, v in counts.items())
          + f", {domain.n_items:,} items")
    return 0
