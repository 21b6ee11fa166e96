"""The repeat mixture (prerec.repeats) against a slow, obviously-correct mixture of two softmaxes,
and the service ranking by it exactly as evaluation does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from prerec.repeats import REPEAT_PRIOR, apply_repeat_mixture, repeat_counts

sys.path.insert(0, str(Path(__file__).parent / "serving"))


def reference_log_mixture(s: np.ndarray, history: list[int]) -> np.ndarray:
    """log P(j) of r P_repeat + (1 - r) P_explore, one history, by loops."""
    a, b = REPEAT_PRIOR
    R = sum(1 for t in range(1, len(history)) if history[t] >= 0 and history[t] in history[:t])
    r = (R + a) / (len(history) - 1 + a + b)
    own = {j for j in history if j >= 0}
    e = np.exp(s - s.max())
    rep = sum(e[j] for j in own)
    exp_ = sum(e[j] for j in range(len(s)) if j not in own)
    p = np.array([r * e[j] / rep if j in own else (1 - r) * e[j] / exp_ for j in range(len(s))])
    return np.log(p)


def test_repeat_counts_by_hand():
    h = np.array([[1, 2, 1, 3, -1], [4, 4, 4, -1, -1], [5, -1, -1, -1, -1], [0, -1, 0, -1, -1]])
    R, T = repeat_counts(h, np.array([4, 3, 1, 3]))
    assert R.tolist() == [1, 2, 0, 1]  # an item outside the catalog (-1) is never a repeat
    assert T.tolist() == [3, 2, 0, 2]


def test_mixture_ranks_as_the_two_softmaxes():
    rng = np.random.default_rng(0)
    n = 30
    histories = [[3, 7, 3, 3, 1], [2, 5, 9, 11], [4], [0, 1, 2, 0, 1, 2, 0, 1, 2], [6, -1, 6]]
    width = max(map(len, histories)) + 2
    hist = np.full((len(histories), width), -1)
    for r, h in enumerate(histories):
        hist[r, : len(h)] = h
    lengths = np.array([len(h) for h in histories])
    s = rng.normal(0, 2, size=(len(histories), n))
    out = apply_repeat_mixture(torch.tensor(s, dtype=torch.float64), hist, lengths).numpy()
    for r, h in enumerate(histories):
        want = reference_log_mixture(s[r], h)
        # the library's score is log P up to a constant per history
        np.testing.assert_allclose(out[r] - out[r].mean(), want - want.mean(), atol=1e-9)
    # a no-repeat history pushes its items down, a re-ordering one pulls them up
    own = hist[1, :4]
    assert (out[1, own] < s[1, own]).all()
    assert (out[3, [0, 1, 2]] > s[3, [0, 1, 2]]).all()


def test_empty_history_and_float32_are_handled():
    s = torch.zeros(2, 5)
    out = apply_repeat_mixture(s.clone(), np.array([[-1, -1], [1, 2]]), np.array([0, 2]))
    assert torch.equal(out[0], torch.zeros(5))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("retrieval", ["exact", "flat", "hnsw"])
def test_service_ranks_by_the_mixture_as_evaluation(retrieval):
    from serving_helpers import DAY0, tiny_domain, tiny_model

    from prerec.config import TrainConfig
    from prerec.data.domain import SECONDS_PER_DAY
    from prerec.intervention import PreRecRecommender
    from prerec.run import Run
    from prerec.serving import Service

    domain, model = tiny_domain(), tiny_model()
    model.scorer.model.cfg.repeat_mixture = True
    today = DAY0 + 45
    service = Service(model, retrieval=retrieval, clock=lambda: today * SECONDS_PER_DAY + 3600)
    service.attach(domain)
    ids = list(domain.item_ids)
    hs = [[ids[0], ids[3], ids[0], ids[0]], [ids[10]], ids[:20], [ids[5], ids[6], ids[7]]]
    hist = np.full((len(hs), 20), -1)
    for r, h in enumerate(hs):
        hist[r, : len(h)] = [domain.item_index[i] for i in h]
    run = Run(TrainConfig(encoder="hash:64"), model.scorer.model, "hash:64", "hash:64", [], {})
    scores = PreRecRecommender(run, "zero-shot").score(model.prepare(domain), hist, np.array([len(h) for h in hs]),
                                                       np.full(len(hs), today))
    plain = scores.copy()
    run.model.cfg.repeat_mixture = False
    plain = PreRecRecommender(run, "zero-shot").score(model.prepare(domain), hist, np.array([len(h) for h in hs]),
                                                      np.full(len(hs), today))
    assert not np.allclose(scores, plain)  # the mixture moved the history's items
    run.model.cfg.repeat_mixture = True
    recs = service.recommend(domain.name, hs, k=12)
    for r in range(len(hs)):
        np.testing.assert_allclose(recs.scores[r], scores[r, recs.indices[r]], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(recs.scores[r], np.sort(scores[r])[::-1][:12], rtol=1e-4, atol=1e-4)


def test_key_is_saved_and_old_runs_keep_their_identity():
    from prerec.config import TrainConfig
    from prerec.model import ModelConfig
    from prerec.run import run_identity

    off = TrainConfig(encoder="hash:64", model=ModelConfig(repeat_mixture=False))
    on = TrainConfig(encoder="hash:64")
    assert on.model.repeat_mixture is True  # the default since results/repeat-transfer
    assert "repeat_mixture" not in run_identity(off, ["a"], "hash:64")["train"]["model"]
    assert run_identity(on, ["a"], "hash:64")["train"]["model"]["repeat_mixture"] is True
    assert ModelConfig.from_dict(on.model.to_dict()).repeat_mixture is True
    assert "train_repeats" not in run_identity(off, ["a"], "hash:64")["train"]
    assert run_identity(TrainConfig(encoder="hash:64", train_repeats=False), ["a"], "hash:64")["train"]["train_repeats"] is False


@pytest.mark.parametrize("layout", ["sequence", "instance"])
def test_train_repeats_false_leaves_repeat_targets_out_of_the_loss(layout):
    """A target already in its history is not a training target; every other one still is."""
    import pandas as pd

    from prerec.data.domain import build_domain
    from prerec.data.instances import make_instances
    from prerec.data.prepared import prepare_domain
    from prerec.training.data import Corpus, Part

    items = [f"i{k}" for k in range(8)]
    seq = ["i0", "i1", "i0", "i2", "i3", "i1", "i1", "i4"]  # repeats at positions 2, 5, 6
    inter = pd.DataFrame({"user_id": "u", "item_id": seq, "timestamp": np.arange(len(seq)) * 86400})
    dom = build_domain("d", inter, pd.DataFrame({"item_id": items, "text": items}), source="test:d")
    prep = prepare_domain(dom, np.eye(dom.n_items, dtype=np.float32))
    inst = make_instances(dom.sequences)
    part = Part(prep, inst, 0)
    kept = {}
    for skip in (False, True):
        corpus = Corpus([part], np.array([0]), 3, 64, layout=layout, skip_repeats=skip)
        n = 1 if layout == "sequence" else len(inst)
        arrays = (corpus._sequence_arrays if layout == "sequence" else corpus._instance_arrays)(
            np.zeros(n, np.int64), np.arange(n), np.zeros((n, 3), np.int64))
        _, target, *_, extra = arrays
        if layout == "sequence":
            kept[skip] = sorted(target[target >= 0].tolist())
        else:
            valid = extra.get("valid", np.ones(len(target), bool))
            kept[skip] = sorted(target[valid].tolist())
    index = {k: dom.item_index[k] for k in set(seq)}
    want_all = sorted(index[x] for x in seq[1:])
    want_new = sorted(index[x] for t, x in enumerate(seq) if t >= 1 and x not in seq[:t])
    assert kept[False] == want_all
    assert kept[True] == want_new


def test_popularity_repeat_is_the_count_mixture():
    """popularity-repeat ranks by r P_repeat + (1 - r) P_explore with P ∝ the window's counts."""
    import pandas as pd

    from prerec.baselines.simple import PopularityBaseline, PopularityRepeatBaseline
    from prerec.data.domain import build_domain
    from prerec.data.prepared import prepare_domain

    rng = np.random.default_rng(1)
    items = [f"i{k}" for k in range(15)]
    rows = [(f"u{u}", items[int(rng.zipf(1.6)) % 15], 0) for u in range(40) for _ in range(4)]
    dom = build_domain("d", pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(timestamp=None),
                       pd.DataFrame({"item_id": items, "text": items}), source="test:d")
    target = prepare_domain(dom, np.eye(dom.n_items, dtype=np.float32))
    hist = np.array([[0, 1, 0, -1], [2, 3, 4, 5], [6, -1, -1, -1]])
    lengths = np.array([3, 4, 1])
    days = np.full(3, -1)
    f2 = PopularityBaseline().score(target, hist, lengths, days).astype(np.float64)
    got = PopularityRepeatBaseline().score(target, hist, lengths, days)
    for r in range(3):
        want = reference_log_mixture(np.log(np.maximum(f2[r], 1e-9)), hist[r, : lengths[r]].tolist())
        np.testing.assert_allclose(got[r] - got[r].mean(), want - want.mean(), atol=1e-4)
