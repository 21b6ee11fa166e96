"""``taste_calibration``: a zero-shot target's U.V scaled by min(1, (d + 2 se) / (tau d_sources)),
against a by-hand reference, in every mode, and the service ranking by it exactly as evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "serving"))

TAU = 0.5


def _colour_domain():
    """200 users over 40 days, each buying mostly things of one colour: a log whose texts (the
    colour word) say something of taste, so the signal is positive."""
    import pandas as pd
    from serving_helpers import COLOURS, DAY0, THINGS

    from prerec.data.domain import SECONDS_PER_DAY, build_domain

    rng = np.random.default_rng(0)
    items = [f"{c}-{t}".replace(" ", "_") for c in COLOURS for t in THINGS]
    texts = pd.DataFrame({"item_id": items, "text": [i.replace("-", " ").replace("_", " ") for i in items]})
    rows = []
    for u in range(200):
        colour, day = int(rng.integers(len(COLOURS))), DAY0 + int(rng.integers(0, 30))
        for _ in range(int(rng.integers(3, 10))):
            day += int(rng.integers(0, 3))
            c = colour if rng.random() < 0.8 else int(rng.integers(len(COLOURS)))
            item = items[c * len(THINGS) + int(rng.integers(len(THINGS)))]
            rows.append((f"u{u}", item, day * SECONDS_PER_DAY + int(rng.integers(0, 80000))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return build_domain("tiny", inter, texts, source="tiny:tiny")


def _setup(tau: float, sources=(0.9, 0.3), balanced: bool = True):
    from serving_helpers import DAY0, tiny_model

    from prerec.config import TrainConfig
    from prerec.run import Run, SourceInfo

    domain = _colour_domain()
    model = tiny_model()
    model.scorer.model.cfg.taste_calibration = tau
    srcs = [SourceInfo(f"s{k}", f"s{k}", "train", 4, k, 100 * (k + 1), d, 50) for k, d in enumerate(sources)]
    run = Run(TrainConfig(encoder="hash:64", domain_balanced=balanced), model.scorer.model, "hash:64", "hash:64", srcs, {})
    ids = list(domain.item_ids)
    hs = [[ids[0], ids[3], ids[0]], [ids[10]], ids[:20], [ids[5], ids[6], ids[7]]]
    hist = np.full((len(hs), 24), -1)
    for r, h in enumerate(hs):
        hist[r, : len(h)] = [domain.item_index[i] for i in h]
    return domain, model, run, hs, hist, np.array([len(h) for h in hs]), DAY0 + 45


def _bite(run, prepared, weight: float = 0.6) -> None:
    """Set the sources' signal so that the target's upper bound is ``weight`` tau of it."""
    from prerec.text.taste import taste_signal

    upper = taste_signal(prepared.item_emb, prepared.split.train).upper
    assert upper > 0
    for s in run.sources:
        s.taste_signal = upper / (weight * TAU)


def _expected_weight(run, prepared, tau):
    from prerec.text.taste import taste_signal

    d = taste_signal(prepared.item_emb, prepared.split.train)
    return float(np.clip(d.upper / (tau * run.source_taste_signal()), 0, 1))


@pytest.mark.parametrize("mixture", [False, True])
def test_zero_shot_scores_are_the_weighted_user_part_plus_popularity(mixture):
    from serving_helpers import assert_zero_shot_scores

    from prerec.evaluation.popularity_share import score_parts
    from prerec.intervention import PreRecRecommender

    domain, model, run, hs, hist, lengths, today = _setup(0.0)
    run.model.cfg.repeat_mixture = False
    prepared = model.prepare(domain)
    days = np.full(len(hs), today)
    uv, g = score_parts(PreRecRecommender(run, "zero-shot"), prepared, hist, lengths, days)  # s = U.V + g
    _bite(run, prepared)  # the sources' mean puts the target's upper bound at 0.6 tau
    w = _expected_weight(run, prepared, TAU)
    assert w == pytest.approx(0.6)
    run.model.cfg.taste_calibration = TAU
    assert_zero_shot_scores(run, prepared, hist, lengths, days, w * uv + g, mixture)
    # the Monte Carlo mode's user tower is scaled alike (one source: one draw of weight 1 x 0.6);
    # in-domain (a trained source) is untouched
    run.sources = run.sources[:1]
    rec = PreRecRecommender(run, "zero-shot-mc")
    rec.item_tensor(prepared)
    assert [w_ for _, w_ in rec.intervention.draws("tiny")] == pytest.approx([0.6])
    from prerec.intervention import Intervention

    assert Intervention(run, "in-domain").text_weight("s0") == Intervention(run, "auto").text_weight("s0") == 1.0


def test_weight_is_clipped_and_the_sources_are_weighed_as_training_drew_them():
    from prerec.intervention import Intervention

    domain, model, run, *_ = _setup(TAU, sources=(1e-6, 1e-6))  # target far above: weight 1
    prepared = model.prepare(domain)
    iv = Intervention(run, "zero-shot")
    iv.observe("tiny", prepared)
    assert iv.text_weight("tiny") == 1.0
    run.sources[0].taste_signal = run.sources[1].taste_signal = 1e6  # far below: weight ~0
    iv = Intervention(run, "zero-shot")
    iv.observe("tiny", prepared)
    assert iv.text_weight("tiny") == pytest.approx(0.0, abs=1e-4)
    # a target with too small a log (16 training users) keeps U.V whole, however weak its reading
    from serving_helpers import tiny_domain

    iv = Intervention(run, "zero-shot")
    iv.observe("small", model.prepare(tiny_domain("small")))
    assert iv.text_weight("small") == 1.0
    _, _, unbalanced, *_ = _setup(TAU, sources=(0.9, 0.3), balanced=False)
    assert unbalanced.source_taste_signal() == pytest.approx((100 * 0.9 + 200 * 0.3) / 300)
    assert run.source_taste_signal() == pytest.approx(1e6)


def test_unobserved_domain_is_an_error_and_sources_without_a_reading_switch_it_off():
    from prerec.errors import PrerecError
    from prerec.intervention import Intervention

    domain, model, run, *_ = _setup(TAU)
    with pytest.raises(PrerecError, match="before its taste signal was read"):
        Intervention(run, "zero-shot").text_weight("tiny")
    run.sources[0].taste_signal = None  # a run saved before the signal was recorded: the other one counts
    assert run.source_taste_signal() == pytest.approx(0.3)
    run.sources[1].taste_users = 29  # read from too few users: nothing to compare with, U.V stays whole
    iv = Intervention(run, "zero-shot")
    iv.observe("tiny", model.prepare(domain))
    assert iv.text_weight("tiny") == 1.0


@pytest.mark.parametrize("retrieval", ["exact", "flat", "hnsw"])
def test_service_ranks_by_the_calibrated_score_as_evaluation(retrieval):
    from prerec.data.domain import SECONDS_PER_DAY
    from prerec.intervention import Intervention, PreRecRecommender
    from prerec.scoring import Scorer
    from prerec.serving import Service
    from prerec.serving.model import ServingModel

    domain, model, run, hs, hist, lengths, today = _setup(TAU)
    _bite(run, model.prepare(domain))
    iv = Intervention(run, "zero-shot")
    served = ServingModel(Scorer(run.model, iv.draws), model._embed, model._prepare, observe=iv.observe)
    service = Service(served, retrieval=retrieval, clock=lambda: today * SECONDS_PER_DAY + 3600)
    service.attach(domain)
    assert iv.text_weight("tiny") == pytest.approx(0.6)  # the calibration is on and bites
    rec = PreRecRecommender(run, "zero-shot")
    scores = rec.score(model.prepare(domain), hist, lengths, np.full(len(hs), today))
    assert rec.intervention.text_weight("tiny") == iv.text_weight("tiny")
    recs = service.recommend(domain.name, hs, k=12)
    for r in range(len(hs)):
        np.testing.assert_allclose(recs.scores[r], scores[r, recs.indices[r]], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(recs.scores[r], np.sort(scores[r])[::-1][:12], rtol=1e-4, atol=1e-4)


def test_key_identity_and_validation():
    from prerec.config import TrainConfig
    from prerec.errors import PrerecError
    from prerec.model import ModelConfig
    from prerec.run import run_identity, upgrade_run_config

    off, on = TrainConfig(encoder="hash:64", model=ModelConfig(taste_calibration=0.0)), TrainConfig(encoder="hash:64")
    assert "taste_calibration" not in run_identity(off, ["a"], "hash:64")["train"]["model"]  # older runs: the same
    assert run_identity(on, ["a"], "hash:64")["train"]["model"]["taste_calibration"] == 0.5  # the default
    old = {"train": {"model": {"hidden_size": 8}}, "model": {"hidden_size": 8}}  # a run saved before the key
    assert upgrade_run_config(old)["model"]["taste_calibration"] == 0.0 == old["train"]["model"]["taste_calibration"]
    with pytest.raises(PrerecError, match="taste_calibration"):
        TrainConfig(encoder="hash:64", model=ModelConfig(taste_calibration=-1.0)).validate()
