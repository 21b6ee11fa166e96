"""Inference modes against direct computations, the serving pieces, and fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm, retail)
from training_fixtures import tiny_config

from prerec.config import FinetuneConfig
from prerec.data.instances import make_instances
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.recommender import Recommender
from prerec.training.finetune import finetune, finetune_run
from prerec.training.pretrain import pretrain


@pytest.fixture(scope="module")
def run(office, lastfm):
    torch.set_num_threads(1)
    r = pretrain([office, lastfm], tiny_config(epochs=1, max_instances_per_epoch=1500, lr=2e-3))
    with torch.no_grad():  # make D and e large enough to matter in the comparisons
        r.model.domain.normal_(0, 0.5)
        r.model.offsets.normal_(0, 0.5)
    return r


@pytest.fixture(scope="module")
def target(run, retail):
    return run.prepare(retail[0])


def target_named(prepared, name):
    import copy

    other = copy.copy(prepared)
    other.domain = copy.copy(prepared.domain)
    other.domain.name = name
    return other


def _requests(prepared, n=12):
    inst = make_instances(prepared.split.test)
    inst = inst.take(np.arange(min(n, len(inst))))
    hist, lengths = inst.histories(64)
    return hist, lengths, inst.days, inst.targets


def _direct(run, prepared, hist, lengths, days, D=None, offsets=None):
    """Scores computed step by step from the model's parts, one request at a time."""
    m = run.model
    with torch.no_grad():
        V = m.item_proj(torch.from_numpy(prepared.item_emb))
        if offsets is not None:
            V = V + offsets
        out = []
        for h, n, d in zip(hist, lengths, days):
            x = V[torch.from_numpy(h[:n])]
            if D is not None:
                x = x + D
            u = m.encode(x[None])[0, -1]
            z = m.pop(torch.from_numpy(prepared.factors(d, np.arange(prepared.n_items)))).squeeze(-1)
            out.append((V @ u + z).numpy())
    return np.stack(out)


def test_zero_shot_is_d0_no_offsets_target_popularity(run, target):
    hist, lengths, days, _ = _requests(target)
    rec = PreRecRecommender(run, "zero-shot", batch_size=5)
    s = rec.score(target, hist, lengths, days)
    assert isinstance(rec, Recommender) and s.shape == (len(hist), target.n_items) and s.dtype == np.float32
    np.testing.assert_allclose(s, _direct(run, target, hist, lengths, days), rtol=1e-4, atol=1e-4)
    # the scorer's pieces add up to the score
    V = rec.item_tensor(target)
    U = rec.scorer.user_vectors(V, hist, lengths, target.name).numpy()
    Z = np.stack([rec.day_popularity(target, d).numpy() for d in days])
    assert U.shape == (len(hist), run.model.cfg.hidden_size) and U.dtype == np.float32
    np.testing.assert_allclose(U @ V.numpy().T + Z, s, rtol=1e-4, atol=1e-4)
    assert rec.item_tensor(target) is rec.item_tensor(target)  # cached per target
    ids, top = rec.recommend(target, hist, lengths, days, k=5)
    assert ids.shape == (len(hist), 5) and (np.diff(top, axis=1) <= 0).all()


def test_in_domain_uses_its_confounder_and_offsets(run, office):
    prepared = run.prepare(office)
    hist, lengths, days, _ = _requests(prepared)
    k = run.domain_index("office")
    base = int(run.model.offset_base[k])
    offsets = run.model.offsets.detach()[base:base + prepared.n_items]
    s = PreRecRecommender(run, "in-domain").score(prepared, hist, lengths, days)
    np.testing.assert_allclose(s, _direct(run, prepared, hist, lengths, days, run.model.domain[k].detach(), offsets),
                               rtol=1e-4, atol=1e-4)
    z = PreRecRecommender(run, "zero-shot").score(prepared, hist, lengths, days)
    assert np.abs(s - z).max() > 1e-2
    with pytest.raises(PrerecError, match="not a domain this run was trained on"):
        PreRecRecommender(run, "in-domain").score(target_named(prepared, "x"), hist, lengths, days)


def test_monte_carlo_modes(run, target):
    hist, lengths, days, _ = _requests(target, 6)
    emp = PreRecRecommender(run, "zero-shot-mc", mc_source="empirical").score(target, hist, lengths, days)
    want = np.mean([_direct(run, target, hist, lengths, days, D=run.model.domain[k].detach())
                    for k in run.trained_domain_indices()], axis=0)  # 2 sources <= 16 draws: exact average
    np.testing.assert_allclose(emp, want, rtol=1e-4, atol=1e-4)
    prior = PreRecRecommender(run, "zero-shot-mc", mc_source="prior", mc_draws=4)
    a = prior.score(target, hist, lengths, days)
    b = PreRecRecommender(run, "zero-shot-mc", mc_source="prior", mc_draws=4).score(target, hist, lengths, days)
    np.testing.assert_array_equal(a, b)  # seeded draws
    draws, w = prior.intervention.monte_carlo_draws()
    assert draws.shape == (4, run.model.cfg.hidden_size) and float(w.sum()) == pytest.approx(1.0)
    with pytest.raises(PrerecError):
        PreRecRecommender(run, "sideways")


