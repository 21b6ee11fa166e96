"""Popularity factor sets (prerec.popularity_factors) against a deliberately naive per-day loop,
the default set unchanged, the configuration key, the baseline rows and the CLI's columns."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.baselines.popularity_sets import FactorSetBaseline
from prerec.baselines.simple import PopularityBaseline
from prerec.cli import main
from prerec.config import TrainConfig, build_config, train_config
from prerec.data.domain import build_domain
from prerec.data.prepared import prepare_domain
from prerec.errors import PrerecError
from prerec.model import ModelConfig, PreRec
from prerec.popularity import PopularityIndex, window_factors
from prerec.popularity_factors import FACTOR_SETS, get_factor_set
from prerec.registry import MODELS
from prerec.run import run_identity
from shared_data import shared

SETS = list(FACTOR_SETS)


def naive_window(days: list[int] | None, items: list[int], day: int, width: int) -> list[tuple[int, int]]:
    """(day, item) of the window of ``width`` days before ``day``, widened a day at a time while
    empty; every interaction when the log has no days; nothing when nothing precedes ``day``."""
    if days is None:
        return [(0, i) for i in items]
    if not any(d < day for d in days):
        return []
    w = width
    while True:
        window = [(d, i) for d, i in zip(days, items) if day - w <= d <= day - 1]
        if window:
            return window
        w += 1


def l2(c: Counter, item: int) -> float:
    return c.get(item, 0) / math.sqrt(np.mean([v**2 for v in c.values()])) if c else 0.0


def naive(name: str, days: list[int] | None, items: list[int], day: int, item: int) -> list[float]:
    """docs/popularity.md, "Alternative factor sets", read literally for one (day, item)."""
    c = Counter(i for _, i in naive_window(days, items, day, 15))
    n = c.get(item, 0)
    if name == "paper":
        vals = list(c.values())
        return [n / np.mean([v**p for v in vals]) ** (1 / p) if n else 0.0 for p in (1, 2, 3, 4)]
    if name == "l2":
        return [l2(c, item)]
    if name == "count":
        return [float(n)]
    if name == "log":
        return [math.log(1 + n)]
    if name == "rank":
        return [sum(v <= n for v in c.values()) / len(c) if n else 0.0]
    if name == "windows":
        f = [l2(Counter(i for _, i in naive_window(days, items, day, w)), item) for w in (1, 7, 15, 30)]
        return [*f, f[1] - f[3]]
    assert name == "last-seen"
    seen = [d for d, i in naive_window(days, items, day, 90) if i == item]
    if not seen:
        return [0.0]
    return [1.0] if days is None else [1.0 / (day - max(seen))]


logs = st.lists(st.tuples(st.integers(0, 120), st.integers(0, 6)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(logs, st.data(), st.sampled_from(SETS))
def test_every_set_matches_naive_loop(log, data, name):
    days = [d for d, _ in log]
    items = [i for _, i in log]
    extra = data.draw(st.lists(st.integers(-5, 250), max_size=8))
    q_days = np.array(sorted(set(days) | set(extra)))
    q = np.array([(d, j) for d in q_days for j in range(8)])  # item 7: never seen
    index = PopularityIndex(np.array(items), np.array(days))
    got = index.factors(q[:, 0], q[:, 1], name)
    want = np.array([naive(name, days, items, int(d), int(j)) for d, j in q])
    assert got.dtype == np.float32 and got.shape == (len(q), get_factor_set(name).n_factors)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # window_factors lists exactly the items whose factors are not all 0
    for d in q_days[:5]:
        its, f = index.window_factors(int(d), name)
        np.testing.assert_array_equal(its, np.flatnonzero(index.item_factors(int(d), 8, name).any(1)))
        assert f.shape == (len(its), get_factor_set(name).n_factors)


@pytest.mark.parametrize("name", SETS)
def test_every_set_without_timestamps(name):
    items = [0, 0, 0, 1, 2, 2, 5]
    index = PopularityIndex(np.array(items), None)
    want = np.array([naive(name, None, items, 0, j) for j in range(7)])
    np.testing.assert_allclose(index.item_factors(None, 7, name), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(index.item_factors(12, 7, name), want, rtol=1e-6, atol=1e-6)  # days ignored


def test_hand_computed_windows_and_last_seen():
    # item 0 on days 0, 0, 10; item 1 on day 0; item 2 on day 5; item 3 on day 40
    index = PopularityIndex(np.array([0, 0, 1, 2, 0, 3]), np.array([0, 0, 0, 5, 10, 40]))
    items, f = index.window_factors(11, "windows")
    s2 = math.sqrt((9 + 1 + 1) / 3)  # 15 and 30 days: counts 3, 1, 1
    want = [[1, 1, 3 / s2, 3 / s2, 1 - 3 / s2],  # day 10 alone is the 1-day window; days 5, 10 the 7-day
            [0, 0, 1 / s2, 1 / s2, -1 / s2],
            [0, 1, 1 / s2, 1 / s2, 1 - 1 / s2]]
    np.testing.assert_array_equal(items, [0, 1, 2])
    np.testing.assert_allclose(f, want, rtol=1e-6)
    np.testing.assert_allclose(index.item_factors(11, 4, "last-seen")[:, 0], [1, 1 / 11, 1 / 6, 0], rtol=1e-6)
    # day 41: the 90 days hold all four; item 0 was last seen 31 days before
    np.testing.assert_allclose(index.item_factors(41, 4, "last-seen")[:, 0], [1 / 31, 1 / 41, 1 / 36, 1], rtol=1e-6)


def test_default_set_is_the_papers_bit_for_bit():
    """The default path is the paper's formula computed as before this key existed, bit for bit;
    l2 and the 15-day column of ``windows`` are its second factor, bit for bit."""
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    from prerec.data import load_domains

    d = load_domains([f"online-retail:{path}#Germany"])[0]
    index = PopularityIndex(d.sequences.items, d.sequences.days)
    for day in np.unique(d.sequences.days)[::7]:
        items, counts = index.window(int(day))
        before = (counts[:, None] / window_factors(counts)[None, :]).astype(np.float32) if len(items) else None
        for got_items, got in (index.window_factors(int(day)), index.window_factors(int(day), "paper")):
            np.testing.assert_array_equal(got_items, items)
            if before is not None:
                assert got.tobytes() == before.tobytes()
        if before is not None:
            assert index.window_factors(int(day), "l2")[1][:, 0].tobytes() == before[:, 1].tobytes()
            w_items, w = index.window_factors(int(day), "windows")  # the union of its windows' items
            assert w[np.searchsorted(w_items, items), 2].tobytes() == before[:, 1].tobytes()


def test_default_configuration_is_unchanged():
    cfg = TrainConfig()
    assert cfg.model.popularity_factors == "paper" and cfg.model.n_factors == 4
    assert PreRec(cfg.model_config(8, [3])).pop[0].in_features == 4
    # the run identity of a default run is the one runs saved before the key had (resume still works)
    ident = run_identity(cfg, ["a"], "enc")
    assert "popularity_factors" not in ident["train"]["model"] and ident["train"]["model"]["n_factors"] == 4
    # a run file from before the key (model.n_factors, no popularity_factors) loads as the paper's
    old = json.loads(json.dumps(cfg.to_dict()))
    old["model"].pop("popularity_factors")
    assert TrainConfig.from_dict(old).model.popularity_factors == "paper"
    assert ModelConfig.from_dict({"n_factors": 4, "hidden_size": 8}).n_factors == 4


def test_configuration_key():
    cfg = build_config(None, sets=["popularity_factors=windows"])
    assert cfg.model.popularity_factors == "windows" and cfg.model.n_factors == 5
    assert PreRec(cfg.model_config(8, [3])).pop[0].in_features == 5
    assert train_config(popularity_factors="log").model.n_factors == 1
    assert TrainConfig.from_dict(cfg.to_dict()).model.popularity_factors == "windows"
    assert run_identity(cfg, ["a"], "enc")["train"]["model"]["popularity_factors"] == "windows"
    with pytest.raises(PrerecError, match=r"popularity_factors.*paper, l2"):
        build_config(None, sets=["popularity_factors=squares"])
    with pytest.raises(PrerecError, match="n_factors"):
        build_config(None, sets=["n_factors=2"])  # follows the set, not settable


def retail_prepared(days: bool = True):
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    from prerec.data import load_domains

    d = load_domains([f"online-retail:{path}#France"])[0]
    if not days:
        frame = d.interactions[["user_id", "item_id"]].astype(str)
        d = build_domain("France", frame, None, source="test")
    return prepare_domain(d, np.zeros((d.n_items, 4), np.float32))


@pytest.mark.parametrize("timed", [True, False])
def test_baseline_rows(timed):
    """Every set's row scores its ranking of the index's factors; count, log and rank rank every
    request exactly as ``popularity`` does (increasing in the count within a window)."""
    target = retail_prepared(timed)
    days = np.unique(target.domain.sequences.days)[[5, 40, 41, -1]] if timed else np.full(4, -1)
    hist, lengths = np.zeros((4, 1), np.int64), np.ones(4, np.int64)
    ref = PopularityBaseline().score(target, hist, lengths, days)
    for name in ("count", "log", "rank", "windows", "last-seen"):
        assert f"popularity-{name}" in MODELS
        got = FactorSetBaseline(name).score(target, hist, lengths, days)
        fs = get_factor_set(name)
        for r, day in enumerate(days):
            f = target.popularity.item_factors(int(day) if timed else None, target.n_items, name)
            np.testing.assert_array_equal(got[r], fs.ranking(f))
            if name in ("count", "log", "rank"):  # the same order and ties as the L2 factor
                assert (np.sign(got[r][:, None] - got[r][None, :]) == np.sign(ref[r][:, None] - ref[r][None, :])).all()


def test_cli_writes_a_column_per_factor(tmp_path):
    out = tmp_path / "pop.parquet"
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    assert main(["data", "popularity", f"pt=online-retail:{path}#Portugal", "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    cols = ["f1", "f2", "f3", "f4", "count", "log_count", "rank_pct", "w1", "w7", "w15", "w30", "trend", "recency"]
    assert list(frame.columns) == ["domain", "day", "date", "item_id", *cols]
    np.testing.assert_array_equal(frame["f2"], frame["w15"])
    np.testing.assert_allclose(frame["log_count"], np.log1p(frame["count"]), rtol=1e-6)
    np.testing.assert_allclose(frame["trend"], frame["w7"] - frame["w30"], atol=1e-6)
    assert (frame["recency"] <= 1).all() and (frame["rank_pct"] <= 1).all()
    assert main(["data", "popularity", f"pt=online-retail:{path}#Portugal", "--out", str(out),
                 "--factors", "log"]) == 0
    assert list(pd.read_parquet(out).columns) == ["domain", "day", "date", "item_id", "log_count"]
    assert main(["data", "popularity", f"pt=online-retail:{path}#Portugal", "--out", str(out),
                 "--factors", "cubes"]) == 2
