"""Popularity factors (docs/method.md, "Popularity factors") against a deliberately naive per-day loop."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.cli import main
from prerec.data.domain import Domain, build_domain
from prerec.data.prepared import prepare_domain
from prerec.popularity import PopularityIndex
from shared_data import shared


def naive_factors(days: list[int], items: list[int], day: int, item: int) -> np.ndarray:
    """docs/method.md, "Popularity factors" read literally: one window per query, widened a day at a time."""
    if not any(d < day for d in days):
        return np.zeros(4)  # the domain's first day (or earlier): nothing precedes it
    w = 15
    while True:
        window = [i for d, i in zip(days, items) if day - w <= d <= day - 1]
        if window:
            break
        w += 1
    c = Counter(window)
    values = np.array(list(c.values()), dtype=float)
    s = np.array([np.mean(values**p) ** (1 / p) for p in (1, 2, 3, 4)])
    return c.get(item, 0) / s


logs = st.lists(st.tuples(st.integers(0, 80), st.integers(0, 6)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(logs, st.data())
def test_matches_naive_loop_on_random_logs(log, data):
    days = [d for d, _ in log]
    items = [i for _, i in log]
    # every day of the log plus a few random ones (gaps, before the start, after the end)
    extra = data.draw(st.lists(st.integers(-5, 120), max_size=8))
    q_days = np.array(sorted(set(days) | set(extra)))
    q = np.array([(d, j) for d in q_days for j in range(8)])  # items 7: never seen
    index = PopularityIndex(np.array(items), np.array(days))
    got = index.factors(q[:, 0], q[:, 1])
    want = np.array([naive_factors(days, items, int(d), int(j)) for d, j in q])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert got.dtype == np.float32 and got.shape == (len(q), 4)


def test_hand_computed_case():
    # day 0: A, A, B;  day 1: A;  (A = 0, B = 1)
    index = PopularityIndex(np.array([0, 0, 1, 0]), np.array([0, 0, 0, 1]))
    f = index.factors(np.array([1, 1, 2, 2]), np.array([0, 1, 0, 1]))
    # day 1: counts A=2, B=1. s1 = 1.5, s2 = sqrt(2.5), s3 = 4.5^(1/3), s4 = 8.5^(1/4)
    s = np.array([1.5, 2.5**0.5, 4.5 ** (1 / 3), 8.5**0.25])
    np.testing.assert_allclose(f[0], 2 / s, rtol=1e-6)
    np.testing.assert_allclose(f[1], 1 / s, rtol=1e-6)
    np.testing.assert_allclose(f[0], [1.333333, 1.264911, 1.211414, 1.171311], rtol=1e-5)
    # day 2: counts A=3, B=1. s1 = 2, s2 = sqrt(5), s3 = 14^(1/3), s4 = 41^(1/4)
    s = np.array([2.0, 5**0.5, 14 ** (1 / 3), 41**0.25])
    np.testing.assert_allclose(f[2], 3 / s, rtol=1e-6)
    np.testing.assert_allclose(f[3], 1 / s, rtol=1e-6)


def test_first_day_is_zero():
    index = PopularityIndex(np.array([0, 1, 1, 2]), np.array([10, 10, 11, 11]))
    assert not index.factors(10, np.arange(3)).any()  # the first day of the log
    assert not index.factors(np.array([3, 9]), np.array([0, 1])).any()  # before it
    assert index.factors(11, np.array([0]))[0, 0] == pytest.approx(1.0)  # window = day 10: A=1, B=1


def test_window_is_15_days_then_widens():
    # A on day 0, B on day 1, nothing else until day 100
    index = PopularityIndex(np.array([0, 1, 0]), np.array([0, 1, 100]))
    # day 15: [0, 14] holds A and B; day 16: [1, 15] holds only B
    assert index.factors(15, np.array([0, 1]))[:, 0].tolist() == [1.0, 1.0]
    assert index.factors(16, np.array([0, 1]))[:, 0].tolist() == [0.0, 1.0]
    # day 17: [2, 16] is empty -> widened until it reaches day 1 (B only), however far back
    for day in (17, 50, 100):
        np.testing.assert_allclose(index.factors(day, np.array([0, 1])), [[0, 0, 0, 0], [1, 1, 1, 1]])
    # after day 100, the last day (A) is the window
    assert index.factors(130, np.array([0, 1]))[:, 0].tolist() == [1.0, 0.0]


def test_single_window_without_timestamps():
    items = np.array([0, 0, 0, 1, 2, 2])
    index = PopularityIndex(items, None)
    c = np.array([3.0, 1.0, 2.0])
    s = np.array([np.mean(c**p) ** (1 / p) for p in (1, 2, 3, 4)])
    want = np.vstack([c[:, None] / s, np.zeros((1, 4))])
    np.testing.assert_allclose(index.factors(None, np.array([0, 1, 2, 3])), want, rtol=1e-6)
    np.testing.assert_allclose(index.item_factors(None, 4), want, rtol=1e-6)
    assert not PopularityIndex(np.array([], dtype=np.int64), None).factors(None, np.array([0])).any()


def no_time_domain() -> Domain:
    users = [f"u{k}" for k in range(20) for _ in range(3)]
    items = [f"i{(k * 7 + r) % 9}" for k in range(20) for r in range(3)]
    return build_domain("toy", pd.DataFrame({"user_id": users, "item_id": items}), None, source="test")


def test_domain_without_time_uses_training_users_only():
    d = no_time_domain()
    prepared = prepare_domain(d, np.zeros((d.n_items, 4), dtype=np.float32))
    train_items = prepared.split.train.items
    want = PopularityIndex(train_items, None).factors(None, np.arange(d.n_items))
    for day in (None, 5, np.full(d.n_items, -1)):
        np.testing.assert_array_equal(prepared.factors(day, np.arange(d.n_items)), want)
    counts = np.bincount(train_items, minlength=d.n_items)
    assert ((want[:, 0] > 0) == (counts > 0)).all()



def test_cli_popularity_without_time(tmp_path):
    d = shared("amazon_office")
    out = tmp_path / "pop.parquet"
    assert main(["data", "popularity", f"office=canonical:{d}", "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 2420 and (frame["day"] == -1).all() and frame["date"].isna().all()
    assert (frame[["f1", "f2", "f3", "f4"]] >= 0).all().all()


def test_empty_query_and_padding_items():
    index = PopularityIndex(np.array([0, 1, 0]), np.array([0, 1, 2]))
    assert index.factors(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0, 4)
    assert not index.factors(3, np.array([-1, 99])).any()  # padding and unknown items: zero
