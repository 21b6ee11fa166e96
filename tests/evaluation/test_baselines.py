"""Training-free baselines and the evaluation loop on tiny hand-made domains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prerec.baselines import PopularityBaseline, TextLastBaseline, TextMeanBaseline
from prerec.data.domain import build_domain
from prerec.data.prepared import prepare_domain
from prerec.errors import PrerecError
from prerec.evaluation.evaluate import EvalConfig, Results, evaluate_model
from prerec.evaluation.metrics import instance_metrics

DAY = 86400


def hand_domain():
    """Items a..d; day 10: u1 buys a, a, b; day 11: u2 buys c; day 20: u3 buys a then d."""
    inter = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u3", "u3"],
        "item_id": ["a", "a", "b", "c", "a", "d"],
        "timestamp": [10 * DAY, 10 * DAY + 1, 10 * DAY + 2, 11 * DAY, 20 * DAY, 20 * DAY + 5],
    })
    texts = pd.DataFrame({"item_id": list("abcd"), "text": ["red mug", "blue mug", "red cup", "green hat"]})
    domain = build_domain("hand", inter, texts, source="test")
    emb = np.array([[1, 0, 0], [0.6, 0.8, 0], [0.8, 0, 0.6], [0, 0, 1]], dtype=np.float32)
    return prepare_domain(domain, emb)


def test_popularity_is_l2_factor_of_the_window():
    p = hand_domain()
    d = p.domain
    idx = {item: d.item_index[item] for item in "abcd"}
    # day 20: the window [5, 19] holds a x2, b x1, c x1 -> s2 = sqrt((4 + 1 + 1) / 3)
    s = PopularityBaseline().score(p, np.array([[idx["a"]]]), np.array([1]), np.array([20]))
    s2 = np.sqrt(6 / 3)
    want = {"a": 2 / s2, "b": 1 / s2, "c": 1 / s2, "d": 0.0}
    for item, v in want.items():
        assert s[0, idx[item]] == pytest.approx(v, rel=1e-6)
    # the first day of the log has nothing before it: all zero, every item tied
    s = PopularityBaseline().score(p, np.array([[0]]), np.array([1]), np.array([10]))
    assert (s == 0).all()
    # several days in one batch, rows follow their own day
    s = PopularityBaseline().score(p, np.zeros((2, 1), dtype=np.int64), np.ones(2, dtype=np.int64),
                                   np.array([10, 20]))
    assert (s[0] == 0).all() and s[1, idx["a"]] == pytest.approx(2 / s2, rel=1e-6)


def test_text_baselines_are_cosines():
    p = hand_domain()
    e = p.item_emb
    hist = np.array([[0, 3, -1], [2, -1, -1]])
    lengths = np.array([2, 1])
    last = TextLastBaseline().score(p, hist, lengths, np.zeros(2, dtype=np.int64))
    np.testing.assert_allclose(last[0], e @ e[3], atol=1e-6)
    np.testing.assert_allclose(last[1], e @ e[2], atol=1e-6)
    mean = TextMeanBaseline().score(p, hist, lengths, np.zeros(2, dtype=np.int64))
    q = (e[0] + e[3]) / 2
    np.testing.assert_allclose(mean[0], e @ q / np.linalg.norm(q), atol=1e-6)
    np.testing.assert_allclose(mean[1], e @ e[2], atol=1e-6)  # one item: mean = that item


def test_registry():
    from prerec.registry import MODELS, build_model, parse_names, run_free_names

    allowed = run_free_names()
    assert {"popularity", "text", "text-last", "sasrec-scratch"} <= set(allowed)
    assert not {"prerec", "prerec-mc", "prerec-finetuned"} & set(allowed)
    assert parse_names("popularity, text,text-last", allowed) == ["popularity", "text", "text-last"]
    assert parse_names("", allowed) == []
    with pytest.raises(PrerecError, match="unknown model 'pop'"):
        parse_names("pop", allowed)
    assert build_model("text-last").name == "text-last"
    with pytest.raises(PrerecError, match="needs a pre-trained run"):
        build_model("prerec")
    assert all(e.name == n for n, e in MODELS.items())


def toy_domain(n_users=60, n_items=40, seed=0, with_time=True):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t in range(int(rng.integers(2, 8))):
            rows.append((f"u{u}", f"i{int(rng.integers(n_items))}", (100 + u + t) * DAY if with_time else None))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if not with_time:
        inter = inter.drop(columns="timestamp")
    items = sorted(set(inter["item_id"]))
    texts = pd.DataFrame({"item_id": items, "text": [f"item {i}" for i in items]})
    domain = build_domain("toy", inter, texts, source="test")
    emb = rng.normal(size=(domain.n_items, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return prepare_domain(domain, emb)


@pytest.mark.parametrize("with_time", [True, False])
def test_evaluate_model_matches_direct_ranking(with_time):
    p = toy_domain(with_time=with_time)
    cfg = EvalConfig(progress=False, batch_size=7)
    r = evaluate_model(TextLastBaseline(), p, cfg, source_items=["i1", "i2"])
    # direct: score every instance one by one
    from prerec.data.instances import make_instances

    inst = make_instances(p.split.test)
    hist, lengths = inst.histories()
    for k in range(len(inst)):
        row = TextLastBaseline().score(p, hist[k : k + 1], lengths[k : k + 1], inst.days[k : k + 1])[0]
        t = row[inst.targets[k]]
        assert r.n_higher[k] == (row > t).sum() and r.n_tied[k] == (row == t).sum()
    assert list(r.unseen) == [i not in ("i1", "i2") for i in r.item_id]
    assert (r.frame()["n_items"] == p.n_items).all()


def test_filter_history_keeps_the_target():
    p = toy_domain()
    cfg = EvalConfig(progress=False)
    plain = evaluate_model(TextLastBaseline(), p, cfg)
    filt = evaluate_model(TextLastBaseline(), p, EvalConfig(progress=False, filter_history=True))
    assert (filt.n_higher <= plain.n_higher).all()
    from prerec.data.instances import make_instances

    inst = make_instances(p.split.test)
    hist, lengths = inst.histories()
    last = hist[np.arange(len(inst)), lengths - 1]
    repeat = last == inst.targets  # target == last item: cosine 1, ranked first either way
    assert (filt.n_higher[repeat] == 0).all()
    # a non-repeat: the last item (scored 1) is removed, so it can no longer be above the target
    other = ~np.array([t in h[: n] for t, h, n in zip(inst.targets, hist, lengths)])
    assert (filt.n_higher[other] < plain.n_higher[other]).all()


def test_results_summary_means_over_domains():
    p = toy_domain()
    q = toy_domain(seed=1)
    q.domain.name = "toy2"
    cfg = EvalConfig(progress=False)
    res = Results()
    for d in (p, q):
        for m in (TextLastBaseline(), PopularityBaseline()):
            res.add(evaluate_model(m, d, cfg))
    s = res.summary()
    assert set(s) == {"toy", "toy2", "mean"}
    for model in ("text-last", "popularity"):
        assert set(s["mean"][model]) == {"recall@k%", "rndcg@k%", "recall@20", "ndcg@20", "instances"}
        for key in ("recall@k%", "ndcg@20"):
            assert s["mean"][model][key] == pytest.approx((s["toy"][model][key] + s["toy2"][model][key]) / 2)
        assert s["mean"][model]["instances"] == s["toy"][model]["instances"] + s["toy2"][model]["instances"]
    r = res.ranks[0]
    v = instance_metrics(r.n_higher, r.n_tied, r.n_items)
    assert s["toy"]["text-last"]["recall@k%"] == pytest.approx(v["recall@k%"].mean())
    frame = res.instances_frame()
    assert list(frame.columns) == ["model", "domain", "user_id", "position", "item_id", "n_items", "n_higher",
                                   "n_tied"]
    assert len(frame) == sum(len(r.n_higher) for r in res.ranks)
    # no unseen instances without sources: the subset is empty, its mean has no metrics
    assert s["toy"]["text-last"]["instances"] > 0
    assert res.summary("unseen")["mean"]["text-last"]["instances"] == 0
