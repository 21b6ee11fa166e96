"""The popularity head's share of zero-shot scores, on a tiny run, against direct computations."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm, retail)
from training_fixtures import tiny_config

from prerec.evaluation.evaluate import EvalConfig, evaluate_model
from prerec.evaluation.metrics import instance_metrics, mean_metrics
from prerec.evaluation.popularity_share import measure_target, score_parts, variance_parts
from prerec.intervention import PreRecRecommender
from prerec.training.pretrain import pretrain
from shared_data import shared

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(office, lastfm, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("share") / "run"
    pretrain([office, lastfm], tiny_config(epochs=1, max_instances_per_epoch=1000, lr=2e-3), out=out)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    from prerec.run import load_run

    return load_run(run_dir)


@pytest.fixture(scope="module")
def target(run, retail):
    return run.prepare(retail[0])


CFG = EvalConfig(progress=False, batch_size=64)


def test_variance_parts_against_numpy():
    rng = np.random.default_rng(0)
    uv, g = rng.normal(size=(5, 50)), rng.normal(size=(5, 50)) + 0.3 * rng.normal(size=(5, 50))
    parts = variance_parts(uv, g)
    for i in range(5):
        c = np.cov(uv[i], g[i], bias=True)
        assert np.allclose(parts[i], [c[0, 0], c[1, 1], 2 * c[0, 1]])
        assert parts[i].sum() == pytest.approx(np.var(uv[i] + g[i]))


def test_parts_are_the_model_pieces(run, target):
    rec = PreRecRecommender(run, "zero-shot")
    from prerec.data.instances import make_instances

    inst = make_instances(target.split.test).take(np.arange(8))
    hist, lengths = inst.histories()
    uv, g = score_parts(rec, target, hist, lengths, inst.days)
    assert np.allclose(uv + g, rec.score(target, hist, lengths, inst.days), atol=1e-5)  # the parts add up
    for row, day in enumerate(inst.days):  # g straight from the head on the target's own factors
        with torch.no_grad():
            ref_g = run.model.popularity(torch.from_numpy(target.factors(int(day), np.arange(target.n_items))))
        assert np.allclose(g[row], ref_g.numpy(), atol=1e-5)
    assert np.ptp(g) > 0  # the factors vary by item and day: the head is not a constant here


def test_shares_and_rankings_agree_with_the_evaluation(run, target):
    rec = PreRecRecommender(run, "zero-shot")
    res = measure_target(rec, target, CFG)
    assert sum(res.share.values()) == pytest.approx(1.0, abs=1e-9)
    assert 0 < res.share["pop"] < 1 and 0 < res.share["uv"] < 1
    full = evaluate_model(rec, target, CFG)
    ref = mean_metrics(instance_metrics(full.n_higher, full.n_tied, target.n_items))
    assert res.metrics["full"] == pytest.approx(ref, abs=1e-12)
    # U.V alone is the model with its popularity head taken out
    no_pop = copy.copy(run)
    no_pop.model = copy.deepcopy(run.model)
    no_pop.model.pop = None
    r = evaluate_model(PreRecRecommender(no_pop, "zero-shot"), target, CFG)
    ref = mean_metrics(instance_metrics(r.n_higher, r.n_tied, target.n_items))
    assert res.metrics["uv-only"] == pytest.approx(ref, abs=1e-12)
    assert res.metrics["pop-only"] != res.metrics["full"]


def test_script_end_to_end(run_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("popularity_share", ROOT / "benchmarks" / "popularity_share.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    results = script.main(["--run", str(run_dir), "--target", f"Germany=online-retail:{path}#Germany",
                           "--max-instances", "60", "--out", str(tmp_path)])
    assert [r.target for r in results] == ["Germany"] and results[0].instances == 60
    assert "| Germany | 60 |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "results.json").exists()
