"""The contract every model passes (as in ``implicit``): the same checks for each Recommender.

- ``score`` is ``(b, n_items)`` float32 and finite, deterministic;
- a batch scores each row as if it were alone (no leakage across a batch);
- extra padding columns change nothing;
- ``recommend`` returns the ``k`` best of ``score``, best first, and ``exclude_seen`` drops the
  history's items.
Runs on the embedded Online Retail data, so it needs nothing outside the repository.
"""

from __future__ import annotations

import numpy as np
import pytest

from prerec.baselines import PopularityBaseline, TextLastBaseline, TextMeanBaseline
from prerec.baselines.markov import MarkovBaseline
from prerec.baselines.sasrec import SASRecConfig, SASRecScratch
from prerec.data import load_domains, make_instances
from shared_data import first_users

MODELS = ["popularity", "text", "text-last", "markov", "sasrec-scratch", "prerec", "prerec-mc", "prerec-in-domain"]




@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny pre-trained run (two source markets) and a target market it never saw."""
    import torch

    from prerec.training.config import TrainConfig
    from prerec.training.pretrain import pretrain

    torch.set_num_threads(1)
    found = {d.name: d for d in load_domains(["online-retail:embedded#Germany,France,Spain"])}
    sources = [first_users(found["Germany"], 40), first_users(found["France"], 40)]
    cfg = TrainConfig(hidden_size=16, pop_hidden=16, n_negatives=15, batch_size=64, epochs=1, encoder="hash:32",
                      valid_max_instances=100, eval_batch_size=128, progress=False, device="cpu").validate()
    run = pretrain(sources, cfg, out=tmp_path_factory.mktemp("run") / "run")
    target = run.prepare(first_users(found["Spain"], 30))
    source = run.prepare(sources[0])
    return run, target, source


def build(name: str, world):
    from prerec.intervention import PreRecRecommender

    run, target, source = world
    if name == "popularity":
        return PopularityBaseline(), target
    if name == "text":
        return TextMeanBaseline(), target
    if name == "text-last":
        return TextLastBaseline(), target
    if name == "markov":  # the source market's transitions by shared stock code, plus the target's own
        return MarkovBaseline().fit([source], target), target
    if name == "sasrec-scratch":
        cfg = SASRecConfig(hidden_size=16, inner_size=32, epochs=2, batch_size=64, progress=False, device="cpu",
                           eval_instances=50)
        return SASRecScratch(cfg).fit([], target), target
    if name == "prerec":
        return PreRecRecommender(run, mode="zero-shot"), target
    if name == "prerec-mc":
        return PreRecRecommender(run, mode="zero-shot-mc", mc_draws=4), target
    if name == "prerec-in-domain":
        return PreRecRecommender(run, mode="in-domain"), source
    raise AssertionError(name)


def batch(domain, n: int = 6):
    inst = make_instances(domain.split.test)
    rows = np.linspace(0, len(inst) - 1, n).astype(int)
    chosen = inst.take(rows)
    hist, lengths = chosen.histories()
    return hist, lengths, chosen.days


@pytest.mark.parametrize("name", MODELS)
def test_score_shape_dtype_determinism(name, world):
    model, domain = build(name, world)
    hist, lengths, days = batch(domain)
    s1 = model.score(domain, hist, lengths, days)
    s2 = model.score(domain, hist, lengths, days)
    assert s1.shape == (len(hist), domain.n_items) and s1.dtype == np.float32
    assert np.isfinite(s1).all()
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("name", MODELS)
def test_rows_are_independent_and_padding_is_inert(name, world):
    model, domain = build(name, world)
    hist, lengths, days = batch(domain)
    together = model.score(domain, hist, lengths, days)
    for r in range(len(hist)):
        alone = model.score(domain, hist[r : r + 1], lengths[r : r + 1], days[r : r + 1])
        np.testing.assert_allclose(alone[0], together[r], rtol=1e-5, atol=1e-5)
    padded = np.concatenate([hist, np.full((len(hist), 7), -1)], axis=1)
    np.testing.assert_allclose(model.score(domain, padded, lengths, days), together, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_recommend_is_top_k_of_score(name, world):
    model, domain = build(name, world)
    hist, lengths, days = batch(domain)
    scores = model.score(domain, hist, lengths, days)
    ids, top = model.recommend(domain, hist, lengths, days, k=10)
    assert ids.shape == top.shape == (len(hist), 10)
    assert (np.diff(top, axis=1) <= 0).all()
    np.testing.assert_allclose(top, np.take_along_axis(scores, ids, axis=1), rtol=1e-6)
    kth = np.sort(scores, axis=1)[:, -10]
    assert (top[:, -1] >= kth - 1e-6).all()
    ids_unseen, _ = model.recommend(domain, hist, lengths, days, k=10, exclude_seen=True)
    for r in range(len(hist)):
        assert not set(ids_unseen[r]) & set(hist[r, : lengths[r]].tolist())