def test_finetune_adds_a_fresh_confounder_and_offsets(run, target):
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    rec = finetune(run, target, 200, FinetuneConfig(epochs=2, batch_size=64))
    assert rec.inference == "in-domain"
    new = rec.run
    k = new.domain_index(target.name)
    assert k == run.model.cfg.n_domains and new.model.domain.shape[0] == k + 1
    assert float(new.model.domain[k].detach().abs().sum()) > 0  # trained from 0
    assert new.model.offsets.shape[0] == run.model.offsets.shape[0] + target.n_items
    assert new.sources[-1].role == "finetune" and new.sources[-1].n_train_instances == 200
    assert 1 <= len(new.history) <= 2 and all(h["lr"] == 1e-4 for h in new.history)
    for key, v in run.model.state_dict().items():  # the pre-trained run is left as it was
        torch.testing.assert_close(v, before[key], rtol=0, atol=0)
    hist, lengths, days, _ = _requests(target)
    s = rec.score(target, hist, lengths, days)
    assert s.shape == (len(hist), target.n_items) and np.isfinite(s).all()
    # zero-shot on the fine-tuned run drops the new D and offsets again
    z = PreRecRecommender(new, "zero-shot").score(target, hist, lengths, days)
    assert np.abs(s - z).max() > 0


def test_leave_one_source_out_selection(office, lastfm):
    run = pretrain([office, lastfm], tiny_config(epochs=1, max_instances_per_epoch=300, select_on=["lastfm"]))
    roles = {s.name: (s.role, s.domain_index) for s in run.sources}
    assert roles == {"office": ("train", 0), "lastfm": ("select", -1)}
    assert run.model.cfg.domain_items == [office.n_items]  # lastfm is not trained on
    valid = run.history[0]["valid"]
    assert list(valid) == ["lastfm"] and valid["lastfm"]["inference"] == "zero-shot"
    with pytest.raises(PrerecError, match="select_on"):
        pretrain([office], tiny_config(select_on=["nowhere"]))


def test_finetuning_keeps_the_pretrained_weights_unless_an_epoch_beats_them(run, target):
    """Epoch 0 is validated too: a ruinous learning rate leaves the run as it started, and a grid
    is chosen on the target's validation users (its trials are in run.selection)."""
    new = finetune_run(run, target, 200, FinetuneConfig(epochs=2, batch_size=64, lr_grid=[10.0, 1e-4]))
    tried = new.selection["tried"]
    assert [t["lr"] for t in tried] == [10.0, 1e-4] and new.selection["chosen_on"] == "target validation users"
    assert new.config.lr == max(tried, key=lambda t: t["valid_metric"])["lr"]
    ruined = next(t for t in tried if t["lr"] == 10.0)
    assert ruined["epoch"] == 0  # no epoch beat the pre-trained weights
    bad = finetune_run(run, target, 200, FinetuneConfig(epochs=1, batch_size=64, lr=10.0))
    hist, lengths, days, _ = _requests(target)
    zero = PreRecRecommender(run, "zero-shot").score(target, hist, lengths, days)
    kept = PreRecRecommender(bad, "in-domain").score(target, hist, lengths, days)
    np.testing.assert_allclose(kept, zero, rtol=1e-5, atol=1e-5)  # fresh D = 0, offsets 0: the zero-shot model


def test_finetuning_variants_are_whole_settings_chosen_on_validation(run, target):
    """Each variant replaces the config's keys (lambda_identity a grid of one); every variant is
    trained, recorded, and the best on the target's validation users is the run returned."""
    ft = FinetuneConfig.from_dict({"epochs": 1, "batch_size": 64, "variants": [
        {}, {"lr": 10.0}, {"lambda_identity": 1.0, "n_negatives": 31, "epochs": 2}]})
    new = finetune_run(run, target, 200, ft)
    tried = new.selection["tried"]
    assert [t["variant"] for t in tried] == [{}, {"lr": 10.0}, {"lambda_identity": 1.0, "n_negatives": 31, "epochs": 2}]
    assert [t["lr"] for t in tried] == [1e-4, 10.0, 1e-4]
    assert [t["lambda_identity"] for t in tried] == [run.config.lambda_identity] * 2 + [1.0]
    best = max(tried, key=lambda t: t["valid_metric"])
    assert new.config.lr == best["lr"] and new.config.lambda_identity == best["lambda_identity"]
    if best["variant"]:
        assert new.config.n_negatives == 31 and new.config.epochs == 2
    assert tried[1]["epoch"] == 0  # the ruinous learning rate kept the pre-trained weights


@pytest.mark.parametrize("variants, match", [
    ({"lr": 1.0}, "expected a list of tables"),
    ([1.0], r"variants\[0\]: expected a table"),
    ([{}, {"momentum": 0.9}], r"variants\[1\]: unknown key\(s\) momentum"),
])
def test_finetuning_variants_refuse_bad_tables(variants, match):
    with pytest.raises(PrerecError, match=match):
        FinetuneConfig.from_dict({"variants": variants})


def test_finetuning_seed_changes_the_training_not_the_validation_users(run, target):
    base = FinetuneConfig(epochs=1, batch_size=64, lr=1e-2)
    a = finetune_run(run, target, 200, base)
    again = finetune_run(run, target, 200, base)
    b = finetune_run(run, target, 200, FinetuneConfig(epochs=1, batch_size=64, lr=1e-2, seed=run.config.seed + 1))
    losses = [r.history[0]["loss"] for r in (a, again, b)]  # the epoch's loss, kept or not
    assert losses[0] == losses[1] and losses[0] != losses[2]
    assert b.config.seed == run.config.seed + 1 and a.config.seed == run.config.seed
