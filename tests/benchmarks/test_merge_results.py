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
    assert set(out["incremental"]["sasrec-scratch"]) == {"0", "10", "10000", "all"}  # all: the main row
    with pytest.raises(SystemExit, match="N = 10 reported by two parts"):
        mr.merge([a, part("B1", [], {"sasrec-scratch": ["10"]})], name="B1")


def test_incomplete_stays_incomplete():
    a = part("B1", ["prerec", "sasrec-scratch"], {"sasrec-scratch": ["0"]})
    a["complete"] = False  # N = 10 is missing and no part has it
    assert not mr.merge([a, part("B1", [], {"sasrec-scratch": []})])["complete"]
