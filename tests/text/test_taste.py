"""The text taste signal (prerec.text.taste) against a loop over every pair it averages."""

from __future__ import annotations

import numpy as np
import pytest

from prerec.data.domain import Sequences
from prerec.text.taste import MIN_USERS, UPPER_BOUND_Z, taste_signal


def _sequences(seqs: list[list[int]]) -> Sequences:
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    items = np.concatenate([np.asarray(s, np.int64) for s in seqs]) if seqs else np.zeros(0, np.int64)
    return Sequences(np.array([f"u{i}" for i in range(len(seqs))], dtype=object), offsets, items,
                     np.zeros(len(items), np.int64))


def _reference(emb: np.ndarray, seqs: list[list[int]]) -> tuple[float, float, int]:
    """Every ordered pair of distinct items within each user; every pair of interactions, each
    weighing 1 / (users x the user's length), across users."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = x @ x.T
    per_user = []
    for s in seqs:
        d = sorted(set(s))
        if len(d) >= 2:
            per_user.append(np.mean([cos[a, b] for a in d for b in d if a != b]))
    inter = [(i, 1.0 / (len(seqs) * len(s))) for s in seqs for i in s]
    mean = sum(wa * wb * cos[a, b] for a, wa in inter for b, wb in inter)
    second = sum(wa * wb * cos[a, b] ** 2 for a, wa in inter for b, wb in inter)
    sd = np.sqrt(second - mean**2)
    per_user = np.array(per_user)
    return (per_user.mean() - mean) / sd, per_user.std(ddof=1) / np.sqrt(len(per_user)) / sd, len(per_user)


def test_matches_the_pairwise_loop():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(17, 6)) * rng.uniform(0.5, 3, size=(17, 1))  # any row scale
    seqs = [list(rng.integers(0, 17, rng.integers(1, 9))) for _ in range(MIN_USERS + 12)]
    seqs[0] = [4, 4, 4]  # one distinct item: no within pair, still in the marginal
    got = taste_signal(emb, _sequences(seqs))
    value, se, users = _reference(emb, seqs)
    assert got.users == users
    assert got.value == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert got.se == pytest.approx(se, rel=1e-9)
    assert got.upper == pytest.approx(value + UPPER_BOUND_Z * se)


def test_text_that_tracks_taste_reads_higher_than_the_same_log_with_texts_shuffled():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    emb = centres[np.arange(80) % 4] + 0.7 * rng.normal(size=(80, 16))  # 4 text clusters
    seqs = []
    for _ in range(200):  # each user keeps to one cluster
        c = rng.integers(4)
        seqs.append(list(rng.choice(np.arange(c, 80, 4), rng.integers(2, 8))))
    tracked = taste_signal(emb, _sequences(seqs))
    shuffled = taste_signal(emb[rng.permutation(80)], _sequences(seqs))
    assert tracked.value > 1.0 and tracked.value - 3 * tracked.se > shuffled.upper
    assert abs(shuffled.value) < 3 * shuffled.se + 0.1


def test_undefined_or_unreadable_on_small_logs():
    emb = np.random.default_rng(0).normal(size=(5, 4))
    small = taste_signal(emb, _sequences([[0, 1], [1, 2, 3]] * ((MIN_USERS - 1) // 2) + [[2]] * 50))
    assert small.users == MIN_USERS - 1 - (MIN_USERS - 1) % 2 and not small.readable  # too few users
    assert taste_signal(emb, _sequences([[0, 1], [1, 2]] * (MIN_USERS // 2))).readable
    assert taste_signal(emb, _sequences([[0, 1]] + [[2]] * 50)) is None  # one user: no spread
    assert taste_signal(emb, _sequences([])) is None
    assert taste_signal(emb, _sequences([[3, 3]] * 40)) is None  # one item: no pair of distinct items
