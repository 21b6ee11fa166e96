"""``prerec data stats``, ``popularity``, ``identity`` and ``taste``: look at domains before training on them."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from prerec.constants import DEFAULT_FACTORS, SPLIT_SEED
from prerec.data import load_domains, split_users
from prerec.data.domain import NO_DAY, Domain
from prerec.data.prepared import domain_popularity_index, require_text
from prerec.errors import PrerecError
from prerec.popularity_factors import FACTOR_SETS, get_factor_set


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect domains: statistics and popularity factors")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    s = dsub.add_parser("stats", help="users, items, interactions, time span, text coverage, dropped rows")
    s.add_argument("domains", nargs="+", metavar="NAME=FORMAT:PATH")
    s.add_argument("--require-text", action="store_true",
                   help="fail (exit 2) on a domain without any item text, as training and evaluation would")
    s.set_defaults(handler=run_stats)
    q = dsub.add_parser("popularity", help="popularity factors of every (day, item) pair of the log")
    q.add_argument("domains", nargs="+", metavar="NAME=FORMAT:PATH")
    q.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    q.add_argument("--factors", default=",".join(FACTOR_SETS), metavar="SET[,SET]",
                   help=f"factor sets to write, a column per factor (default: all of {', '.join(FACTOR_SETS)})")
    q.add_argument("--seed", type=int, default=SPLIT_SEED,
                   help="user split seed (domains without timestamps use their training users)")
    q.set_defaults(handler=run_popularity)
    i = dsub.add_parser("identity", help="shared item ids: the sources' key spaces and a target's overlap")
    i.add_argument("--source", nargs="+", required=True, metavar="NAME=FORMAT:PATH[@ids=SPACE]")
    i.add_argument("--target", metavar="NAME=FORMAT:PATH[@ids=SPACE]", help="one target domain")
    i.add_argument("--require", action="store_true",
                   help="fail (exit 2) where the domains declare no shared ids, as identity switched on would")
    i.set_defaults(handler=run_identity)
    t = dsub.add_parser("taste", help="how much each domain's item texts say about its users' taste "
                        "(prerec.text.taste), and the U.V weight a run's taste_calibration gives it")
    t.add_argument("domains", nargs="+", metavar="NAME=FORMAT:PATH")
    t.add_argument("--run", help="a pre-trained run: embed as it does (encoder, post-processing, split seed) "
                   "and compare with its sources")
    t.add_argument("--tau", type=float, help="taste_calibration to show the weight for (default: the run's)")
    t.add_argument("--encoder", default=None, help="without --run: the text encoder (default: e5)")
    t.add_argument("--seed", type=int, default=SPLIT_SEED, help="without --run: the user split seed")
    t.set_defaults(handler=run_taste)


def run_identity(args: argparse.Namespace) -> int:
    """Print the identity vocabulary's overlap report (errors: exit 2, see docs/data.md)."""
    from prerec.data.identity import build_identity
    from prerec.data.readers import load_domain

    sources = load_domains(args.source)
    target = load_domain(args.target) if args.target else None
    quiet = logging.getLogger("prerec.data.identity")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the report is printed below, once
    try:
        identity = build_identity(sources, target, required=args.require)
    finally:
        quiet.setLevel(level)
    for line in identity.report.lines():
        print(line)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    domains = load_domains(args.domains)
    if args.require_text:
        for d in domains:
            require_text(d)
    console = Console(width=max(Console().width, 130))
    table = Table(title="Domains")
    for col in ("domain", "users", "items", "interactions", "time span", "text coverage", "rows read"):
        table.add_column(col, justify="left" if col in ("domain", "time span") else "right", no_wrap=True)
    for d in domains:
        st = d.stats()
        table.add_row(d.name, f"{st['users']:,}", f"{st['items']:,}", f"{st['interactions']:,}",
                      str(st["time span"]), str(st["text coverage"]), f"{st['rows read']:,}")
    if len(domains) > 1:
        users = len(set().union(*(d.interactions["user_id"].unique() for d in domains)))
        items = len(set().union(*(d.item_ids for d in domains)))
        table.add_section()
        table.add_row("all (distinct ids)", f"{users:,}", f"{items:,}",
                      f"{sum(len(d.interactions) for d in domains):,}", "", "",
                      f"{sum(d.report.rows_read for d in domains):,}")
    console.print(table)
    print_drops(console, domains)
    for d in domains:
        r = d.report
        if r.conflicting_texts:
            console.print(f"{d.name}: {r.conflicting_texts:,} items had several texts (most frequent kept, "
                          "ties: lexicographically smallest)")
        if r.items_without_text:
            console.print(f"{d.name}: {r.items_without_text:,} of {d.n_items:,} items have no text")
        if r.texts_outside_log:
            console.print(f"{d.name}: {r.texts_outside_log:,} item texts belong to no interaction (not in catalog)")
        for note in r.notes:
            console.print(f"{d.name}: {note}")
    return 0


