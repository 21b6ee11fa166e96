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
                  "Mean diagonal (does learned D_k point the planted way?) / diagonal minus off-diagonal / "
                  "share absorbed (slope of the learned tilt on the planted one: how much of it D_k "
                  "carries) / RMS of the learned D (per coordinate); at beta = 0 there is nothing to "
                  "recover.", ""]
        for form in cfg["forms"]:
            lines += [f"### prior form {form}", "", head.replace("model", "variant: measure"), sep]
            for variant in ("prerec", "prerec-no-pop"):
                for value, name in (("diagonal", "diagonal"), ("margin", "margin"),
                                    ("absorbed", "share absorbed"), ("d_rms", "RMS of D")):
                    per = _cells(rec, "variant", value).get((form, variant), {})
                    if per:
                        lines.append(f"| {variant}: {name} | "
                                     + " | ".join(_fmt(per.get(b, []), 3) for b in biases) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


BLIND = ("oracle-process", "prerec-no-pop", "zesrec", "prerec-day-one", "prerec-no-domain-day-one")


def _style(model: str) -> str:
    """Dashed: the models without a domain confounder (their PreRec twin is solid)."""
    return "--" if "no-domain" in model or model == "zesrec" else "-"


def plot_sweep(result: dict, path: str | Path) -> None:
    """One row of panels per prior form: Recall@K% against beta with and without the target's
    popularity (one line per model, error bars: sd over seeds), and the recovery of D."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    forms = result["config"]["forms"]
    fig, axes = plt.subplots(len(forms), 3, figsize=(17, 4.8 * len(forms)), squeeze=False)
    for row, form in zip(axes, forms, strict=True):
        _plot_form(result, form, row)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_form(result: dict, form: str, axes) -> None:
    models = result["config"]["models"]
    cells = _cells(result["rows"], "model", "recall@k%")
    groups = ([m for m in models if m not in BLIND], [m for m in models if m in BLIND])
    titles = ("zero-shot, target popularity on", "zero-shot, target popularity hidden")
    for ax, group, title in zip(axes[:2], groups, titles, strict=True):
        for m, model in enumerate(group):
            per = cells.get((form, model), {})
            xs = sorted(per)
            if xs:
                ax.errorbar(xs, [np.mean(per[x]) for x in xs], yerr=[np.std(per[x]) for x in xs],
                            ls=_style(model), marker="o", ms=3, capsize=2, color=f"C{m % 10}", label=model)
        ax.set(xlabel="planted domain bias |D_k| (beta)", ylabel="Recall@K% (mean over targets)",
               title=f"{title}\n(priors: {form})")
        ax.legend(fontsize=7)
    for key, ls in (("diagonal", "-"), ("absorbed", ":")):
        rec = _cells(result.get("recovery", []), "variant", key)
        for n, ((f, variant), per) in enumerate(sorted(rec.items())):
            xs = [x for x in sorted(per) if x > 0]
            if f == form and xs:
                axes[2].errorbar(xs, [np.mean(per[x]) for x in xs], yerr=[np.std(per[x]) for x in xs],
                                 marker="o", ms=3, capsize=2, ls=ls, color=f"C{n}", label=f"{variant}: {key}")
    axes[2].axhline(0, color="grey", lw=0.5)
    axes[2].set(xlabel="planted domain bias |D_k| (beta)", ylim=(-0.2, 1),
                title=f"D_k: correlation with the planted tilt; share absorbed\n(priors: {form})")
    axes[2].legend(fontsize=7)
