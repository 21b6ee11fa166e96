"""Merge the output folders of one benchmark run in parts (different models, same folds).

On a 2-core CPU a whole B2 takes longer than one sitting; it can run as two processes at once,
e.g. every PreRec model in one and SASRec from scratch in the other (both from b2.toml, same
split, same test instances), and be put back together here:

    python benchmarks/merge_results.py [--name NAME] OUT PART_DIR[:MODEL,MODEL] [PART_DIR[:MODELS] ...]

``:MODELS`` takes only those models' figures from a part (e.g. SASRec from an earlier run on
another machine: it does not depend on pre-training). A model's incremental curve may come in
pieces from several parts (different N; the same N twice is refused). Parts named differently
(e.g. a zero-shot part and a curve part of one benchmark) are merged only under ``--name NAME``,
the merged benchmark's name; folds, targets and test instances must still agree. Writes ``OUT/results.json``,
``table.md``, ``incremental.png`` and ``instances.parquet`` as ``prerec experiment`` would.
Refuses parts whose folds, targets, protocol or test instances (checked row by row) differ,
and a model that two parts both report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prerec.evaluation.plots import plot_incremental
from prerec.evaluation.report import markdown_report

SAME = ("benchmark", "folds", "n_train_instances")
SAME_CONFIG = ("ratio", "ks", "seed", "encoder", "targets", "protocol", "max_instances")


def only(result: dict, models: set[str]) -> dict:
    """The part restricted to ``models`` (main table, unseen subset and curve)."""
    out = dict(result)
    for section in ("results", "unseen"):
        out[section] = {t: {m: v for m, v in ms.items() if m in models} for t, ms in result[section].items()}
    out["incremental"] = {m: c for m, c in result["incremental"].items() if m in models}
    out["pretraining"] = {}
    out["config"] = {**result["config"], "models": [m for m in result["config"]["models"] if m in models],
                     "incremental_models": [m for m in result["config"]["incremental_models"] if m in models]}
    return out


def merge(parts: list[dict], name: str | None = None) -> dict:
    first = parts[0]
    for p in parts[1:]:
        for key in SAME:
            if key == "benchmark" and name is not None:
                continue
            if p[key] != first[key]:
                raise SystemExit(f"parts differ in {key!r}")
        for key in SAME_CONFIG:
            if p["config"].get(key) != first["config"].get(key):
                raise SystemExit(f"parts differ in config key {key!r}")
    out = json.loads(json.dumps(first))
    out["complete"] = all(p["complete"] for p in parts)
    out["config"]["models"] = [m for p in parts for m in p["config"]["models"]]
    out["config"]["incremental_models"] = [m for p in parts for m in p["config"]["incremental_models"]]
    out["config"]["incremental"] = list(dict.fromkeys(n for p in parts for n in p["config"].get("incremental", [])))
    out["parts"] = [p["config"] for p in parts]
    for section in ("results", "unseen"):
        merged: dict = {}
        for p in parts:
            for target, models in p[section].items():
                dup = set(merged.setdefault(target, {})) & set(models)
                if dup:
                    raise SystemExit(f"{section}/{target}: {', '.join(sorted(dup))} reported by two parts")
                merged[target].update(models)
        out[section] = merged
    if name is not None:
        out["benchmark"] = name
    out["incremental"] = {}
    for p in parts:
        for m, c in p["incremental"].items():
            dup = set(out["incremental"].setdefault(m, {})) & set(c)
            if dup:
                raise SystemExit(f"incremental/{m}: N = {', '.join(sorted(dup))} reported by two parts")
            out["incremental"][m].update(c)
    out["incremental"] = {m: c for m, c in out["incremental"].items() if c}
    # as prerec experiment does: N = all of a curve is the main table's model, when a part has it
    if "all" in out["config"].get("incremental", []):
        for m, c in out["incremental"].items():
            if "all" not in c and all(m in models for models in out["results"].values()):
                c["all"] = {t: {m: models[m]} for t, models in out["results"].items()}
    # complete when every part was, or when together they hold every row and every curve point
    # (a part stopped during its curve may be completed by a part that ran the missing points)
    targets, cfg = out["config"]["targets"], out["config"]
    out["complete"] = out["complete"] or (
        all(m in out["results"].get(t, {}) for t in targets for m in cfg["models"])
        and all(str(n) in out["incremental"].get(m, {}) for m in cfg["incremental_models"] for n in cfg["incremental"]))
    out["pretraining"] = {k: v for p in parts for k, v in p["pretraining"].items()}
    out["seconds"] = {f"part{i}/{k}": v for i, p in enumerate(parts) for k, v in p["seconds"].items()}
    if all("total" in p["seconds"] for p in parts):
        out["seconds"]["total"] = max(p["seconds"]["total"] for p in parts)  # the parts ran side by side
    return out


def main() -> int:
    argv = sys.argv[1:]
    name = None
    if argv[:1] == ["--name"] and len(argv) > 1:
        name, argv = argv[1], argv[2:]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    out, args = Path(argv[0]), argv[1:]
    dirs, picks, parts = [], [], []
    for a in args:
        d, _, models = a.partition(":")
        part = json.loads((Path(d) / "results.json").read_text())
        if models:
            part = only(part, set(models.split(",")))
        dirs.append(Path(d))
        picks.append(set(models.split(",")) if models else None)
        parts.append(part)
    result = merge(parts, name)
    result["merged_from"] = [{"dir": str(d), "models": sorted(p) if p else "all"} for d, p in zip(dirs, picks)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    # a part with curve points only (no main-table row) may have no instances file
    frames = [pd.read_parquet(d / "instances.parquet") if (d / "instances.parquet").exists()
              else pd.DataFrame({"model": pd.Series(dtype=str)}) for d in dirs]
    frames = [f if p is None else f[f["model"].isin(p)] for f, p in zip(frames, picks)]
    keys = None
    for d, f in zip(dirs, frames):  # every part ranked the very same test instances
        if f.empty:
            continue
        one = f[f["model"] == f["model"].iloc[0]]
        k = set(zip(one["domain"], one["user_id"].astype(str), one["position"], one["item_id"].astype(str)))
        if keys is not None and k != keys:
            raise SystemExit(f"{d}: its test instances differ from the first part's")
        keys = k
    pd.concat(frames, ignore_index=True).to_parquet(out / "instances.parquet", index=False)
    note = "\n".join(f"- part {i + 1}: `{m['dir']}`, models: {m['models'] if m['models'] == 'all' else ', '.join(m['models'])}"
                     for i, m in enumerate(result["merged_from"]))
    (out / "table.md").write_text(markdown_report(result) + "\nMerged from (`benchmarks/merge_results.py`):\n\n"
                                  + note + "\n")
    if any(result["incremental"].values()):
        plot_incremental(result["incremental"], result["n_train_instances"], result["results"],
                         out / "incremental.png", title=f"{result['benchmark']}: metric vs target training instances")
    print(f"merged {len(dirs)} part(s) into {out} (complete: {result['complete']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
