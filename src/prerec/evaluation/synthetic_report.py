"""The synthetic sweep's table (``table.md``) and figure (``synthetic.png``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = (("recall@k%", "Recall@K%"), ("rndcg@k%", "r-NDCG@K%"))


def _cells(rows: list[dict], key: str, value: str) -> dict:
    """{(form, name): {bias: [values over seeds]}}."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        v = r.get(value)
        if v is not None:
            out[(r["form"], r[key])][r["bias"]].append(float(v))
    return out


def _fmt(values: list[float], digits: int = 3) -> str:
    if not values:
        return ""
    mean = f"{np.mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {np.std(values):.{digits}f}"


PAIRS = (("prerec", "prerec-no-domain"), ("prerec-no-pop", "zesrec"),
         ("prerec-day-one", "prerec-no-domain-day-one"), ("prerec-mc-empirical", "prerec"),
         ("prerec-mc-prior", "prerec"))


def _gaps(result: dict, biases: list[float], head: str, sep: str) -> list[str]:
    """Paired differences of Recall@K% within each world (mean ± sd over seeds)."""
    value = {(r["form"], r["model"], r["bias"], r["seed"]): r.get("recall@k%") for r in result["rows"]}
    lines = []
    for form in result["config"]["forms"]:
        body = []
        for a, b in PAIRS:
            cells = []
            for bias in biases:
                d = [value[(form, a, bias, s)] - value[(form, b, bias, s)] for s in result["config"]["seeds"]
                     if value.get((form, a, bias, s)) is not None and value.get((form, b, bias, s)) is not None]
                cells.append(_fmt(d))
            if any(cells):
                body.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
        if body:
            lines += [f"## Paired differences of Recall@K% (same world), prior form {form}", "",
                      head.replace("| model |", "| difference |"), sep, *body, ""]
    return lines


def sweep_markdown(result: dict) -> str:
    """Mean over world seeds (± their standard deviation) of each model's mean over targets."""
    cfg = result["config"]
    biases = [float(b) for b in cfg["biases"]]
    seeds = cfg["seeds"]
    lines = [f"# {result['experiment']}: zero-shot transfer against the planted domain bias", "",
             result.get("description", ""), "",
             f"Worlds: seeds {', '.join(map(str, seeds))}; targets {', '.join(cfg['targets'])}; epoch chosen "
             f"zero-shot on {', '.join(cfg['select_on']) or 'in-domain validation'}; encoder {cfg['encoder']}; "
             f"K = floor({cfg['ratio']} N). Cells: mean over seeds ± sd of the mean over targets."
             + ("" if result.get("complete") else " **Incomplete: the sweep is still running.**"), ""]
    head = "| model | " + " | ".join(f"beta = {b:g}" for b in biases) + " |"
    sep = "|---|" + "---|" * len(biases)
    for metric, label in METRICS:
        cells = _cells(result["rows"], "model", metric)
        for form in cfg["forms"]:
            lines += [f"## {label}, prior form {form}", "", head, sep]
            for model in cfg["models"]:
                per = cells.get((form, model), {})
                lines.append(f"| {model} | " + " | ".join(_fmt(per.get(b, [])) for b in biases) + " |")
            lines.append("")
    lines += _gaps(result, biases, head, sep)
    rec = result.get("recovery", [])
    if rec:
        lines += ["## Recovery of the planted D (centred correlation of tilts; docs/synthetic.md)", "",
                  "Mean diagonal / diagonal minus off-diagonal / RMS of the learned D (per coordinate); "
                  "at beta = 0 there is nothing to recover.", ""]
        for form in cfg["forms"]:
            lines += [f"### prior form {form}", "", head.replace("model", "variant: measure"), sep]
            for variant in ("prerec", "prerec-no-pop"):
                for value, name in (("diagonal", "diagonal"), ("margin", "margin"), ("d_rms", "RMS of D")):
                    per = _cells(rec, "variant", value).get((form, variant), {})
                    if per:
                        lines.append(f"| {variant}: {name} | "
                                     + " | ".join(_fmt(per.get(b, []), 3) for b in biases) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def plot_sweep(result: dict, path: str | Path) -> None:
    """Recall@K% against beta (one line per model, error bars: sd over seeds) and recovery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = result["config"]
    forms = cfg["forms"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
    cells = _cells(result["rows"], "model", "recall@k%")
    styles = ["-", "--", ":"]
    colours = plt.get_cmap("tab20").colors
    for m, model in enumerate(cfg["models"]):
        for f, form in enumerate(forms):
            per = cells.get((form, model), {})
            xs = sorted(per)
            if not xs:
                continue
            ys = [np.mean(per[x]) for x in xs]
            err = [np.std(per[x]) for x in xs]
            axes[0].errorbar(xs, ys, yerr=err, ls=styles[f % 3], marker="o", ms=3, capsize=2,
                             color=colours[m % len(colours)], label=model if len(forms) == 1 else f"{model} ({form})")
    axes[0].set(xlabel="planted domain bias |D_k| (beta)", ylabel="Recall@K% (mean over targets)",
                title="zero-shot on targets with their own D_k")
    axes[0].legend(fontsize=7, ncol=2)
    rec = _cells(result.get("recovery", []), "variant", "diagonal")
    for (form, variant), per in sorted(rec.items()):
        xs = [x for x in sorted(per) if x > 0]
        axes[1].errorbar(xs, [np.mean(per[x]) for x in xs], yerr=[np.std(per[x]) for x in xs], marker="o",
                         ms=3, capsize=2, ls=styles[forms.index(form) % 3], label=f"{variant} ({form})")
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].set(xlabel="planted domain bias |D_k| (beta)", ylabel="correlation, learned vs planted tilt",
                title="recovery of the sources' D_k (centred)", ylim=(-0.2, 1))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
