"""Zero-shot model selection with refit, and keep_last: against the same steps done by hand."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm)
from training_fixtures import tiny_config

from prerec.errors import PrerecError
from prerec.run import load_run
from prerec.training.pretrain import pretrain

CFG = dict(epochs=3, patience=3, max_instances_per_epoch=400)


def test_refit_equals_select_then_train_every_source(office, lastfm, tmp_path):
    cfg = tiny_config(**CFG, select_on=["lastfm"], refit=True)
    run = pretrain([office, lastfm], cfg, tmp_path / "run")

    # by hand: hold lastfm out, take the epoch its zero-shot validation prefers (first of ties) ...
    chooser = pretrain([office, lastfm], tiny_config(**CFG, select_on=["lastfm"]))
    metrics = [r["valid_metric"] for r in chooser.history]
    best = metrics.index(max(metrics)) + 1
    assert all(set(r["valid"]) == {"lastfm"} and r["valid"]["lastfm"]["inference"] == "zero-shot"
               for r in chooser.history)
    # ... then train on both sources for exactly that many epochs and keep the last
    final = pretrain([office, lastfm], tiny_config(**{**CFG, "epochs": best}, keep_last=True))

    assert run.selection["epochs"] == best and run.selection["select_on"] == ["lastfm"]
    assert [r["valid_metric"] for r in run.selection["history"]] == pytest.approx(metrics)
    assert run.source_names == ["office", "lastfm"]  # nothing is held out of the final model
    assert len(run.history) == best and run.config.epochs == best and run.config.keep_last
    for k, v in final.model.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[k], v, msg=k)

    again = load_run(tmp_path / "run")
    assert again.selection["epochs"] == best and again.epoch == run.epoch == best
    assert json.loads((tmp_path / "run" / "selection.json").read_text())["epochs"] == best


def test_keep_last_keeps_the_last_epoch(office, lastfm, tmp_path):
    run = pretrain([office, lastfm], tiny_config(**CFG, keep_last=True), tmp_path / "run")
    assert len(run.history) == 3 and run.epoch == 3
    assert all(r["valid"] for r in run.history)  # validation is still measured and recorded
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    last = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
    for k, v in run.model.state_dict().items():
        torch.testing.assert_close(saved[f"model.{k}"], v, msg=k)
        torch.testing.assert_close(last[f"model.{k}"], v, msg=k)


def test_refit_config_errors(office):
    with pytest.raises(PrerecError, match=r"refit.*select_on"):
        pretrain([office], dataclasses.replace(tiny_config(), refit=True))
    with pytest.raises(PrerecError, match="exclude each other"):
        pretrain([office], dataclasses.replace(tiny_config(), refit=True, keep_last=True, select_on=["office"]))


def test_refit_resume_reuses_the_choice_and_refuses_another(office, lastfm, tmp_path):
    cfg = tiny_config(**{**CFG, "epochs": 2}, select_on=["lastfm"], refit=True)
    first = pretrain([office, lastfm], cfg, tmp_path / "run")
    again = pretrain([office, lastfm], cfg, tmp_path / "run", resume=True)
    assert again.selection == json.loads((tmp_path / "run" / "selection.json").read_text())
    for k, v in first.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[k], v, msg=k)
    with pytest.raises(PrerecError, match="chosen on lastfm, not on office"):
        pretrain([office, lastfm], dataclasses.replace(cfg, select_on=["office"]), tmp_path / "run", resume=True)
