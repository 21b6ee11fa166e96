"""Training on small real domains: the loss falls, negatives come from the positive's domain,
domain-balanced draws, the priors act, runs are deterministic under a seed, popularity rows
match the reference index, and the typed config rejects bad keys and types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_fixtures import *  # noqa: F403  (fixtures: office, lastfm, retail; tiny_config)
from training_fixtures import tiny_config

from prerec.config import TrainConfig, build_config, coerce, parse_sets
from prerec.errors import PrerecError
from prerec.text import get_encoder
from prerec.training.loop import TrainState, make_optimizer, train
from prerec.training.pretrain import build_training, prepare_sources


def _setup(domains, **kw):
    cfg = tiny_config(**kw)
    prepared, _ = prepare_sources(domains, cfg, get_encoder(cfg.encoder))
    torch.manual_seed(cfg.seed)
    _sources, _parts, model, corpus, X = build_training(prepared, cfg)
    return cfg, prepared, model, corpus, X


def _train(cfg, model, corpus, X, epochs=None):
    if epochs is not None:
        cfg.epochs = epochs
    opt = make_optimizer(model, cfg, corpus.total_instances)
    return train(model, corpus, X, cfg, optimizer=opt, state=TrainState(), device=torch.device("cpu"))


def test_loss_falls(office, lastfm):
    cfg, _, model, corpus, X = _setup([office, lastfm], lr=2e-3, lr_decay=1.0, max_instances_per_epoch=7000)
    state = _train(cfg, model, corpus, X, epochs=6)  # ~6 x 55 steps
    losses = [h["loss"] for h in state.history]
    assert sum(h["steps"] for h in state.history) >= 300
    assert losses[-1] < losses[0] - 0.3, losses
    assert losses[0] < np.log(cfg.n_negatives + 1) + 0.1  # starts near chance


@pytest.mark.parametrize("mode", ["sequence", "instance"])
def test_negatives_and_history_from_the_positive_domain(retail, office, mode):
    cfg, _prepared, _model, corpus, X = _setup([*retail, office], batch_layout=mode)
    bases = np.r_[corpus.item_base, corpus.item_base[-1] + corpus.n_items[-1]]
    dom, unit = corpus.epoch_draws(cfg.seed, 0)
    for step in range(5):
        d, u = dom[step * 40:(step + 1) * 40], unit[step * 40:(step + 1) * 40]
        neg = corpus.negatives(cfg.seed, 0, step, d)
        assert (neg >= 0).all() and (neg < corpus.n_items[d][:, None]).all()
        b = corpus.build(d, u, neg, 1.0, X, torch.device("cpu"))
        ids = b["rows"].numpy()
        for r, k in enumerate(d):
            lo, hi = bases[k], bases[k + 1]
            for key in ("neg", "hist", "target"):
                idx = b[key][r].numpy().ravel()
                g = ids[idx[idx >= 0]]
                assert ((g >= lo) & (g < hi)).all(), (key, k)
        assert (b["domain"].numpy() == corpus.part_domain[d]).all()


def test_draws_are_domain_balanced(office, lastfm, retail):
    cfg, _, _, corpus, _ = _setup([office, lastfm, *retail], batch_layout="instance")
    dom, unit = corpus.epoch_draws(cfg.seed, 0)
    assert len(dom) == corpus.total_instances
    share = np.bincount(dom, minlength=4) / len(dom)
    np.testing.assert_allclose(share, 0.25, atol=0.02)
    assert (unit < corpus.n_instances[dom]).all()
    # sequence mode: chunks drawn by their target count, an epoch ~ as many targets as instances
    cfg2, _, _, c2, _ = _setup([office, lastfm, *retail], batch_layout="sequence")
    per_domain, totals = np.zeros(4), []
    for epoch in range(20):
        dom2, unit2 = c2.epoch_draws(cfg2.seed, epoch)
        sizes = c2.unit_sizes(dom2, unit2)
        per_domain += np.bincount(dom2, weights=sizes, minlength=4)
        totals.append(sizes.sum())
    np.testing.assert_allclose(per_domain / per_domain.sum(), 0.25, atol=0.03)
    assert abs(np.mean(totals) / c2.total_instances - 1) < 0.05


def test_chunks_cover_every_target_once(office, retail):
    _, _, _, corpus, _ = _setup([office, *retail], batch_layout="sequence", max_history=8)
    covered = np.zeros(len(corpus.items), dtype=int)
    for start, length in zip(corpus._chunk_start_all, corpus._chunk_len_all):
        assert 2 <= length <= 9
        covered[start + 1:start + length] += corpus.is_target[start + 1:start + length]
    assert (covered == corpus.is_target).all()


def test_factor_rows_match_popularity_index(retail):
    _, prepared, _, corpus, _ = _setup(retail)
    rng = np.random.default_rng(0)
    for k, p in enumerate(prepared):
        seqs = p.split.train
        days = seqs.days[rng.integers(0, len(seqs.days), 300)]
        items = rng.integers(0, p.n_items, 300)
        keys = corpus.table.key_base[k] + corpus.table.day_index(k, days) * p.n_items
        rows = corpus.table.lookup(keys, items)
        np.testing.assert_allclose(corpus.table.rows[rows], p.popularity.factors(days, items), rtol=1e-6)
        assert (rows > 0).any() and (rows == 0).any()


def test_priors_shrink_domain_and_offsets(office, lastfm):
    norms = {}
    for lam in (0.0, 1000.0):
        cfg, _, model, corpus, X = _setup([office, lastfm], lambda_domain=lam, lambda_offset=lam, lr=3e-3,
                                          max_instances_per_epoch=2500, dropout=0.0)
        _train(cfg, model, corpus, X, epochs=1)
        norms[lam] = (float(model.domain.detach().norm()), float(model.offsets.detach().norm()))
    assert norms[1000.0][0] < 0.5 * norms[0.0][0]
    assert norms[1000.0][1] < 0.5 * norms[0.0][1]
    assert norms[0.0][0] > 0 and norms[0.0][1] > 0


def test_deterministic_under_a_seed(office):
    def weights(seed):
        cfg, _, model, corpus, X = _setup([office], seed=seed, max_instances_per_epoch=800)
        _train(cfg, model, corpus, X, epochs=1)
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    a, b, c = weights(7), weights(7), weights(8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_config_layers_and_type_errors(tmp_path):
    cfg = build_config("cpu", sets=["epochs=3", "batch_size=128", "hidden_size=64", "seed=5", "select_on=a,b"])
    assert (cfg.epochs, cfg.batch_size, cfg.model.hidden_size, cfg.seed, cfg.select_on) == (3, 128, 64, 5, ["a", "b"])
    assert build_config("cpu", sets=["model.hidden_size=32"]).model.hidden_size == 32
    assert cfg.split_seed == 2023  # the user split keeps its own seed
    assert build_config("paper") == TrainConfig()
    f = tmp_path / "c.toml"
    f.write_text('epochs = 4\nlr = 1\nvariant = "zesrec"\n')
    cfg = build_config("paper", f, ["epochs=5"])
    assert cfg.epochs == 5 and cfg.lr == 1.0 and cfg.variant == "zesrec"
    with pytest.raises(PrerecError, match="'epochs' expects int"):
        build_config("paper", sets=["epochs=lots"])
    with pytest.raises(PrerecError, match="unknown config key 'epoch'"):
        build_config("paper", sets=["epoch=3"])
    with pytest.raises(PrerecError, match=r"'model\.dropout' expects float"):
        coerce("dropout", "high", where="--set")
    with pytest.raises(PrerecError, match="'progress' expects bool"):
        coerce("progress", 1, where="toml")
    f.write_text('epochs = "4"\n')
    with pytest.raises(PrerecError, match="'epochs' expects int"):
        build_config("paper", f)
    with pytest.raises(PrerecError, match="variant"):
        build_config("paper", sets=["variant=other"])
    with pytest.raises(PrerecError, match="key=value"):
        parse_sets(["epochs"])
    with pytest.raises(PrerecError, match="unknown preset"):
        build_config("gpu-monster")
