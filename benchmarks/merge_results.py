"""Merge the output folders of one benchmark run in parts (different models, same folds).

On a 2-core CPU a whole B2 takes longer than one sitting; it can run as two processes at once,
e.g. every PreRec model in one and SASRec from scratch in the other (both from b2.toml, same
split, same test instances), and be put back together here:

    python benchmarks/merge_results.py [--name NAME] OUT PART_DIR[:MODEL,MODEL] [PART_DIR[:MODELS] ...]

``:MODELS`` takes only those models' figures from a part (e.g. SASRec from an earlier run on
another machine: it does not depend on pre-training); ``NAME/table`` takes a model's main-table
row without its curve, ``NAME/curve`` its curve without the row (e.g. a curve re-run with newer
code beside the zero-shot rows of the first part). A model's incremental curve may come in
pieces from several parts (different N, or one N for different targets: a later part may have run
only some of the first part's folds; a target's point twice is refused; each point's mean is taken
again over the targets it has); a main-table row likewise (one part per fold, say; the means are
taken again over the merged targets). Parts named differently
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
from prerec.registry import MODELS

SAME = ("benchmark", "folds", "n_train_instances")
SAME_CONFIG = ("ratio", "ks", "seed", "encoder", "targets", "protocol", "max_instances")


def parse_pick(models: str) -> tuple[set[str], set[str]]:
    """``a,b/table,c/curve``: the models whose main-table rows and whose curves a part gives
    (``NAME``: both; ``NAME/table``: its row only; ``NAME/curve``: its curve only)."""
    table, curve = set(), set()
    for item in models.split(","):
        name, _, what = item.partition("/")
        if what not in ("", "table", "curve"):
            raise SystemExit(f"{item!r}: expected NAME, NAME/table or NAME/curve")
        if what in ("", "table"):
            table.add(name)
        if what in ("", "curve"):
            curve.add(name)
    return table, curve


def only(result: dict, models: set[str], curve_models: set[str] | None = None) -> dict:
    """The part restricted to ``models`` (main table, unseen subset and the per-seed rows) and
    ``curve_models`` (its incremental curves; default: the same models). Pre-training records are
    kept (the first part's are the merged benchmark's) unless no PreRec row is taken from the part:
    a part picked for SASRec only does not bring its pre-trainings."""
    curve_models = models if curve_models is None else curve_models
    out = dict(result)
    for section in ("results", "unseen"):
        out[section] = {t: {m: v for m, v in ms.items() if m in models} for t, ms in result[section].items()}
    out["by_seed"] = {s: {m: v for m, v in ms.items() if m in models} for s, ms in (result.get("by_seed") or {}).items()}
    if not any(m.startswith("prerec") or m == "zesrec" for m in models | curve_models):
        out["pretraining"] = {}
    out["incremental"] = {m: c for m, c in result["incremental"].items() if m in curve_models}
    out["config"] = {**result["config"], "models": [m for m in result["config"]["models"] if m in models],
                     "incremental_models": [m for m in result["config"]["incremental_models"] if m in curve_models]}
    return out


def _same_or_subset(key: str, first: object, other: object) -> bool:
    """A later part may have run only some of the first part's folds (the same folds, targets and
    training sizes, fewer of them): e.g. a curve point finished for the targets a stopped run missed."""
    if other == first:
        return True
    if key == "folds":
        return all(f in first for f in other)
    if key in ("n_train_instances",):
        return all(first.get(t) == n for t, n in other.items())
    if key == "targets":
        return set(other) <= set(first)
    return False


def mean_row(per_target: dict) -> dict:
    """The curve point's mean over its targets, as ``Results.summary`` computes it: unweighted over
    targets with instances, ``instances`` their total."""
    means: dict = {}
    models = dict.fromkeys(m for t, ms in per_target.items() if t != "mean" for m in ms)
    for m in models:
        rows = [ms[m] for t, ms in per_target.items() if t != "mean" and m in ms and ms[m].get("instances", 0) > 0]
        keys = [k for k in (rows[0] if rows else {}) if k != "instances"]
        means[m] = {**{k: float(sum(r[k] for r in rows) / len(rows)) for k in keys},
                    "instances": int(sum(r["instances"] for r in rows))}
    return means


def merge_seeds(parts: list[dict], targets: list[str]) -> dict:
    """The seeded rows' per-seed means over the merged targets: a part's per-seed row is its mean
    over its own targets, so parts are weighed by their number of targets; a (seed, model) is kept
    only where the parts together cover every target (each once: the results section refuses a
    model that two parts report for one target)."""
    rows: dict = {}
    for p in parts:
        n = len(p["config"]["targets"])
        for seed, models in (p.get("by_seed") or {}).items():
            for m, v in models.items():
                rows.setdefault(seed, {}).setdefault(m, []).append((n, v))
    out: dict = {}
    for seed, models in rows.items():
        for m, pieces in models.items():
            total = sum(n for n, _ in pieces)
            if total != len(targets):
                continue
            keys = [k for k in pieces[0][1] if k != "instances"]
            out.setdefault(seed, {})[m] = {**{k: float(sum(n * v[k] for n, v in pieces) / total) for k in keys},
                                           "instances": int(sum(v.get("instances", 0) for _, v in pieces))}
    return out


def merge(parts: list[dict], name: str | None = None) -> dict:
    first = parts[0]
    for p in parts[1:]:
        for key in SAME:
            if key == "benchmark" and name is not None:
                continue
            if not _same_or_subset(key, first[key], p[key]):
                raise SystemExit(f"parts differ in {key!r}")
        for key in SAME_CONFIG:
            if not _same_or_subset(key, first["config"].get(key), p["config"].get(key)):
                raise SystemExit(f"parts differ in config key {key!r}")
    out = json.loads(json.dumps(first))
    out["complete"] = all(p["complete"] for p in parts)
    out["config"]["models"] = list(dict.fromkeys(m for p in parts for m in p["config"]["models"]))
    out["config"]["incremental_models"] = list(dict.fromkeys(m for p in parts for m in p["config"]["incremental_models"]))
    out["config"]["incremental"] = list(dict.fromkeys(n for p in parts for n in p["config"].get("incremental", [])))
    out["parts"] = [p["config"] for p in parts]
    for section in ("results", "unseen"):
        # a model's rows may come from parts that ran different folds (each for its targets); the
        # mean over targets is taken again from the merged rows
        merged: dict = {}
        for p in parts:
            for target, models in p[section].items():
                if target == "mean":
                    continue
                dup = set(merged.setdefault(target, {})) & set(models)
                if dup:
                    raise SystemExit(f"{section}/{target}: {', '.join(sorted(dup))} reported by two parts")
                merged[target].update(models)
        if merged:
            merged["mean"] = mean_row(merged)
        out[section] = merged
    if name is not None:
        out["benchmark"] = name
    out["incremental"] = {}
    for p in parts:  # a point (model, N) may come from several parts, each for other targets
        for m, c in p["incremental"].items():
            curve = out["incremental"].setdefault(m, {})
            for n, per_target in c.items():
                point = curve.setdefault(n, {})
                dup = (set(point) & set(per_target)) - {"mean"}
                if dup:
                    raise SystemExit(f"incremental/{m}: N = {n} reported by two parts (for {', '.join(sorted(dup))})")
                point.update({t: v for t, v in per_target.items() if t != "mean"})
    for c in out["incremental"].values():
        for point in c.values():
            point["mean"] = mean_row(point)
    def n_order(n: object) -> float:
        return float("inf") if str(n) == "all" else float(n)

    out["config"]["incremental"] = sorted(out["config"]["incremental"], key=n_order)
    out["incremental"] = {m: dict(sorted(c.items(), key=lambda kv: n_order(kv[0])))
                          for m, c in out["incremental"].items() if c}
    # as prerec experiment does: N = all of a curve is the main table's model that equals it (the
    # registry's same_as: prerec-finetuned for prerec's curve), when a part has it
    if "all" in out["config"].get("incremental", []):
        for m, c in out["incremental"].items():
            row = dict(MODELS[m].same_as).get("all") if m in MODELS else None
            if "all" not in c and row is not None and all(row in models for models in out["results"].values()):
                c["all"] = {t: {m: models[row]} for t, models in out["results"].items()}
    # complete when every part was, or when together they hold every row and every curve point
    # (a part stopped during its curve may be completed by a part that ran the missing points)
    targets, cfg = out["config"]["targets"], out["config"]
    na = set(out.get("not_applicable", {}))  # id-based rows a fold reports as n/a
    out["complete"] = out["complete"] or (
        all(m in out["results"].get(t, {}) for t in targets for m in cfg["models"] if m not in na)
        and all(t in out["incremental"].get(m, {}).get(str(n), {}) for m in cfg["incremental_models"]
                for n in cfg["incremental"] for t in targets))
    out["by_seed"] = merge_seeds(parts, targets)
    out["pretraining"] = {}
    for p in parts:  # a run reused by a later part keeps the record of the part that trained it
        for k, v in p["pretraining"].items():
            out["pretraining"].setdefault(k, v)
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
    dirs, picks, parts, asked = [], [], [], []
    for a in args:
        d, _, models = a.partition(":")
        part = json.loads((Path(d) / "results.json").read_text())
        table = None
        if models:
            table, curve = parse_pick(models)
            part = only(part, table, curve)
        dirs.append(Path(d))
        picks.append(table)
        asked.append(models.split(",") if models else "all")
        parts.append(part)
    result = merge(parts, name)
    result["merged_from"] = [{"dir": str(d), "models": m} for d, m in zip(dirs, asked)]
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
        ranked = {x[0] for x in k}
        if keys is not None and k != {x for x in keys if x[0] in ranked}:  # on the domains it ranked
            raise SystemExit(f"{d}: its test instances differ from the first part's")
        keys = keys if keys is not None else k
    pd.concat(frames, ignore_index=True).to_parquet(out / "instances.parquet", index=False)
    for seed in result["by_seed"]:  # the seeded rows' per-instance files (seeds after the first)
        seeded = []
        for d, p in zip(dirs, picks):
            if (d / f"instances-seed{seed}.parquet").exists():
                f = pd.read_parquet(d / f"instances-seed{seed}.parquet")
                seeded.append(f if p is None else f[f["model"].isin(p)])
        if any(len(f) for f in seeded):
            pd.concat(seeded, ignore_index=True).to_parquet(out / f"instances-seed{seed}.parquet", index=False)
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
