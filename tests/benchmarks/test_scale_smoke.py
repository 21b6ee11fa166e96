"""benchmarks/scale.py at a tiny size, so the scale curve's code does not rot.

The generator's corpus must read back through the canonical reader with the sizes it states,
and every stage must run on it (in this process, one after another) and yield a time and a
peak; the table and the plot are written from the rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

scale = pytest.importorskip("scale")
scale_corpus = pytest.importorskip("scale_corpus")
scale_stages = pytest.importorskip("scale_stages")


def test_within_cumsum_restarts_at_segment_starts():
    values = np.array([1, 2, 3, 4, 5, 6])
    starts = np.array([True, False, True, False, False, True])
    assert scale_corpus.within_cumsum(values, starts).tolist() == [1, 3, 3, 7, 12, 6]


def test_lengths_sum_to_n_and_are_at_least_two():
    rng = np.random.default_rng(0)
    for n in (20, 101, 5000):
        lengths = scale_corpus.draw_lengths(n, rng)
        assert lengths.sum() == n and lengths.min() >= 2


def test_corpus_reads_back_and_every_stage_runs(tmp_path, monkeypatch):
    from prerec.data import load_domains

    monkeypatch.setenv("PREREC_CACHE_DIR", str(tmp_path / "cache"))
    info = scale_corpus.write_corpus(tmp_path / "c", 2000, dim=16)
    domains = load_domains(scale_corpus.domain_specs(tmp_path / "c"))
    assert [len(d.interactions) for d in domains] == [s["interactions"] for s in info["domains"].values()]
    assert [d.n_items for d in domains] == [s["items_in_log"] for s in info["domains"].values()]
    for d in domains:  # each user's interactions in time order, within the 180 days
        seq = d.sequences
        assert (np.diff(seq.days)[np.diff(np.repeat(np.arange(len(seq)), seq.lengths)) == 0] >= 0).all()
        assert np.ptp(seq.days) < scale_corpus.DAYS
    rows = []
    for stage in scale_stages.STAGES:
        r = scale_stages.measure(tmp_path / "c", stage, steps=2, eval_instances=50)
        assert r["seconds"] >= 0 and r["peak_mb"] > 0, r
        rows.append({"size": 2000, "status": "ok", "process_s": 0.0, "process_peak_mb": r["peak_mb"], **r})
    by = {r["stage"]: r for r in rows}
    assert by["evaluate"]["instances"] == 50 and by["train"]["steps"] >= 2
    assert by["serve_hnsw"]["vectors"] == info["domains"]["a"]["items_in_log"]
    text = scale.write_outputs(rows, [2000], tmp_path / "out", {"sizes": [2000]})
    assert "| popularity |" in text and (tmp_path / "out" / "scale.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["rows"]) == len(scale_stages.STAGES)
