"""Do popularity windows' counts fit the half-Gaussian the popularity factors assume?

Usage: python benchmarks/popularity_fit.py [--data ../shared/data] [--out results/popularity-fit]
                                           [--max-windows 400] [--seed 0] [--min-plot 200]

For every open domain (B1: the Online Retail countries; B2: amazon_scientific, amazon_office,
lastfm, online_retail_uk; the XMarket Electronics markets) the windows are those the popularity
index reads: ``domain_popularity_index`` (the whole log with timestamps; one window over the
training users' interactions without) and ``PopularityIndex.window(day)`` for the log's days
after the first. A domain with more than ``--max-windows`` distinct days is read on the days of
``--max-windows`` interactions evenly spaced through the day-sorted log, so a day is picked in
proportion to its traffic (how often training and evaluation read its window). Each window's
counts are fitted by each model of ``prerec.popularity_fit`` (half-normal, log-normal, power
law, negative binomial; a scale per window), and summarised per domain: AIC per item against the
best model, share of windows won, KS distance of the pooled randomised quantile residuals to
N(0, 1), and the normaliser ratios s_p / s_1 against the half-Gaussian's.

Writes ``table.md``, ``results.json``, ``quantiles.json`` (the plotted curves), ``qq.png`` (QQ plots of the pooled residuals, one panel
per domain with at least ``--min-plot`` pooled counts) and ``factors.png`` (the pooled second
factor F_2 = c / s_2 against half-normal(1) quantiles, the assumption read directly) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import special
from tqdm import tqdm

from prerec.data.domain import Domain
from prerec.data.prepared import domain_popularity_index
from prerec.data.readers import load_domains
from prerec.data.split import DEFAULT_SEED, split_users
from prerec.popularity import PopularityIndex
from prerec.popularity_fit import HALF_NORMAL_RATIOS, MODELS, WindowFit, fit_window, normalisers, summarise

XMARKETS = ("ca", "uk", "fr", "de", "mx", "jp", "in")
SHORT = {"half-normal": "HN", "log-normal": "LN", "power-law": "PL", "neg-binomial": "NB"}
COLOURS = {"half-normal": "tab:red", "log-normal": "tab:blue", "power-law": "tab:green",
           "neg-binomial": "tab:orange"}
PROBS = np.linspace(0.0025, 0.9975, 399)


def domain_groups(data: str) -> dict[str, list[str]]:
    """The open domains by benchmark. B1's United Kingdom is B2's online_retail_uk (the same
    country of the same file, cleaned alike), so it is listed once, under B2."""
    xm = f"{data}/xmarket_electronics"
    return {
        "B1": ["online-retail:embedded#!United Kingdom"],
        "B2": [f"amazon_scientific=unisrec:{data}/amazon_scientific",
               f"amazon_office=canonical:{data}/amazon_office",
               f"lastfm=canonical:{data}/lastfm",
               f"online_retail_uk=online-retail:{data}/online_retail/online_retail_2010_2011.parquet"
               "#United Kingdom"],
        "XMarket": [f"xm_{m}=xmarket-5core:{xm}/{m}_5core.txt" for m in XMARKETS]
                   + [f"xm_es=recbole:{xm}/es.inter"],
    }


def window_days(index: PopularityIndex, max_windows: int) -> list[int | None]:
    """The days whose windows are measured (``[None]``: the one window of an untimed domain)."""
    if index.days is None:
        return [None]
    days = index.days[index.days > index.days[0]]  # the first day has an empty window
    distinct = np.unique(days)
    if len(distinct) <= max_windows:
        return distinct.tolist()
    pos = np.linspace(0, len(days) - 1, max_windows).round().astype(np.int64)
    return np.unique(days[pos]).tolist()


def measure_domain(domain: Domain, max_windows: int,
                   rng: np.random.Generator) -> tuple[list[WindowFit], np.ndarray]:
    """Fit every model to every measured window of one domain; also the pooled second factors
    F_2 = c / s_2 (a half-Gaussian window gives half-normal(1) values whatever its scale)."""
    index = domain_popularity_index(domain, split_users(domain.sequences, DEFAULT_SEED))
    fits, f2 = [], []
    for day in tqdm(window_days(index, max_windows), desc=domain.name, leave=False):
        _, counts = index.window(day)
        if len(counts):
            fits.append(fit_window(counts, rng))
            f2.append(counts / normalisers(counts)[1])
    return fits, np.concatenate(f2) if f2 else np.empty(0)


def residual_quantiles(fits: list[WindowFit]) -> dict[str, list[float]]:
    """Quantiles of the pooled residuals at ``PROBS``, per model (for the QQ plots)."""
    return {m: np.round(np.quantile(np.concatenate([f.residuals[m] for f in fits]), PROBS), 3).tolist()
            for m in MODELS}


def run(groups: dict[str, list[str]], max_windows: int, seed: int) -> list[dict]:
    """Measure every domain; one record per domain with at least one window."""
    rng = np.random.default_rng(seed)
    records = []
    for group, specs in groups.items():
        for domain in tqdm(load_domains(specs), desc=group):
            fits, f2 = measure_domain(domain, max_windows, rng)
            if not fits:
                print(f"{group} {domain.name}: no window (a single day of data), left out")
                continue
            rec = {"group": group, "domain": domain.name, "timed": bool(domain.has_time),
                   "interactions": int(domain.sequences.n_interactions), **summarise(fits)}
            rec["residual_quantiles"] = residual_quantiles(fits)
            rec["f2_quantiles"] = np.round(np.quantile(f2, PROBS), 3).tolist()
            records.append(rec)
    return records


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def tables(records: list[dict], max_windows: int) -> str:
    """table.md: the windows' shape, then the models compared."""
    hn = HALF_NORMAL_RATIOS
    lines = [
        "# Popularity windows against the half-Gaussian assumption",
        "",
        "Made by `benchmarks/popularity_fit.py` (reading: docs/popularity.md). Windows: every day of "
        f"the log after the first (at most {max_windows}, traffic-weighted); untimed domains: one window.",
        "",
        "## The windows",
        "",
        f"s_p/s_1: median over windows; a half-Gaussian gives {hn[1]:.2f}, {hn[2]:.2f}, {hn[3]:.2f} "
        "whatever its scale. c=1: share of pooled counts equal to 1. F2 of c=1: an item seen once in "
        "the window, its second factor 1/s2 (median over windows).",
        "",
        "| group | domain | windows | items/window | c=1 | F2 of c=1 | s2/s1 | s3/s1 | s4/s1 | s4/s1 p10-p90 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        s = r["s_ratio_median"]
        lo, hi = r["s4_s1_p10_p90"]
        lines.append(f"| {r['group']} | {r['domain']} | {r['windows']} | {r['items_per_window_median']:.0f} | "
                     f"{r['share_ones']:.2f} | {r['f2_of_count_one_median']:.2f} | {s[1]:.2f} | {s[2]:.2f} | {s[3]:.2f} | {lo:.2f}-{hi:.2f} |")
    short = [SHORT[m] for m in MODELS]
    lines += [
        "",
        "## The models (HN half-normal, LN log-normal, PL power law, NB negative binomial)",
        "",
        "dAIC/item: AIC summed over windows per pooled count, minus the best model's (0 = best). "
        "won: share of informative windows (>= 10 items, >= 2 distinct counts) each model fits best "
        "by AIC. KS: distance of the pooled randomised quantile residuals to N(0, 1) (0 = perfect).",
        "",
        "| group | domain | counts | " + " | ".join(f"dAIC {s}" for s in short) + " | informative | "
        + " | ".join(f"won {s}" for s in short) + " | " + " | ".join(f"KS {s}" for s in short) + " | best |",
        "|---|---|---|" + "---|" * (3 * len(MODELS) + 2),
    ]
    for r in records:
        cells = ([_fmt(r["aic_per_item"][m]) for m in MODELS] + [str(r["informative_windows"])]
                 + [_fmt(r["won"][m], ".2f") for m in MODELS] + [_fmt(r["ks"][m]) for m in MODELS])
        lines.append(f"| {r['group']} | {r['domain']} | {r['pooled_counts']} | " + " | ".join(cells)
                     + f" | {SHORT[r['best_aic']]} |")
    return "\n".join(lines) + "\n"


def qq_figure(records: list[dict], min_plot: int, path: Path) -> list[str]:
    """One page of QQ plots (pooled residual quantiles against N(0, 1)); returns the domains left out."""
    shown = [r for r in records if r["pooled_counts"] >= min_plot]
    cols = 6
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.7 * rows + 0.8), squeeze=False)
    z = special.ndtri(PROBS)
    for ax, r in zip(axes.flat, shown):
        ax.plot([-3, 3], [-3, 3], color="0.6", lw=0.8, ls="--")
        for m in MODELS:
            ax.plot(z, np.clip(r["residual_quantiles"][m], -4, 6), color=COLOURS[m], lw=1.3,
                    label=f"{SHORT[m]} KS {r['ks'][m]:.2f}")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-4, 6)
        ax.set_title(f"{r['group']} {r['domain']} (n={r['pooled_counts']}, w={r['windows']})", fontsize=8)
        ax.legend(fontsize=6, loc="upper left", frameon=False)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle("Popularity window counts: randomised quantile residuals of each model, pooled over a "
                 "domain's windows, against N(0, 1)\n(on the dashed diagonal = the model fits; "
                 "HN = the half-Gaussian the factors assume; y clipped to [-4, 6])", fontsize=10)
    fig.supxlabel("N(0, 1) quantile", fontsize=9)
    fig.supylabel("residual quantile", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [r["domain"] for r in records if r["pooled_counts"] < min_plot]


def factor_figure(records: list[dict], min_plot: int, path: Path) -> None:
    """One page: the pooled F_2 = c / s_2 of each domain against half-normal(1) quantiles."""
    shown = [r for r in records if r["pooled_counts"] >= min_plot]
    cols = 6
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.7 * rows + 0.8), squeeze=False)
    x = special.ndtri((1 + PROBS) / 2)  # half-normal(1) quantiles
    for ax, r in zip(axes.flat, shown):
        ax.plot([0, 3], [0, 3], color="0.6", lw=0.8, ls="--")
        ax.plot(x, np.clip(r["f2_quantiles"], 0, 8), color="k", lw=1.3)
        ax.set_xlim(0, 3.1)
        ax.set_ylim(0, 8)
        ax.set_title(f"{r['group']} {r['domain']} (F2 at q={PROBS[-1]:.4f}: {r['f2_quantiles'][-1]:.1f})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle("The second popularity factor F2 = c / s2, pooled over a domain's windows, against "
                 "half-normal(1)\n(a half-Gaussian window lies on the dashed diagonal whatever its scale; "
                 f"quantiles {PROBS[0]:.4f}..{PROBS[-1]:.4f}; y clipped to 8)", fontsize=10)
    fig.supxlabel("half-normal(1) quantile", fontsize=9)
    fig.supylabel("F2 quantile", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def commit() -> str:
    """The repository's commit, for the record (``unknown`` outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", help="the shared open data folder")
    ap.add_argument("--out", default="results/popularity-fit")
    ap.add_argument("--max-windows", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0, help="seed of the residuals' randomisation")
    ap.add_argument("--min-plot", type=int, default=200, help="fewest pooled counts for a QQ panel")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = run(domain_groups(args.data), args.max_windows, args.seed)
    (out / "table.md").write_text(tables(records, args.max_windows))
    left_out = qq_figure(records, args.min_plot, out / "qq.png")
    factor_figure(records, args.min_plot, out / "factors.png")
    meta = {"commit": commit(), "max_windows": args.max_windows, "seed": args.seed,
            "split_seed": DEFAULT_SEED, "models": list(MODELS), "min_plot": args.min_plot,
            "not_plotted": left_out, "half_normal_ratios": HALF_NORMAL_RATIOS.tolist()}
    curves = {r["domain"]: {k: r.pop(k) for k in ("residual_quantiles", "f2_quantiles")} for r in records}
    (out / "results.json").write_text(json.dumps({"settings": meta, "domains": records}, indent=1))
    (out / "quantiles.json").write_text(json.dumps({"probs": PROBS.round(4).tolist(), "domains": curves}))
    print((out / "table.md").read_text())
    print(f"QQ plots: {out / 'qq.png'}; not plotted (< {args.min_plot} counts): {', '.join(left_out) or 'none'}")


if __name__ == "__main__":
    main()
