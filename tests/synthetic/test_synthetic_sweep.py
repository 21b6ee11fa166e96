"""``prerec experiment synthetic``: config checks, and a tiny sweep end to end."""

from __future__ import annotations

import json

import pytest

from prerec.cli import main
from prerec.errors import PrerecError
from prerec.evaluation.synthetic_sweep import SweepConfig

TINY = """
name = "tiny"
kind = "synthetic"
seeds = [3]
biases = [1.5]
targets = ["d3"]
select_on = ["d2"]
models = ["oracle", "oracle-no-domain", "oracle-process", "prerec", "prerec-mc-empirical", "prerec-day-one",
          "popularity"]
max_instances = 300
[world]
n_domains = 4
n_users = 120
n_items = 200
[pretrain]
set = { hidden_size = 16, pop_hidden = 16, n_negatives = 15, epochs = 1, valid_max_instances = 100, device = "cpu" }
"""


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace('"popularity"]', '"nope"]'))
    with pytest.raises(PrerecError, match="unknown model"):
        SweepConfig.from_toml(bad)
    bad.write_text(TINY.replace('targets = ["d3"]', 'targets = ["d9"]'))
    with pytest.raises(PrerecError, match="d9"):
        SweepConfig.from_toml(bad)
    bad.write_text(TINY.replace("n_domains = 4", "n_domains = 4\nseed = 1"))
    with pytest.raises(PrerecError, match="seed"):
        SweepConfig.from_toml(bad)
    assert SweepConfig.from_toml(_write(tmp_path, TINY)).biases == [1.5]


def _write(tmp_path, text):
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


def test_tiny_sweep(tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    assert main(["experiment", str(_write(tmp_path, TINY)), "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["complete"] and (out / "synthetic.png").stat().st_size > 0
    recall = {r["model"]: r["recall@20"] for r in result["rows"]}
    assert set(recall) == {"oracle", "oracle-no-domain", "oracle-process", "prerec", "prerec-mc-empirical",
                           "prerec-day-one", "popularity"}
    _day_one_hides_popularity(out)
    (rec,) = result["recovery"]
    assert rec["variant"] == "prerec" and -1 <= rec["diagonal"] <= 1
    table = (out / "table.md").read_text()
    assert "beta = 1.5" in table and "| oracle |" in table
    # the runs and the world are reused by a second run
    assert main(["experiment", str(_write(tmp_path, TINY)), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]


def _day_one_hides_popularity(out):
    """DayOne scores = the model's scores with every popularity factor 0 (U.V + g(0))."""
    import numpy as np
    import torch

    from prerec.data import load_domains
    from prerec.data.instances import make_instances
    from prerec.evaluation.synthetic import DayOne
    from prerec.intervention import PreRecRecommender
    from prerec.run import load_run

    run = load_run(out / "work" / "runs" / "s3-b1.5-weight-decay-prerec")
    target = run.prepare(load_domains([f"d3=canonical:{out / 'work' / 'worlds' / 's3-b1.5' / 'd3'}"])[0])
    inst = make_instances(target.split.test).take(np.arange(20))
    hist, lengths = inst.histories(64)
    rec = PreRecRecommender(run)
    blind = DayOne(PreRecRecommender(run), "day-one").score(target, hist, lengths, inst.days)
    with torch.no_grad():
        g0 = float(run.model.popularity(torch.zeros(1, 4))[0])
    V = rec.item_tensor(target)
    expected = rec.scorer.user_vectors(V, hist, lengths, target.name) @ V.T + g0
    if run.model.cfg.repeat_mixture:  # the default: the history's items placed by the mixture
        from prerec.repeats import apply_repeat_mixture

        expected = apply_repeat_mixture(expected, hist, lengths)
    expected = expected.numpy()
    np.testing.assert_allclose(blind, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(blind - rec.score(target, hist, lengths, inst.days)).max() > 1e-3
