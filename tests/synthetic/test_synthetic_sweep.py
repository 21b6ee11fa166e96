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
models = ["oracle", "oracle-no-domain", "prerec", "prerec-mc-empirical", "popularity"]
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
    models = {r["model"] for r in result["rows"]}
    assert models == {"oracle", "oracle-no-domain", "prerec", "prerec-mc-empirical", "popularity"}
    (rec,) = result["recovery"]
    assert rec["variant"] == "prerec" and -1 <= rec["diagonal"] <= 1
    table = (out / "table.md").read_text()
    assert "beta = 1.5" in table and "| oracle |" in table
    # the runs and the world are reused by a second run
    assert main(["experiment", str(_write(tmp_path, TINY)), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
