"""Zero-shot model selection: which epoch each criterion keeps, and what it gives on the targets.

The target of a zero-shot benchmark cannot choose anything, so the question is which signal from
the sources picks a model that transfers. For one benchmark config (b1, b2 or a TOML file) and
each of its folds this pre-trains PreRec three ways with the config's own preset:

  in-domain   the trainer's default: mean in-domain validation r-NDCG@K% of every source;
  loso        the config's held-out sources (``select_on`` / ``select_from``) are left out of
              training and the epoch is the best of their zero-shot (D = 0) validation;
  loso-refit  the same choice, then trained again on every source for that many epochs.

and scores zero-shot PreRec on the targets' test users (the targets only measure, never choose).

    python benchmarks/model_selection.py b1 --out /tmp/selection-b1
    python benchmarks/model_selection.py b2 --data ../shared/data --out /tmp/selection-b2

Prints one table (mean Recall@K% and r-NDCG@K% over the targets, the chosen number of epochs per
fold) and writes ``selection.json`` and ``selection.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prerec.evaluation.benchmark import Benchmark, BenchmarkConfig

METHODS = ("in-domain", "loso", "loso-refit")


def method_config(base: BenchmarkConfig, method: str) -> BenchmarkConfig:
    cfg = copy.deepcopy(base)
    cfg.models, cfg.incremental, cfg.incremental_models = ["prerec"], [], []
    pre = cfg.pretrain
    sets = dict(pre.get("set", {}))
    held = sets.pop("select_on", None)
    sets.pop("refit", None)
    if held and "select_from" not in pre:  # one fixed list: the same rule as select_from
        pre["select_from"], pre["select_count"] = list(held), len(held)
    if "select_from" not in pre:
        raise SystemExit("the config names no held-out sources ([pretrain] select_from or set.select_on)")
    if method == "in-domain":
        pre.pop("select_from"), pre.pop("select_count", None)
    elif method == "loso-refit":
        sets["refit"] = True
    pre["set"] = sets
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="b1, b2 or an experiment TOML file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=None, help="shared data folder for {data}")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = Path(args.config)
    if not path.exists():
        path = Path(str(resources.files("prerec") / "configs" / "experiments" / f"{args.config}.toml"))
    base = BenchmarkConfig.from_toml(path, data_dir=args.data)
    out = Path(args.out)
    rows = {}
    for method in args.methods.split(","):
        cfg = method_config(base, method)
        result = Benchmark(cfg, out / method, progress=False).run()
        mean = result["results"]["mean"]["prerec"]
        per_target = {t: v["prerec"]["recall@k%"] for t, v in result["results"].items() if t != "mean"}
        epochs = {k.removesuffix("-prerec"): f"{v['epoch_kept']} of {v['epochs_trained']}"
                  if not v["refit"] else f"{v['epoch_kept']} (chosen)" for k, v in result["pretraining"].items()}
        chosen = {k.removesuffix("-prerec"): v["select_on"] for k, v in result["pretraining"].items()}
        rows[method] = {"recall@k%": mean["recall@k%"], "rndcg@k%": mean["rndcg@k%"], "per_target": per_target,
                        "epochs": epochs, "select_on": chosen}
    targets = list(next(iter(rows.values()))["per_target"])
    lines = [f"# Zero-shot model selection on {base.name}", "",
             "| selection | " + " | ".join(targets) + " | mean Recall@K% | mean r-NDCG@K% | epoch kept per fold |",
             "|---|" + "---|" * len(targets) + "---|---|---|"]
    for method, r in rows.items():
        cells = " | ".join(f"{r['per_target'][t]:.4f}" for t in targets)
        epochs = ", ".join(f"{k} {v}" for k, v in r["epochs"].items())
        lines.append(f"| {method} | {cells} | {r['recall@k%']:.4f} | {r['rndcg@k%']:.4f} | {epochs} |")
    table = "\n".join(lines) + "\n"
    print(table)
    (out / "selection.md").write_text(table)
    (out / "selection.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
