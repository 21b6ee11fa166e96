"""``history_shrinkage``: U scaled by n / (n + k) at inference, against a by-hand reference, and the
service ranking by it exactly as evaluation does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "serving"))


def _setup(k: float):
    from serving_helpers import DAY0, tiny_domain, tiny_model

    from prerec.config import TrainConfig
    from prerec.run import Run

    domain, model = tiny_domain(), tiny_model()
    model.scorer.model.cfg.history_shrinkage = k
    run = Run(TrainConfig(encoder="hash:64"), model.scorer.model, "hash:64", "hash:64", [], {})
    ids = list(domain.item_ids)
    hs = [[ids[0], ids[3], ids[0], ids[0]], [ids[10]], ids[:20], [ids[5], ids[6], ids[7]]]
    hist = np.full((len(hs), 24), -1)
    for r, h in enumerate(hs):
        hist[r, : len(h)] = [domain.item_index[i] for i in h]
    return domain, model, run, hs, hist, np.array([len(h) for h in hs]), DAY0 + 45


@pytest.mark.parametrize("mixture", [False, True])
def test_scores_are_the_shrunk_user_part_plus_popularity(mixture):
    from serving_helpers import assert_zero_shot_scores

    from prerec.evaluation.popularity_share import score_parts
    from prerec.intervention import PreRecRecommender

    k = 4.0
    domain, model, run, hs, hist, lengths, today = _setup(0.0)
    run.model.cfg.repeat_mixture = False
    prepared = model.prepare(domain)
    days = np.full(len(hs), today)
    uv, g = score_parts(PreRecRecommender(run, "zero-shot"), prepared, hist, lengths, days)  # s = U.V + g
    want = np.empty_like(uv)
    for r in range(len(hs)):  # by hand: n real items of the history, weight n / (n + k)
        n = sum(1 for j in hist[r] if j >= 0)
        want[r] = n / (n + k) * uv[r] + g[r]
    run.model.cfg.history_shrinkage = k
    got = assert_zero_shot_scores(run, prepared, hist, lengths, days, want, mixture)
    assert not np.allclose(got, uv + g, atol=1e-3)


@pytest.mark.parametrize("retrieval", ["exact", "flat", "hnsw"])
def test_service_ranks_by_the_shrunk_score_as_evaluation(retrieval):
    from prerec.data.domain import SECONDS_PER_DAY
    from prerec.intervention import PreRecRecommender
    from prerec.serving import Service

    domain, model, run, hs, hist, lengths, today = _setup(6.0)
    service = Service(model, retrieval=retrieval, clock=lambda: today * SECONDS_PER_DAY + 3600)
    service.attach(domain)
    scores = PreRecRecommender(run, "zero-shot").score(model.prepare(domain), hist, lengths, np.full(len(hs), today))
    recs = service.recommend(domain.name, hs, k=12)
    for r in range(len(hs)):
        np.testing.assert_allclose(recs.scores[r], scores[r, recs.indices[r]], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(recs.scores[r], np.sort(scores[r])[::-1][:12], rtol=1e-4, atol=1e-4)


def test_key_identity_validation_and_old_runs():
    from prerec.config import TrainConfig
    from prerec.errors import PrerecError
    from prerec.model import ModelConfig
    from prerec.run import run_identity, upgrade_run_config

    off, on = TrainConfig(encoder="hash:64"), TrainConfig(encoder="hash:64", model=ModelConfig(history_shrinkage=3.0))
    assert "history_shrinkage" not in run_identity(off, ["a"], "hash:64")["train"]["model"]  # old runs: the same run
    assert run_identity(on, ["a"], "hash:64")["train"]["model"]["history_shrinkage"] == 3.0
    with pytest.raises(PrerecError, match="history_shrinkage"):
        TrainConfig(encoder="hash:64", model=ModelConfig(history_shrinkage=-1.0)).validate()
    # a run written before the repeat mixture became the default keeps the paper's score
    old = {"train": {"model": {"hidden_size": 8}}, "model": {"hidden_size": 8}}
    upgrade_run_config(old)
    assert old["model"]["repeat_mixture"] is False and old["train"]["model"]["repeat_mixture"] is False
    new = {"train": {"model": {"repeat_mixture": True}}, "model": {"repeat_mixture": True}}
    assert upgrade_run_config(new)["model"]["repeat_mixture"] is True
