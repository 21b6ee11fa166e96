"""A run pre-trained with a non-default popularity factor set: the training table holds that set's
factors, the saved run keeps the key, and evaluation (PreRecRecommender), training validation,
fine-tuning and the service all score with the same factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_fixtures import tiny_config

from prerec.config import FinetuneConfig
from prerec.data import load_domains
from prerec.data.domain import SECONDS_PER_DAY
from prerec.intervention import PreRecRecommender
from prerec.popularity_factors import get_factor_set
from prerec.run import load_run
from prerec.serving import Service
from prerec.text import get_encoder
from prerec.training.finetune import finetune
from prerec.training.pretrain import build_training, prepare_sources, pretrain, score_function
from shared_data import first_users, shared

K = 10


@pytest.fixture(scope="module", params=["windows", "last-seen"])
def world(request, tmp_path_factory):
    """Germany and France (60 users each) as sources, Spain (40 users) as the zero-shot target."""
    torch.set_num_threads(1)
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    found = {d.name: d for d in load_domains([f"online-retail:{path}#Germany,France,Spain"])}
    sources = [first_users(found["Germany"], 60), first_users(found["France"], 60)]
    cfg = tiny_config(epochs=1, max_instances_per_epoch=600, lr=2e-3, popularity_factors=request.param)
    out = tmp_path_factory.mktemp("popfactors") / "run"
    trained = pretrain(sources, cfg, out)
    return request.param, cfg, trained, out, sources, first_users(found["Spain"], 40)


def test_training_table_holds_the_sets_factors(world):
    name, cfg, _, _, sources, _ = world
    prepared, _ = prepare_sources(sources, cfg, get_encoder(cfg.encoder))
    _, _, model, corpus, _ = build_training(prepared, cfg)
    assert model.pop[0].in_features == get_factor_set(name).n_factors
    rng = np.random.default_rng(0)
    for k, p in enumerate(prepared):
        days = p.split.train.days[rng.integers(0, len(p.split.train.days), 300)]
        items = rng.integers(0, p.n_items, 300)
        rows = corpus.table.lookup(corpus.table.key_base[k] + corpus.table.day_index(k, days) * p.n_items, items)
        np.testing.assert_array_equal(corpus.table.rows[rows], p.popularity.factors(days, items, name))
        assert (rows > 0).any() and (rows == 0).any()


def test_saved_run_keeps_the_set_and_scores_alike_everywhere(world):
    name, _, trained, out, _, spain = world
    run = load_run(out)
    assert run.model.cfg.popularity_factors == name == run.config.model.popularity_factors
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[key], value, rtol=0, atol=0)
    target = run.prepare(spain)
    today = int(target.domain.sequences.days.max()) + 1
    rng = np.random.default_rng(0)
    lengths = np.array([1, 3, 10, 70])
    hist = np.full((len(lengths), 70), -1, np.int64)
    for r, n in enumerate(lengths):
        hist[r, :n] = rng.integers(0, target.n_items, n)
    days = np.full(len(hist), today)
    rec = PreRecRecommender(run, "zero-shot", batch_size=3)
    scores = rec.score(target, hist, lengths, days)
    # the head reads the set's factors of the request day, computed by the target's index
    factors = torch.from_numpy(target.popularity.item_factors(today, target.n_items, name))
    with torch.no_grad():
        g = run.model.pop(factors).squeeze(-1).numpy()
    np.testing.assert_allclose(rec.day_popularity(target, today).numpy(), g, rtol=1e-5, atol=1e-6)
    assert np.ptp(g) > 0  # the factors vary over the catalog: a mix-up would show
    valid = score_function(run, 64)("zero-shot", target, hist, lengths, days).numpy()
    np.testing.assert_allclose(valid, scores, rtol=1e-5, atol=1e-5)
    _, top = rec.recommend(target, hist, lengths, days, k=K)
    service = Service.load(out, "zero-shot", clock=lambda: today * SECONDS_PER_DAY + 60)
    service.attach(spain)
    np.testing.assert_allclose(service.popularity_scores("Spain"), g, rtol=1e-5, atol=1e-6)
    item_ids = target.domain.item_ids
    got = service.recommend("Spain", [[str(item_ids[j]) for j in hist[r, :n]] for r, n in enumerate(lengths)], k=K)
    for r in range(len(hist)):
        np.testing.assert_allclose(got.scores[r], top[r], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(scores[r, got.indices[r]], got.scores[r], rtol=1e-4, atol=1e-4)


def test_finetuning_keeps_the_set(world):
    name, _, _, out, _, spain = world
    run = load_run(out)
    target = run.prepare(spain)
    rec = finetune(run, target, 200, FinetuneConfig(epochs=1, lr=1e-3))
    assert rec.run.model.cfg.popularity_factors == name
    day = int(target.domain.sequences.days.max()) + 1
    f = torch.from_numpy(target.popularity.item_factors(day, target.n_items, name))
    with torch.no_grad():
        g = rec.run.model.pop(f).squeeze(-1).numpy()
    np.testing.assert_allclose(rec.day_popularity(target, day).numpy(), g, rtol=1e-5, atol=1e-6)
