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

from prerec.baselines.sasrec import SASRecConfig
from prerec.config import FinetuneConfig
from prerec.data import load_domains, make_instances
from prerec.registry import MODELS, ModelContext, for_target
from shared_data import first_users

# every registered model, plus PreRec in its in-domain mode (on a source domain)
NAMES = [*MODELS, "prerec-in-domain"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny pre-trained run (two source markets) and a target market it never saw."""
    import torch

    from prerec.config import train_config
    from prerec.training.pretrain import pretrain

    torch.set_num_threads(1)
    found = {d.name: d for d in load_domains(["online-retail:embedded#Germany,France,Spain"])}
    sources = [first_users(found["Germany"], 40), first_users(found["France"], 40)]
    cfg = train_config(hidden_size=16, pop_hidden=16, n_negatives=15, batch_size=64, epochs=1, encoder="hash:32",
                      valid_max_instances=100, eval_batch_size=128, progress=False, device="cpu").validate()
    run = pretrain(sources, cfg, out=tmp_path_factory.mktemp("run") / "run")
    target = run.prepare(first_users(found["Spain"], 30))
    source = run.prepare(sources[0])
    return run, target, source


def build(name: str, world):
    from prerec.intervention import PreRecRecommender

    run, target, source = world
    if name == "prerec-in-domain":
        return PreRecRecommender(run, "in-domain"), source
    sasrec = SASRecConfig(hidden_size=16, inner_size=32, epochs=2, batch_size=64, progress=False, device="cpu",
                          eval_instances=50)
    ctx = ModelContext(run=run, mc={"draws": 4}, finetune=FinetuneConfig(epochs=1, batch_size=64), sasrec=sasrec,
                       sources=[source])  # every PreRec variant is played by the one tiny run
    return for_target(MODELS[name].build(ctx), target), target


def batch(domain, n: int = 6):
    inst = make_instances(domain.split.test)
    rows = np.linspace(0, len(inst) - 1, n).astype(int)
    chosen = inst.take(rows)
    hist, lengths = chosen.histories()
    return hist, lengths, chosen.days


@pytest.mark.parametrize("name", NAMES)
def test_score_shape_dtype_determinism(name, world):
    model, domain = build(name, world)
    hist, lengths, days = batch(domain)
    s1 = model.score(domain, hist, lengths, days)
    s2 = model.score(domain, hist, lengths, days)
    assert s1.shape == (len(hist), domain.n_items) and s1.dtype == np.float32
    assert np.isfinite(s1).all()
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("name", NAMES)
def test_rows_are_independent_and_padding_is_inert(name, world):
    model, domain = build(name, world)
    hist, lengths, days = batch(domain)
    together = model.score(domain, hist, lengths, days)
    for r in range(len(hist)):
        alone = model.score(domain, hist[r : r + 1], lengths[r : r + 1], days[r : r + 1])
        np.testing.assert_allclose(alone[0], together[r], rtol=1e-5, atol=1e-5)
    padded = np.concatenate([hist, np.full((len(hist), 7), -1)], axis=1)
    np.testing.assert_allclose(model.score(domain, padded, lengths, days), together, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
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
