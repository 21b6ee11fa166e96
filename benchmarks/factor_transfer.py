"""Which popularity factor set transfers: zero-shot PreRec with each set on B1 and every B2 fold.

For every factor set of ``prerec.popularity_factors`` (the ``popularity_factors`` key) and every
training seed asked for, this runs ``prerec experiment b1`` and ``b2`` (their packaged configs:
transfer preset, the epoch chosen zero-shot on held-out sources, B2 refitted on all three sources)
with only the zero-shot ``prerec`` row, the set swapped in. The training-free rows (``popularity``
and every ``popularity-<set>``, ``text-last``) are seed- and set-independent and run once.

The choice is made on held-out *source* domains only: each pre-training records the zero-shot
metrics of its held-out sources at the epoch it kept (B1: EIRE and Netherlands; B2: Amazon Office,
or Last.fm for the Office fold). A set's selection score is the mean over the five pre-trainings
(B1, four B2 folds) of the held-out r-NDCG@1% (the metric that chooses the epoch), Recall@1% beside
it. Target test figures are only read to report, after the choice.

    # phase 1: every set, the first training seed
    python benchmarks/factor_transfer.py run --work W --seeds 2023
    # phase 2: the best two on held-out sources and the paper's, two more seeds
    python benchmarks/factor_transfer.py run --work W --seeds 2024,2025 --sets paper,A,B
    python benchmarks/factor_transfer.py report --work W --out results/popularity-transfer

A set may carry other training keys after a ``+``: ``--sets "l2+embedding_postprocess=none"`` runs
the set with that key changed too (a held-out choice of any pre-training key, same protocol).

Every benchmark run goes to ``W/<benchmark>/<set>/seed<seed>/`` (results.json, table.md, its runs),
and is skipped when its results.json is complete, so the command can be stopped and run again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from statistics import mean, stdev

from prerec.cli.experiment import resolve_config
from prerec.constants import DEFAULT_FACTORS
from prerec.evaluation.benchmark import Benchmark
from prerec.evaluation.benchmark_config import BenchmarkConfig
from prerec.popularity_factors import FACTOR_SETS
from prerec.registry import MODELS

BENCHMARKS = ("b1", "b2")
FREE_ROWS = ["popularity", *sorted(m for m in MODELS if m.startswith("popularity-")), "text-last"]
FREE = "training-free"  # the pseudo-set under which the training-free rows are run
METRICS = ("recall@k%", "rndcg@k%")


def config_for(bench: str, factor_set: str, seed: int, data: str | None) -> BenchmarkConfig:
    """The packaged benchmark with one zero-shot PreRec row, ``factor_set`` and training seed ``seed``."""
    cfg = BenchmarkConfig.from_toml(resolve_config(bench), data_dir=data)
    pre = json.loads(json.dumps(cfg.pretrain))
    name, *extra = factor_set.split("+")
    pre.setdefault("set", {})["popularity_factors"] = DEFAULT_FACTORS if factor_set == FREE else name
    for item in extra:  # "l2+embedding_postprocess=none": the set with other training keys changed
        key, _, value = item.partition("=")
        try:
            pre["set"][key] = json.loads(value)
        except json.JSONDecodeError:
            pre["set"][key] = value
    pre.pop("variant_set", None)
    models = FREE_ROWS if factor_set == FREE else ["prerec"]
    return replace(cfg, name=f"{cfg.name}-{factor_set}-seed{seed}", models=models, incremental=[],
                   train_seeds=[seed], seed_models=[], pretrain=pre)


def run_all(work: Path, sets: list[str], seeds: list[int], benches: list[str], data: str | None) -> None:
    jobs = [(b, FREE, 2023) for b in benches] + [(b, s, seed) for seed in seeds for s in sets for b in benches]
    for i, (bench, factor_set, seed) in enumerate(jobs, 1):
        out = work / bench / factor_set / f"seed{seed}"
        if done(out):
            continue
        logging.info("[%d/%d] %s, popularity_factors = %s, training seed %d", i, len(jobs), bench, factor_set, seed)
        Benchmark(config_for(bench, factor_set, seed, data), out, progress=False).run()


def done(out: Path) -> bool:
    p = out / "results.json"
    return p.exists() and json.loads(p.read_text()).get("complete", False)


def held_out(pretraining: dict) -> dict[str, float]:
    """Mean over a run's held-out sources of their zero-shot metrics at the epoch the run kept."""
    sel = pretraining.get("selection") or {}
    history = sel.get("history") or pretraining["history"]
    kept = sel.get("epochs") or pretraining["epoch_kept"]
    valid = next(h for h in history if h["epoch"] == kept)["valid"]
    return {m: mean(v[m] for v in valid.values()) for m in METRICS}


