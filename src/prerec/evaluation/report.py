"""``table.md`` of a benchmark run: the main comparison, the unseen subset and the incremental curve."""

from __future__ import annotations

import statistics

METRICS = (("recall@k%", "Recall@K%"), ("rndcg@k%", "r-NDCG@K%"), ("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20"))


def _f(v) -> str:
    return "-" if v is None or v != v else f"{v:.4f}"


def summary_table(summary: dict, metric: str = "recall@k%", not_applicable: dict | None = None) -> list[str]:
    """A row per model: ``metric`` per domain, then the means of every metric; a row "n/a" for
    each model that does not apply (e.g. id-based baselines where ids are not shared)."""
    domains = [d for d in summary if d != "mean"]
    models = list(summary.get("mean", {}))
    head = ["model", *domains, *[f"mean {label}" for _, label in METRICS], "instances"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        mean = summary["mean"][m]
        row = [m, *[_f(summary[d].get(m, {}).get(metric)) for d in domains],
               *[_f(mean.get(k)) for k, _ in METRICS], f"{mean.get('instances', 0):,}"]
        lines.append("| " + " | ".join(row) + " |")
    for m in not_applicable or {}:
        lines.append("| " + " | ".join([m, *["n/a"] * (len(head) - 1)]) + " |")
    return lines


def seeds_table(by_seed: dict) -> list[str]:
    """Zero-shot PreRec rows over training seeds: mean and sample sd of each mean metric, and the
    value of each seed (the split, hence the test users, is the same for every seed)."""
    seeds = list(by_seed)
    models = [m for m in by_seed[seeds[0]] if all(m in by_seed[s] for s in seeds)]
    head = ["model", *[f"{label} mean ± sd" for _, label in METRICS[:2]], *[f"Recall@K% seed {s}" for s in seeds]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        cells = []
        for key, _ in METRICS[:2]:
            v = [by_seed[s][m][key] for s in seeds]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{sum(v) / len(v):.4f} ± {sd:.4f}")
        lines.append("| " + " | ".join([m, *cells, *[_f(by_seed[s][m]["recall@k%"]) for s in seeds]]) + " |")
    return lines


def curve_table(curve: dict, metric: str = "recall@k%") -> list[str]:
    """A row per method, a column per N: the mean over targets of ``metric``."""
    ns = list(dict.fromkeys(n for per_n in curve.values() for n in per_n))
    lines = ["| method | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for model, per_n in curve.items():
        cells = [_f(per_n.get(n, {}).get("mean", {}).get(model, {}).get(metric)) for n in ns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def markdown_report(result: dict) -> str:
    cfg = result["config"]
    out = [f"# {result['benchmark']}{' (quick)' if result.get('quick') else ''}", ""]
    if not result.get("complete", True):
        out += ["**Partial: the benchmark was still running when this was written.**", ""]
    if result.get("description"):
        out += [result["description"], ""]
    out += [f"Full ranking over each target's catalog; K = floor({cfg['ratio']} N); mean over test instances per "
            "target, then over targets without weights (docs/method.md, \"Evaluation\"). Encoder: "
            f"`{cfg['encoder']}`, split seed {cfg['seed']}."
            + (f" Evaluated on a seeded subset of {cfg['max_instances']} instances per target."
               if cfg.get("max_instances") else ""), ""]
    for f in result["folds"]:
        out.append(f"- fold `{f['name']}`: targets {', '.join(f['targets'])}; {len(f['sources'])} source domain(s): "
                   + ", ".join(f["sources"]))
    na = result.get("not_applicable", {})
    out += ["", "## Recall@K% per target, and means", "", *summary_table(result["results"], not_applicable=na), ""]
    out += ["## r-NDCG@K% per target", "", *summary_table(result["results"], "rndcg@k%", na), ""]
    out += [f"n/a `{m}`: {why}" for m, why in na.items()] + ([""] if na else [])
    by_seed = result.get("by_seed", {})
    if len(by_seed) > 1:
        out += [f"## Zero-shot PreRec over {len(by_seed)} training seeds (split seed {cfg['seed']}: the same test users)",
                "", *seeds_table(by_seed), ""]
    unseen = result.get("unseen", {})
    if any(m.get("instances") for m in unseen.get("mean", {}).values()):
        out += ["## Unseen targets (item id in no source domain)", "", *summary_table(unseen), ""]
    else:
        out += ["No test target is unseen (every target item id occurs in some source domain).", ""]
    if any(result.get("incremental", {}).values()):
        n_train = result.get("n_train_instances", {})
        out += ["## Incremental training: mean Recall@K% vs N target training instances", "",
                "N = all: every training instance of the target ("
                + ", ".join(f"{k} {v:,}" for k, v in n_train.items()) + ").", "",
                *curve_table(result["incremental"]), "", "Mean r-NDCG@K%:", "",
                *curve_table(result["incremental"], "rndcg@k%"), ""]
    secs = result.get("seconds", {})
    if "total" in secs:
        out += [f"Total wall time {secs['total'] / 60:.1f} min."]
    return "\n".join(out) + "\n"
