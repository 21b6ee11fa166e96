"""``markov``: checked against a slow, obvious loop over item-id strings on a hand-made case."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from prerec.baselines.markov import MarkovBaseline
from prerec.data import make_instances
from prerec.data.domain import build_domain
from prerec.data.prepared import prepare_domain
from prerec.errors import PrerecError


def prep(name: str, space: str | None, seqs: dict[str, str]):
    rows = [(u, i, 1_300_000_000 + 86400 * t) for u, items in seqs.items() for t, i in enumerate(items)]
    d = build_domain(name, pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), None, source=name)
    d.id_space = space
    return prepare_domain(d, np.zeros((d.n_items, 1), dtype=np.float32))


def random_seqs(rng, prefix: str, n: int, letters: str) -> dict[str, str]:
    return {f"{prefix}{k}": "".join(rng.choice(list(letters), rng.integers(1, 9))) for k in range(n)}


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    sources = [
        prep("A", "shop", random_seqs(rng, "a", 30, "abcdefgh")),
        prep("B", "shop", random_seqs(rng, "b", 20, "defghij")),
        prep("O", "other", {f"o{k}": "abab" for k in range(20)}),  # same-looking ids, another space
        prep("F", None, {f"f{k}": "acac" for k in range(20)}),  # undeclared: never matched
    ]
    target = prep("T", "shop", random_seqs(rng, "t", 20, "abcdefqr"))  # q, r: no source has them
    return sources, target


def reference(sources, target, histories: list[list[int]], last: int, own=None) -> np.ndarray:
    """Dense ranks of (sum_l 2^-l count(h[-1-l] -> j), count(j)) by item-id strings, in loops."""
    counts: dict[tuple[str, str], float] = defaultdict(float)
    support: dict[str, int] = defaultdict(int)
    for s in sources:
        if s.domain.id_space != target.domain.id_space:
            continue
        for _, rows in s.domain.interactions.groupby("user_id", sort=False):
            seq = rows["item_id"].tolist()
            for x in seq:
                support[x] += 1
            for a, b in pairwise(seq):
                counts[(a, b)] += 1
    ids = list(target.domain.item_ids)
    if own is not None:
        for seq, pos in zip(own.seq, own.pos):
            items = own.sequences.sequence(seq)[0]
            counts[(ids[items[pos - 1]], ids[items[pos]])] += 1
            support[ids[items[pos]]] += 1
    out = np.zeros((len(histories), len(ids)), dtype=np.float32)
    for r, hist in enumerate(histories):
        keys = []
        for item in ids:
            score = sum(2.0 ** -lag * counts[(ids[hist[-1 - lag]], item)] for lag in range(min(last, len(hist))))
            keys.append((score, support[item]))
        distinct = sorted(set(keys))
        out[r] = [distinct.index(k) for k in keys]
    return out


def batch(target):
    inst = make_instances(target.domain.sequences)  # every user's every position
    hist, lengths = inst.histories()
    return hist, lengths, inst.days, [list(h[:n]) for h, n in zip(hist, lengths)]


@pytest.mark.parametrize("last", [1, 2, 5])
def test_sources_only_matches_the_loop(case, last):
    sources, target = case
    hist, lengths, days, as_lists = batch(target)
    model = MarkovBaseline(last=last).fit(sources)
    np.testing.assert_array_equal(model.score(target, hist, lengths, days), reference(sources, target, as_lists, last))


@pytest.mark.parametrize("n", [None, 7])
def test_with_the_targets_own_transitions(case, n):
    sources, target = case
    own = make_instances(target.split.train)
    own = own if n is None else own.first(n)
    hist, lengths, days, as_lists = batch(target)
    model = MarkovBaseline(last=5).fit(sources, target, instances=None if n is None else own)
    expected = reference(sources, target, as_lists, 5, own)
    np.testing.assert_array_equal(model.score(target, hist, lengths, days), expected)
    off = MarkovBaseline(last=5, target_transitions=False).fit(sources, target)
    np.testing.assert_array_equal(off.score(target, hist, lengths, days), reference(sources, target, as_lists, 5))


def test_ties_broken_by_source_count():
    src = prep("A", "shop", {"u1": "ab", "u2": "ac", "u3": "c", "u4": "cd", "u5": "dd"})
    target = prep("T", "shop", {"t1": "abcdq"})
    model = MarkovBaseline(last=1).fit([src])
    j = {item: k for k, item in enumerate(target.domain.item_ids)}
    hist = np.array([[j["a"], -1]])
    ids, _ = model.recommend(target, hist, np.array([1]), np.array([0]), k=5)
    # a->b and a->c once each: c (3 source interactions) before b (1); then no transition from a:
    # d (3), a (2), q (0, no source has it)
    assert [target.domain.item_ids[i] for i in ids[0]] == ["c", "b", "d", "a", "q"]


def test_not_shared_ids_are_a_clear_error():
    plain = [prep("office", None, {"u": "ab"}), prep("lastfm", None, {"v": "bc"})]
    with pytest.raises(PrerecError, match="no source domain declares a shared item key space"):
        MarkovBaseline().fit(plain)
    model = MarkovBaseline().fit([prep("A", "shop", {"u": "ab"})])
    other = prep("T", "elsewhere", {"t": "ab"})
    with pytest.raises(PrerecError, match=r"no source declares target 'T'.s key space"):
        model.score(other, np.array([[0]]), np.array([1]), np.array([0]))
    with pytest.raises(PrerecError, match="last=0"):
        MarkovBaseline(last=0)


def test_benchmark_marks_markov_na_when_a_target_shares_no_ids(case, tmp_path):
    """A fold whose sources declare a key space but whose target declares none (B2: Online Retail
    UK beside Amazon and Last.fm) has no shared ids: n/a with the reason, not an error mid-run."""
    from prerec.evaluation.benchmark import Benchmark
    from prerec.evaluation.benchmark_config import BenchmarkConfig

    sources, target = case
    bench = Benchmark(BenchmarkConfig(name="t", domains=[], targets=[]), tmp_path)
    assert bench.applicable("markov", sources, [target])
    undeclared = prep("U", None, {"u1": "abc", "u2": "bcd"})
    assert not bench.applicable("markov", sources, [target, undeclared])
    assert "'U' declares no shared item key space" in bench.not_applicable["markov"]
    assert bench.applicable("popularity", sources, [undeclared])