def collect(work: Path) -> dict:
    """Every finished run under ``work``: held-out and target metrics per (fold, set, seed)."""
    heldout: dict = {}  # fold -> set -> seed -> metrics
    target: dict = {}  # fold -> model/set -> seed -> metrics
    for res_path in sorted(work.glob("*/*/seed*/results.json")):
        bench, factor_set, seed = res_path.parts[-4], res_path.parts[-3], int(res_path.parts[-2][4:])
        res = json.loads(res_path.read_text())
        if not res.get("complete"):
            continue
        folds = [t for t in res["results"] if t != "mean"]
        for fold in folds + (["B1"] if bench == "b1" else []):
            row = res["results"]["mean" if fold == "B1" else fold]
            for model, metrics in row.items():
                key = factor_set if model == "prerec" and factor_set != FREE else model
                target.setdefault(fold, {}).setdefault(key, {})[seed] = {m: metrics[m] for m in METRICS}
        for name, p in res.get("pretraining", {}).items():
            fold = "B1" if bench == "b1" else name.removesuffix("-prerec")
            heldout.setdefault(fold, {}).setdefault(factor_set, {})[seed] = {
                **held_out(p), "select_on": p.get("select_on")}
    return {"heldout": heldout, "target": target}


def spread(by_seed: dict, metric: str) -> tuple[float, float, int]:
    vals = [v[metric] for v in by_seed.values()]
    return mean(vals), (stdev(vals) if len(vals) > 1 else 0.0), len(vals)


def fmt(by_seed: dict | None, metric: str) -> str:
    if not by_seed:
        return ""
    m, s, n = spread(by_seed, metric)
    return f"{m:.4f}" + (f" ± {s:.4f}" if n > 1 else "")


def variants(data: dict) -> list[str]:
    """The pre-trained variants run: factor sets (in their order), then sets with other keys changed."""
    found = {v for per in data["heldout"].values() for v in per}
    return [s for s in FACTOR_SETS if s in found] + sorted(found - set(FACTOR_SETS))


def selection(data: dict, first_seed: int = 2023) -> list[tuple[str, float, float]]:
    """Sets ranked by their mean held-out r-NDCG@1% over the five pre-trainings (first seed)."""
    folds = sorted(data["heldout"])
    rows = []
    for s in variants(data):
        vals = [data["heldout"][f].get(s, {}).get(first_seed) for f in folds]
        if all(vals):
            rows.append((s, mean(v["rndcg@k%"] for v in vals), mean(v["recall@k%"] for v in vals)))
    return sorted(rows, key=lambda r: -r[1])


FOLDS = ["B1", "amazon_scientific", "amazon_office", "lastfm", "online_retail_uk"]


def markdown(data: dict) -> str:
    ranked = selection(data)
    sets = [s for s, *_ in ranked]
    lines = ["# Which popularity factor set transfers (zero-shot PreRec)", "",
             "## Choice on held-out source domains (training seed 2023)", "",
             "Held-out zero-shot r-NDCG@1% / Recall@1% at the kept epoch, per pre-training "
             "(B1: mean of EIRE and Netherlands; a B2 fold: its held-out source).", "",
             "| set | " + " | ".join(FOLDS) + " | mean r-NDCG | mean Recall |", "|---|" + "---|" * (len(FOLDS) + 2)]
    for s, r, rec in ranked:
        cells = [f"{data['heldout'][f][s][2023]['rndcg@k%']:.4f} / {data['heldout'][f][s][2023]['recall@k%']:.4f}"
                 for f in FOLDS]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {r:.4f} | {rec:.4f} |")
    for metric, title in (("recall@k%", "Recall@1%"), ("rndcg@k%", "r-NDCG@1%")):
        lines += ["", f"## Target test users: {title} (mean ± sd over the training seeds run)", "",
                  "| row | seeds | " + " | ".join(FOLDS[1:]) + " | B2 mean | B1 |", "|---|---|" + "---|" * (len(FOLDS) + 1)]
        for row in [*sets, *FREE_ROWS]:
            by_fold = {f: data["target"].get(f, {}).get(row) for f in FOLDS}
            seeds = max((len(v) for v in by_fold.values() if v), default=0)
            b2 = b2_mean(by_fold, metric)
            label = row if row in FREE_ROWS else f"prerec ({row})"
            lines.append(f"| {label} | {seeds} | " + " | ".join(fmt(by_fold[f], metric) for f in FOLDS[1:])
                         + f" | {b2} | {fmt(by_fold['B1'], metric)} |")
    return "\n".join(lines + heldout_over_seeds(data) + bar(data)) + "\n"


