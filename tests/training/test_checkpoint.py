"""Run directories and checkpoints: a killed and resumed run ends with the same weights as an
uninterrupted one; load_run gives back the same model; bad input and foreign run directories
exit 2 without leaving anything half-written; no pickle anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm, retail)
from training_fixtures import tiny_config

import prerec.training.pretrain as pretrain_mod
from prerec.checkpoint import load_tensors
from prerec.cli import main
from prerec.errors import PrerecError
from prerec.run import load_run
from prerec.training.pretrain import pretrain

RUN_KW = dict(epochs=3, patience=5, max_instances_per_epoch=700, checkpoint_steps=4, lr=2e-3)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds"), r.pop("instances_per_s")
    return rows


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill_after", [2, 5])  # mid-epoch 1, and after epoch 1 + mid-epoch 2
def test_killed_and_resumed_run_ends_with_the_same_weights(office, retail, tmp_path, monkeypatch, kill_after):
    domains = [office, retail[0]]
    ref = pretrain(domains, tiny_config(**RUN_KW), tmp_path / "ref")
    ref_w = _weights(ref.model)

    calls = {"n": 0}
    real = pretrain_mod.save_checkpoint

    def dying(*args, **kw):
        real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == kill_after:
            raise Killed

    monkeypatch.setattr(pretrain_mod, "save_checkpoint", dying)
    with pytest.raises(Killed):
        pretrain(domains, tiny_config(**RUN_KW), tmp_path / "run")
    monkeypatch.setattr(pretrain_mod, "save_checkpoint", real)
    with pytest.raises(PrerecError, match="--resume"):
        pretrain(domains, tiny_config(**RUN_KW), tmp_path / "run")
    resumed = pretrain(domains, tiny_config(**RUN_KW), tmp_path / "run", resume=True)
    for k, v in ref_w.items():
        torch.testing.assert_close(_weights(resumed.model)[k], v, rtol=0, atol=0, msg=k)
    assert _metrics(tmp_path / "run") == _metrics(tmp_path / "ref")
    # the loaded run is the same model
    loaded = load_run(tmp_path / "run")
    for k, v in ref_w.items():
        torch.testing.assert_close(_weights(loaded.model)[k], v, rtol=0, atol=0)


def test_run_directory_contents_and_round_trip(office, lastfm, tmp_path):
    run = pretrain([office, lastfm], tiny_config(epochs=1, max_instances_per_epoch=500), tmp_path / "r",
                   specs=["office=canonical:x", "lastfm=canonical:y"])
    d = tmp_path / "r"
    names = sorted(p.name for p in d.iterdir())
    assert names == ["checkpoint.safetensors", "config.json", "domains.json", "encoder.json", "item_ids.json",
                     "metrics.jsonl", "model.safetensors", "postprocess.safetensors"]
    for p in d.iterdir():  # safetensors or JSON, each readable as such: no pickle anywhere
        if p.suffix == ".safetensors":
            with safe_open(str(p), framework="pt") as fh:
                assert list(fh.keys())
        elif p.suffix == ".jsonl":
            assert all(json.loads(line) for line in p.read_text().splitlines())
        else:
            json.loads(p.read_text())
    tensors, meta = load_tensors(d / "checkpoint.safetensors")
    assert any(k.startswith("optim.") for k in tensors) and "rng.torch" in tensors
    assert meta["state"]["epoch"] == 1
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["train"]["epochs"] == 1 and cfg["model"]["hidden_size"] == 32
    ids = json.loads((d / "item_ids.json").read_text())
    assert ids["office"] == [str(i) for i in office.item_ids]
    assert json.loads((d / "encoder.json").read_text())["identity"] == "hash:64"

    loaded = load_run(d)
    assert loaded.source_names == ["office", "lastfm"]
    # each source's text taste signal (prerec.text.taste) is saved with the run, as trained
    assert [s.taste_signal for s in loaded.sources] == [s.taste_signal for s in run.sources]
    assert all(isinstance(s.taste_signal, float) for s in loaded.sources)
    assert loaded.source_taste_signal() == pytest.approx(np.mean([s.taste_signal for s in run.sources]))
    prepared = loaded.prepare(office)
    np.testing.assert_allclose(prepared.item_emb, run.prepare(office).item_emb)
    from prerec.intervention import PreRecRecommender

    h, n = np.array([[0, 1, -1], [2, -1, -1]]), np.array([2, 1])
    for mode in ("zero-shot", "in-domain"):
        a = PreRecRecommender(run, mode).score(prepared, h, n, np.array([-1, -1]))
        b = PreRecRecommender(loaded, mode).score(prepared, h, n, np.array([-1, -1]))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _canonical(dir_: Path, texts: list[str]) -> str:
    dir_.mkdir(parents=True)
    rows = [(f"u{u}", f"i{(u + k) % len(texts)}", 1_300_000_000 + 86400 * k) for u in range(30) for k in range(5)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_parquet(dir_ / "interactions.parquet")
    pd.DataFrame({"item_id": [f"i{j}" for j in range(len(texts))], "text": texts}).to_parquet(dir_ / "items.parquet")
    return str(dir_)


def test_cli_errors_exit_2_and_leave_nothing(tmp_path, capsys):
    good = _canonical(tmp_path / "good", [f"item number {j}" for j in range(12)])
    bare = _canonical(tmp_path / "bare", [""] * 12)
    base = ["pretrain", "--encoder", "hash:16", "--preset", "cpu", "--set", "epochs=1", "--set", "hidden_size=16",
            "--set", "progress=false", "--set", "device=cpu"]
    out = tmp_path / "run"
    assert main([*base, "--source", f"bare=canonical:{bare}", "--out", str(out)]) == 2
    assert "no item text" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out), "--set", "epochs=many"]) == 2
    err = capsys.readouterr().err
    assert "'epochs' expects int" in err and not out.exists()
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out), "--set", "batch=3"]) == 2
    assert "unknown config key 'batch'" in capsys.readouterr().err
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out)]) == 0
    assert (out / "model.safetensors").exists()
    # the same directory again without --resume, or with another configuration: exit 2, untouched
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out), "--resume", "--set", "seed=1"]) == 2
    assert "different run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a finished run resumed: nothing left to do, same weights
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(out), "--resume"]) == 0
    assert (out / "model.safetensors").read_bytes() == before["model.safetensors"]
    # a non-empty directory that is not a run
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main([*base, "--source", f"g=canonical:{good}", "--out", str(other)]) == 2
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