def print_drops(console: Console, domains: list[Domain]) -> None:
    """Rows removed by each cleaning rule, one row per domain that removed any, and the total."""
    rules = list(dict.fromkeys(rule for d in domains for rule in d.report.dropped))
    rows = [d for d in domains if sum(d.report.dropped.values())]
    if not rows:
        return
    table = Table(title="Rows removed by cleaning")
    table.add_column("domain", no_wrap=True)
    for rule in [*rules, "total"]:
        table.add_column(rule, justify="right")
    for d in rows:
        counts = [d.report.dropped.get(rule, 0) for rule in rules]
        table.add_row(d.name, *(f"{n:,}" for n in counts), f"{sum(counts):,}")
    if len(rows) > 1:
        totals = [sum(d.report.dropped.get(rule, 0) for d in rows) for rule in rules]
        table.add_section()
        table.add_row("all", *(f"{n:,}" for n in totals), f"{sum(totals):,}")
    console.print(table)


def domain_popularity(domain: Domain, seed: int = SPLIT_SEED, factor_sets: list[str] | None = None) -> pd.DataFrame:
    """Factors of every (day, item) pair on which the domain has an interaction.

    ``day`` is ``floor(unix_seconds / 86400)`` (int64), ``date`` the same day as ``YYYY-MM-DD``.
    A domain without timestamps has one window (its training users' interactions): one row per
    item, with ``day`` = -1 and no date. Then a column per factor of each set of ``factor_sets``
    (default: the paper's, f1..f4; a column shared by two sets, like ``l2``'s f2, is written once)."""
    seqs = domain.sequences
    index = domain_popularity_index(domain, split_users(seqs, seed))
    if domain.has_time:
        # distinct (day, item) pairs through one int64 key (np.unique(axis=0) is far slower)
        day0, n = int(seqs.days.min()), max(domain.n_items, 1)
        key = np.unique((seqs.days - day0) * n + seqs.items)
        day, items = key // n + day0, key % n
        date = pd.to_datetime(day, unit="D").strftime("%Y-%m-%d").to_numpy(dtype=object)
    else:
        items = np.unique(seqs.items)
        day = np.full(len(items), NO_DAY, dtype=np.int64)
        date = np.full(len(items), None, dtype=object)
    frame = {"domain": domain.name, "day": day, "date": date, "item_id": domain.item_ids[items].astype(str)}
    for name in factor_sets or [DEFAULT_FACTORS]:
        fs = get_factor_set(name)
        f = index.factors(day if domain.has_time else None, items, name)
        frame.update({col: f[:, c] for c, col in enumerate(fs.columns) if col not in frame})
    return pd.DataFrame(frame)


def run_popularity(args: argparse.Namespace) -> int:
    sets = [s.strip() for s in args.factors.split(",") if s.strip()]
    for name in sets:
        if name not in FACTOR_SETS:
            raise PrerecError(f"--factors: unknown factor set {name!r}; known: {', '.join(FACTOR_SETS)}")
    domains = load_domains(args.domains)
    frame = pd.concat([domain_popularity(d, args.seed, sets) for d in domains], ignore_index=True)
    out: Path = args.out
    if out.suffix.lower() != ".parquet":
        raise PrerecError(f"--out {out}: expected a .parquet file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(out)
    print(f"wrote {len(frame):,} (day, item) rows for {len(domains)} domain(s) to {out}")
    return 0


def run_taste(args: argparse.Namespace) -> int:
    """Print each domain's taste signal over its training users (and, with a run, the weight)."""
    from prerec.data.prepared import prepare_domain
    from prerec.text import embed_catalog, get_encoder
    from prerec.text.taste import MIN_USERS, text_weight

    domains = load_domains(args.domains)
    for d in domains:
        require_text(d)
    run = sources = None
    if args.run:
        from prerec.run import load_run

        run = load_run(args.run, device="cpu")
        sources = run.source_taste_signal()
    elif args.tau is not None:
        raise PrerecError("--tau needs --run (the weight compares a domain with the run's sources)")
    tau = args.tau if args.tau is not None else (run.model.cfg.taste_calibration if run else 0.0)
    encoder = None if run else get_encoder(args.encoder)
    table = Table(title="Text taste signal: same-user minus random-pair text similarity, in sd")
    for col in ("domain", "users read", "signal", "± se", "upper bound", *(("U.V weight",) if run else ())):
        table.add_column(col, justify="left" if col == "domain" else "right", no_wrap=True)
    for d in domains:
        prepared = run.prepare(d) if run else prepare_domain(d, embed_catalog(d, encoder), args.seed)
        sig = prepared.taste
        cells = ["n/a"] * 3 if sig is None else [f"{sig.value:.3f}", f"{sig.se:.3f}", f"{sig.upper:.3f}"]
        if sig is not None and not sig.readable:
            cells[0] += " (too few users)"
        weight = []
        if run:
            weight = [f"{text_weight(sig, sources, tau):.3f}" if sources is not None else "n/a"]
        table.add_row(d.name, f"{0 if sig is None else sig.users:,}", *cells, *weight)
    console = Console(width=max(Console().width, 130))
    console.print(table)
    if run:
        src = ", ".join(f"{s.name} {s.taste_signal:.3f} ({s.taste_users:,} users)" for s in run.sources
                        if s.role == "train" and s.taste_signal is not None)
        console.print(f"sources of {args.run}: {src or 'none recorded'}; their mean "
                      f"{'n/a' if sources is None else f'{sources:.3f}'}; taste_calibration {tau:g}")
    console.print(f"read from each domain's training users with two distinct items (at least {MIN_USERS} "
                  "for a reading); docs/method.md, \"Taste calibration\"")
    return 0
