"""User split (40/30/30, seeded) and instances (docs/method.md, "Evaluation") against slow loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prerec.data.domain import Sequences, build_domain
from prerec.data.instances import MAX_HISTORY, PAD, make_instances
from prerec.data.split import split_users


def random_sequences(rng: np.random.Generator, n_users: int, max_len: int = 150, n_items: int = 50) -> Sequences:
    lengths = rng.integers(1, max_len, size=n_users)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    items = rng.integers(0, n_items, size=offsets[-1]).astype(np.int64)
    days = np.sort(rng.integers(0, 30, size=offsets[-1])).astype(np.int64)
    users = np.array([f"user{k:04d}" for k in rng.permutation(n_users)], dtype=object)
    return Sequences(users, offsets, items, days)


def as_lists(seqs: Sequences) -> dict[str, tuple[list[int], list[int]]]:
    return {str(u): (seqs.sequence(k)[0].tolist(), seqs.sequence(k)[1].tolist()) for k, u in enumerate(seqs.users)}


# ---------------------------------------------------------------- split


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 101, 1000])
def test_split_sizes_disjoint_and_complete(n):
    seqs = random_sequences(np.random.default_rng(n), n, max_len=5)
    split = split_users(seqs)
    parts = [set(split.train.users), set(split.valid.users), set(split.test.users)]
    assert len(split.train) == round(0.4 * n) and len(split.valid) == round(0.3 * n)
    assert len(split.train) + len(split.valid) + len(split.test) == n
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(seqs.users)
    # every user keeps exactly its own sequence
    whole = as_lists(seqs)
    for part in (split.train, split.valid, split.test):
        for user, seq in as_lists(part).items():
            assert seq == whole[user]


def test_split_is_seeded_and_independent_of_file_order():
    seqs = random_sequences(np.random.default_rng(0), 300)
    a, b = split_users(seqs, 2023), split_users(seqs, 2023)
    assert list(a.train.users) == list(b.train.users) and list(a.test.users) == list(b.test.users)
    other = split_users(seqs, 7)
    assert set(other.train.users) != set(a.train.users)
    # the same users in another file order get the same split
    shuffled = seqs.subset(np.random.default_rng(1).permutation(len(seqs)))
    c = split_users(shuffled, 2023)
    assert [set(x.users) for x in (a.train, a.valid, a.test)] == [set(x.users) for x in (c.train, c.valid, c.test)]


def test_split_of_a_domain_read_in_two_orders():
    rows = pd.DataFrame({"user_id": [f"u{k % 40}" for k in range(200)], "item_id": [f"i{k % 13}" for k in range(200)]})
    d1 = build_domain("a", rows, None, source="t")
    d2 = build_domain("b", rows.iloc[::-1], None, source="t")
    s1, s2 = split_users(d1.sequences), split_users(d2.sequences)
    assert set(s1.test.users) == set(s2.test.users)


# ---------------------------------------------------------------- instances


def slow_instances(seqs: Sequences) -> list[tuple[int, int]]:
    out = []
    for k in range(len(seqs)):
        n = seqs.offsets[k + 1] - seqs.offsets[k]
        for t in range(1, n):
            out.append((k, t))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_instances_match_slow_loop(seed, n_users):
    seqs = random_sequences(np.random.default_rng(seed), n_users)
    inst = make_instances(seqs)
    slow = slow_instances(seqs)
    assert list(zip(inst.seq.tolist(), inst.pos.tolist())) == slow
    hist, lengths = inst.histories()
    assert hist.shape == (len(slow), MAX_HISTORY) and hist.dtype == np.int64
    for row, (k, t) in enumerate(slow):
        items, days = seqs.sequence(k)
        h = items[max(0, t - MAX_HISTORY) : t].tolist()  # the previous <= 64 items, oldest first
        assert lengths[row] == len(h)
        assert hist[row].tolist() == h + [PAD] * (MAX_HISTORY - len(h))  # left-aligned, padded at the end
        assert inst.targets[row] == items[t] and inst.days[row] == days[t]  # the target's day
        assert inst.users[row] == seqs.users[k]


def test_histories_shorter_max_len():
    seqs = random_sequences(np.random.default_rng(3), 5)
    inst = make_instances(seqs)
    hist, lengths = inst.histories(max_len=3)
    assert hist.shape[1] == 3 and lengths.max() == 3
    k, t = int(inst.seq[-1]), int(inst.pos[-1])
    assert hist[-1].tolist() == seqs.sequence(k)[0][t - 3 : t].tolist()


def test_single_item_users_give_no_instance():
    seqs = Sequences(np.array(["a", "b"], dtype=object), np.array([0, 1, 3]), np.array([5, 6, 7]), np.array([0, 0, 1]))
    inst = make_instances(seqs)
    assert len(inst) == 1 and inst.targets.tolist() == [7] and inst.users.tolist() == ["b"]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.data())
def test_first_n_is_the_earliest_instances(seed, data):
    seqs = random_sequences(np.random.default_rng(seed), 12, max_len=20)
    inst = make_instances(seqs)
    n = data.draw(st.integers(0, len(inst) + 5))
    # slow: order every instance by (target day, user order, position), keep the first n
    slow = sorted(slow_instances(seqs), key=lambda kt: (seqs.sequence(kt[0])[1][kt[1]], kt[0], kt[1]))[:n]
    got = inst.first(n)
    assert sorted(zip(got.seq.tolist(), got.pos.tolist())) == sorted(slow)
    # kept in the original instance order, and nested: first(m) is a subset of first(n) for m <= n
    assert list(zip(got.seq.tolist(), got.pos.tolist())) == [p for p in slow_instances(seqs) if p in set(slow)]
    m = data.draw(st.integers(0, n))
    small = set(zip(inst.first(m).seq.tolist(), inst.first(m).pos.tolist()))
    assert small <= set(zip(got.seq.tolist(), got.pos.tolist()))


def test_instances_count_on_a_split():
    seqs = random_sequences(np.random.default_rng(9), 200)
    split = split_users(seqs)
    total = sum(len(make_instances(p)) for p in (split.train, split.valid, split.test))
    assert total == int((seqs.lengths - 1).sum())