def heldout_over_seeds(data: dict) -> list[str]:
    """The held-out score per training seed, for the sets run with more than one seed: over the
    five pre-trainings, and over the four B2 folds alone (sets re-run on B2 only)."""
    lines = ["", "## Held-out sources over training seeds (sets run with several seeds)", "",
             "| set | pre-trainings | seeds | held-out r-NDCG@1% | held-out Recall@1% |", "|---|---|---|---|---|"]
    for s in variants(data):
        for scope, folds in (("B1 + B2 folds", FOLDS), ("B2 folds", FOLDS[1:])):
            seeds = set.intersection(*(set(data["heldout"].get(f, {}).get(s, {})) for f in folds))
            if len(seeds) < 2:
                continue
            per = {seed: {m: mean(data["heldout"][f][s][seed][m] for f in folds) for m in METRICS} for seed in seeds}
            lines.append(f"| {s} | {scope} | {len(seeds)} | {fmt(per, 'rndcg@k%')} | {fmt(per, 'recall@k%')} |")
    lines += ["", "Per pre-training, held-out r-NDCG@1% (mean ± sd over the seeds each was run with):", "",
              "| set | " + " | ".join(FOLDS) + " |", "|---|" + "---|" * len(FOLDS)]
    for s in variants(data):
        cells = [data["heldout"].get(f, {}).get(s, {}) for f in FOLDS]
        if max(len(c) for c in cells) > 1:
            lines.append(f"| {s} | " + " | ".join(fmt(c, "rndcg@k%") for c in cells) + " |")
    return lines


def bar(data: dict) -> list[str]:
    """The issue's bar on every B2 fold: zero-shot PreRec (each set run with 3 seeds) against the
    best training-free popularity row and text-last, on both metrics (mean over seeds)."""
    lines = ["", "## The bar: every B2 fold, PreRec (3-seed mean) above the best training-free popularity "
             "row and text-last", "", "| set | fold | metric | prerec | best popularity row | text-last | holds |",
             "|---|---|---|---|---|---|---|"]
    for s in variants(data):
        if any(len(data["target"].get(f, {}).get(s, {})) < 3 for f in FOLDS[1:]):
            continue
        for f in FOLDS[1:]:
            rows = data["target"][f]
            for m in METRICS:
                ours = spread(rows[s], m)[0]
                pops = {k: spread(rows[k], m)[0] for k in FREE_ROWS if k.startswith("popularity") and k in rows}
                best = max(pops.values())
                tied = [k for k, v in pops.items() if v == best]
                pop = (best, tied[0] + (f" and {len(tied) - 1} equal" if len(tied) > 1 else ""))
                text = spread(rows["text-last"], m)[0]
                ok = "yes" if ours > pop[0] and ours > text else "**no**"
                lines.append(f"| {s} | {f} | {m} | {ours:.4f} | {pop[0]:.4f} ({pop[1]}) | {text:.4f} | {ok} |")
    return lines


def b2_mean(by_fold: dict, metric: str) -> str:
    """Mean over the four B2 folds, per seed, then mean ± sd over the seeds every fold has."""
    folds = [by_fold[f] for f in FOLDS[1:]]
    if not all(folds):
        return ""
    seeds = set.intersection(*(set(f) for f in folds))
    per_seed = {s: {metric: mean(f[s][metric] for f in folds)} for s in seeds}
    return fmt(per_seed, metric)


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s, *_ in selection(data)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, metric, title in zip(axes, METRICS, ("Recall@1%", "r-NDCG@1%"), strict=True):
        width = 0.8 / (len(sets) + 2)
        for i, row in enumerate([*sets, "popularity", "text-last"]):
            ys, es = [], []
            for f in FOLDS:
                v = data["target"].get(f, {}).get(row)
                m, s, _ = spread(v, metric) if v else (float("nan"), 0.0, 0)
                ys.append(m)
                es.append(s)
            ax.bar([x + i * width for x in range(len(FOLDS))], ys, width, yerr=es,
                   label=row if row in FREE_ROWS else f"prerec ({row})")
        ax.set_xticks([x + 0.4 for x in range(len(FOLDS))], FOLDS, rotation=20)
        ax.set_title(f"zero-shot {title}, target test users")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["run", "report"])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("results/popularity-transfer"))
    ap.add_argument("--sets", default=",".join(FACTOR_SETS))
    ap.add_argument("--seeds", default="2023")
    ap.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    ap.add_argument("--data", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.action == "run":
        run_all(args.work, args.sets.split(","), [int(s) for s in args.seeds.split(",")],
                args.benchmarks.split(","), args.data)
        return 0
    data = collect(args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(markdown(data))
    (args.out / "results.json").write_text(json.dumps(
        {"selection": selection(data), **{k: stringify(v) for k, v in data.items()}}, indent=1) + "\n")
    plot(data, args.out / "transfer.png")
    print((args.out / "table.md").read_text())
    return 0


def stringify(d: object) -> object:
    return {str(k): stringify(v) for k, v in d.items()} if isinstance(d, dict) else d


if __name__ == "__main__":
    sys.exit(main())
