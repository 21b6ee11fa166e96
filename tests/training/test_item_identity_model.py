"""Item identity: declared shared ids only, MAP prior, kept zero-shot, grown by fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm, retail)
from training_fixtures import tiny_config

from prerec.cli import main
from prerec.config import FinetuneConfig, build_config
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.training.finetune import finetune_run
from prerec.training.loop import prior_decay
from prerec.training.pretrain import pretrain
from shared_data import shared


@pytest.fixture(scope="module")
def run(markets, tmp_path_factory):
    out = tmp_path_factory.mktemp("identity") / "run"
    cfg = tiny_config(epochs=2, lr=3e-3, item_identity=True, lambda_identity=1.0, select_on=["Spain"])
    return pretrain(markets[:3], cfg, out)


def test_identity_needs_declared_shared_ids(office, lastfm):
    with pytest.raises(PrerecError, match="declares a shared item key space"):
        pretrain([office, lastfm], tiny_config(epochs=1, item_identity=True))


def test_identity_switched_on_for_undeclared_domains_exits_2(tmp_path, capsys):
    rc = main(["pretrain", "--source", f"office=canonical:{shared('amazon_office')}", "--source",
               f"lastfm=canonical:{shared('lastfm')}", "--out", str(tmp_path / "r"), "--preset", "cpu",
               "--set", "item_identity=true", "--set", "epochs=1", "--set", "encoder=hash:16"])
    assert rc == 2 and "shared item key space" in capsys.readouterr().err
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_map_prior_weight_and_the_text_only_variant():
    cfg = build_config("paper", sets=["lambda_identity=50", "prior_form=map"])
    d = prior_decay(cfg, 1000)
    assert d["identity"] == pytest.approx(0.05) and d["domain"] == pytest.approx(0.3 / 1000)
    d = prior_decay(build_config("paper", sets=["lambda_identity=50"]), 1000)
    assert d["identity"] == pytest.approx(0.05) and d["domain"] == pytest.approx(0.3)  # identity: MAP always
    text = build_config("paper", sets=["item_identity=true", "variant=prerec-text"])
    assert not text.model.item_identity and text.model.domain_confounder


def test_vocabulary_saved_and_items_keep_identity_zero_shot(run, markets):
    trained = {s.name for s in run.sources if s.role == "train"}
    assert trained == {"Germany", "France"} and run.model.identity is not None
    assert run.model.identity.shape[0] == len(run.identity)
    assert float(run.model.identity.detach().abs().sum()) > 0  # learned from 0
    loaded = load_run(run.path)
    assert list(loaded.identity.item_ids) == list(run.identity.item_ids)
    torch.testing.assert_close(loaded.model.identity, run.model.identity)
    target = loaded.prepare(markets[3])  # Belgium: never seen in training
    rows = loaded.identity_rows(target.domain)
    known = rows >= 0
    assert known.any() and (~known).any()  # shared stock codes and Belgium's own
    V = PreRecRecommender(loaded, "zero-shot").item_tensor(target)
    with torch.no_grad():
        text = loaded.model.item_proj(torch.from_numpy(target.item_emb))
        want = text.clone()
        r = torch.from_numpy(rows[known])
        want[torch.from_numpy(known)] += loaded.model.identity[r] * loaded.model.identity_weight[r, None]
    torch.testing.assert_close(V, want)  # a_v for shared items, text only for the others


def test_identity_effect_grows_with_support(run):
    """w_v = n_v / (n_v + kappa): a rarely seen item stays near its text, a frequent one carries
    its identity; checked on the weights and on the learned contributions w_v |a_v|."""
    support = run.identity.support
    w = run.model.identity_weight.numpy()
    np.testing.assert_allclose(w, support / (support + run.model.cfg.identity_shrinkage), rtol=1e-6)
    effect = w * run.model.identity.detach().norm(dim=1).numpy()
    rare, frequent = effect[support <= 1].mean(), effect[support >= np.quantile(support, 0.9)].mean()
    assert frequent > 5 * rare, (rare, frequent)


def test_finetuning_grows_identity_for_new_target_items(run, markets):
    target = run.prepare(markets[3])
    rows = run.identity_rows(target.domain)
    new_run = finetune_run(run, target, 150, FinetuneConfig(epochs=1, batch_size=32))
    grown = new_run.identity_rows(target.domain)
    assert (grown[rows >= 0] == rows[rows >= 0]).all()  # shared items keep their rows
    assert (grown >= 0).all() and len(new_run.identity) == len(run.identity) + int((rows < 0).sum())
    assert new_run.model.identity.shape[0] == len(new_run.identity)
    counts = np.bincount(grown[target.domain.sequences.items], minlength=len(new_run.identity))
    assert (new_run.identity.support[len(run.identity):] <= counts[len(run.identity):]).all()
    assert new_run.identity.support[len(run.identity):].sum() > 0  # the target's own log
    torch.testing.assert_close(new_run.model.identity[: len(run.identity)].shape, run.model.identity.shape)
