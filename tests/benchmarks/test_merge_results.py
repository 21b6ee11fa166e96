"""benchmarks/merge_results.py: parts of one benchmark put back together, pieces of curves too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import merge_results as mr  # noqa: E402


def part(name: str, models: list[str], curve: dict[str, list[str]]) -> dict:
    fig = {"recall@k%": 0.1, "rndcg@k%": 0.01, "instances": 5}
    return {
        "benchmark": name, "folds": [{"name": "all"}], "n_train_instances": {"x": 9}, "complete": True,
        "config": {"models": models, "incremental_models": list(curve), "incremental": [0, 10, "all"],
                   "ratio": 0.01, "ks": [20], "seed": 2023, "encoder": "e5", "targets": ["x"], "protocol": "fixed"},
        "results": {"x": {m: fig for m in models}, "mean": {m: fig for m in models}},
        "unseen": {}, "pretraining": {}, "seconds": {"total": 1.0},
        "incremental": {m: {n: {"x": {m: fig}} for n in ns} for m, ns in curve.items()},
    }


def test_curve_pieces_and_names():
    a = part("B1-zero-shot", ["prerec", "sasrec-scratch"], {"sasrec-scratch": ["0", "10"]})
    b = part("B1-sasrec-10000", [], {"sasrec-scratch": ["10000"]})
    with pytest.raises(SystemExit, match="benchmark"):
        mr.merge([a, b])
    a["complete"] = False  # stopped before its curve's N = 10000; b ran that point
    a["config"]["incremental"] = [0, 10, 10000, "all"]
    out = mr.merge([a, b], name="B1")
    assert out["benchmark"] == "B1" and out["complete"]
    assert list(out["incremental"]["sasrec-scratch"]) == ["0", "10", "10000", "all"]  # in order; all: the main row
    with pytest.raises(SystemExit, match="N = 10 reported by two parts"):
        mr.merge([a, part("B1", [], {"sasrec-scratch": ["10"]})], name="B1")


def test_incomplete_stays_incomplete():
    a = part("B1", ["prerec", "sasrec-scratch"], {"sasrec-scratch": ["0"]})
    a["complete"] = False  # N = 10 is missing and no part has it
    assert not mr.merge([a, part("B1", [], {"sasrec-scratch": []})])["complete"]


def test_one_curve_point_from_parts_that_ran_different_folds():
    """SASRec at N = 10000 stopped after two of four folds; a later part ran the other two."""
    def folds_part(targets: list[str], figs: dict[str, float]) -> dict:
        p = part("B2", [], {"sasrec-scratch": []})
        p["folds"] = [{"name": t, "targets": [t]} for t in targets]
        p["n_train_instances"] = {t: 9 for t in targets}
        p["config"]["targets"] = targets
        p["config"]["incremental"] = [10000]
        p["incremental"] = {"sasrec-scratch": {"10000": {
            **{t: {"sasrec-scratch": {"recall@k%": figs[t], "instances": 10}} for t in targets},
            "mean": {"sasrec-scratch": {"recall@k%": -1.0, "instances": 0}}}}}  # the part's own mean
        return p

    full = folds_part(["a", "b", "c", "d"], {"a": 0.1, "b": 0.2, "c": 0, "d": 0})
    full["incremental"]["sasrec-scratch"]["10000"] = {t: full["incremental"]["sasrec-scratch"]["10000"][t]
                                                       for t in ("a", "b")}
    full["complete"] = False
    full["config"]["models"] = ["markov"]  # n/a on every fold (no shared ids): no row, still complete
    full["not_applicable"] = {"markov": "identity: no source domain declares a shared item key space"}
    rest = folds_part(["c", "d"], {"c": 0.4, "d": 0.5})
    out = mr.merge([full, rest])
    point = out["incremental"]["sasrec-scratch"]["10000"]
    assert set(point) == {"a", "b", "c", "d", "mean"}
    assert point["mean"]["sasrec-scratch"] == {"recall@k%": pytest.approx(0.3), "instances": 40}
    assert out["complete"]
    with pytest.raises(SystemExit, match="for c"):
        mr.merge([full, rest, folds_part(["c"], {"c": 0.9})])
    other = folds_part(["e"], {"e": 0.1})
    with pytest.raises(SystemExit, match="folds"):
        mr.merge([full, other])


def test_a_models_row_and_curve_from_different_parts():
    old = part("B2", ["prerec", "prerec-finetuned"], {"prerec": ["0", "10"]})
    old["pretraining"] = {"f-prerec": {"seconds": 100.0}}
    new = part("B2", ["prerec-finetuned"], {"prerec": ["0", "10"]})
    new["pretraining"] = {"f-prerec": {"seconds": None}}  # the run reused
    new["results"]["x"]["prerec-finetuned"] = {"recall@k%": 0.5, "rndcg@k%": 0.2, "instances": 5}
    with pytest.raises(SystemExit, match="reported by two parts"):
        mr.merge([old, new])
    table, curve = mr.parse_pick("prerec/table")
    a = mr.only(old, table, curve)
    table, curve = mr.parse_pick("prerec-finetuned,prerec/curve")
    b = mr.only(new, table, curve)
    out = mr.merge([a, b])
    assert out["results"]["x"]["prerec-finetuned"]["recall@k%"] == 0.5
    assert set(out["results"]["x"]) == {"prerec", "prerec-finetuned"}
    # N = all of PreRec's curve: the fine-tuned row (registry same_as), here the new part's
    assert out["incremental"]["prerec"]["all"]["x"]["prerec"]["recall@k%"] == 0.5
    assert out["pretraining"]["f-prerec"]["seconds"] == 100.0  # the record of the part that trained it
    with pytest.raises(SystemExit, match="NAME/table"):
        mr.parse_pick("prerec/rows")


def test_a_main_table_row_from_parts_that_ran_different_folds():
    """Fine-tuning re-run fold by fold: each part reports the row for its own target; the mean is
    taken again over the merged targets, and a target reported twice is refused."""
    def fold(t: str, recall: float) -> dict:
        p = part("B2", ["prerec-finetuned"], {})
        p["folds"], p["n_train_instances"] = [{"name": t, "targets": [t]}], {t: 9}
        p["config"]["targets"], p["config"]["incremental"] = [t], []
        row = {"recall@k%": recall, "rndcg@k%": recall / 10, "instances": 5 if t != "c" else 15}
        p["results"] = {t: {"prerec-finetuned": row}, "mean": {"prerec-finetuned": {"recall@k%": -1.0}}}
        return p

    base = part("B2", ["popularity"], {})
    base["folds"] = [{"name": t, "targets": [t]} for t in "abc"]
    base["n_train_instances"] = {t: 9 for t in "abc"}
    base["config"]["targets"], base["config"]["incremental"] = list("abc"), []
    base["results"] = {t: {"popularity": {"recall@k%": 0.1, "rndcg@k%": 0.01, "instances": 5}} for t in "abc"}
    base["results"]["mean"] = {"popularity": {"recall@k%": 0.1, "rndcg@k%": 0.01, "instances": 15}}
    out = mr.merge([base, fold("a", 0.2), fold("b", 0.4), fold("c", 0.9)])
    mean = out["results"]["mean"]
    assert mean["prerec-finetuned"] == {"recall@k%": pytest.approx(0.5), "rndcg@k%": pytest.approx(0.05),
                                        "instances": 25}  # unweighted over targets, instances summed
    assert mean["popularity"] == {"recall@k%": pytest.approx(0.1), "rndcg@k%": pytest.approx(0.01), "instances": 15}
    assert out["complete"]
    with pytest.raises(SystemExit, match="results/b: prerec-finetuned reported by two parts"):
        mr.merge([base, fold("b", 0.4), fold("b", 0.5)])


def test_seeded_rows_are_merged_over_folds_and_a_sasrec_part_brings_no_pretraining():
    """One part per fold, each with its own per-seed rows; an earlier run gives SASRec only."""
    def fold(t: str, r: float) -> dict:
        p = part("B2", ["prerec"], {})
        p["folds"] = [{"name": t, "targets": [t]}]
        p["n_train_instances"] = {t: 9}
        p["config"]["targets"] = [t]
        p["results"] = {t: {"prerec": {"recall@k%": r, "rndcg@k%": r / 10, "instances": 5}}}
        p["by_seed"] = {"2024": {"prerec": {"recall@k%": r + 0.01, "rndcg@k%": r / 10, "instances": 5}}}
        p["pretraining"] = {f"{t}-prerec": {"new": True}}
        return p

    old = fold("a", 0.0)
    old["folds"] = [{"name": t, "targets": [t]} for t in "abc"]
    old["n_train_instances"] = {t: 9 for t in "abc"}
    old["config"]["targets"] = ["a", "b", "c"]
    old["config"]["models"] = ["prerec", "sasrec-scratch"]
    old["results"] = {t: {"prerec": {"recall@k%": 0.9, "instances": 5}, "sasrec-scratch": {"recall@k%": 0.5, "instances": 5}}
                      for t in "abc"}
    old["by_seed"] = {"2024": {"prerec": {"recall@k%": 0.9, "rndcg@k%": 0.9, "instances": 15}}}
    old["pretraining"] = {f"{t}-prerec": {"new": False} for t in "abc"}
    sasrec_only = mr.only(old, {"sasrec-scratch"})
    assert sasrec_only["pretraining"] == {} and sasrec_only["by_seed"] == {"2024": {}}
    out = mr.merge([sasrec_only, fold("a", 0.1), fold("b", 0.2), fold("c", 0.6)], name="B2")
    assert out["by_seed"]["2024"]["prerec"]["recall@k%"] == pytest.approx(0.31)  # (0.11 + 0.21 + 0.61) / 3
    assert out["by_seed"]["2024"]["prerec"]["instances"] == 15
    assert all(v == {"new": True} for v in out["pretraining"].values()) and len(out["pretraining"]) == 3
    # a seeded row that does not cover every target is left out, not averaged over fewer
    assert "prerec" not in mr.merge([sasrec_only, fold("a", 0.1), fold("b", 0.2)], name="B2")["by_seed"].get("2024", {})
