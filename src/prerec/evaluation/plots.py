"""``incremental.png``: metric vs number of target training instances, one line per method."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def plot_incremental(curve: dict, n_train: dict[str, int], main: dict | None, path: str | Path,
                     title: str = "", metrics: tuple[str, ...] = ("recall@k%", "rndcg@k%")) -> None:
    """Log-x plot; N = 0 sits at x = 1 (labelled 0); N = all (every training instance, a different
    count per target) sits right of the largest N, labelled with the targets' mean training size.
    Training-free baselines of ``main`` (if any) are drawn as dotted horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean_all = float(np.mean(list(n_train.values()))) if n_train else 1.0
    counts = [float(n) for per_n in curve.values() for n in per_n if n != "all"]
    x_all = max(mean_all, 3.0 * max([*counts, 1.0]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ticks: dict[float, str] = {}
        for model, per_n in curve.items():
            xs, ys = [], []
            for n, summary in per_n.items():
                v = summary.get("mean", {}).get(model, {}).get(metric)
                if v is None or v != v:
                    continue
                x = x_all if n == "all" else max(float(n), 1.0)
                ticks[x] = f"all\n(mean {mean_all:,.0f})" if n == "all" else str(n)
                xs.append(x)
                ys.append(v)
            order = np.argsort(xs)
            ax.plot(np.array(xs)[order], np.array(ys)[order], marker="o", label=model)
        for model, m in (main or {}).get("mean", {}).items():
            if model in ("popularity", "text", "text-last") and m.get(metric) is not None:
                ax.axhline(m[metric], linestyle=":", linewidth=1, color="grey")
                ax.annotate(model, (1.0, m[metric]), fontsize=7, color="grey", va="bottom")
        ax.set_xscale("log")
        if ticks:
            ax.set_xticks(sorted(ticks), [ticks[x] for x in sorted(ticks)])
        ax.set_xlabel("target training instances N (log scale)")
        ax.set_ylabel(f"mean {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
