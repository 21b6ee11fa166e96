"""``sasrec-sources``: SASRec on the pooled sources by shared item id, applied zero-shot.

Identity is checked by item-id strings in slow loops: a target item is scored with the
embedding the sources learned for the same id, whatever its catalog index in the target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prerec.baselines.sasrec import SASRecConfig
from prerec.baselines.sasrec_sources import (
    SASRecSources,
    identity_sequences,
    split_holdout,
    to_identity_histories,
)
from prerec.data import make_instances
from prerec.data.domain import build_domain
from prerec.data.prepared import prepare_domain
from prerec.errors import PrerecError
from prerec.registry import MODELS, ModelContext

N_ITEMS, STEP = 30, 7


def prep(name: str, space: str | None, seqs: dict[str, list[str]]):
    rows = [(u, i, 1_300_000_000 + 86400 * t) for u, items in seqs.items() for t, i in enumerate(items)]
    d = build_domain(name, pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), None, source=name)
    d.id_space = space
    return prepare_domain(d, np.zeros((d.n_items, 1), dtype=np.float32))


def walks(rng, prefix: str, n_users: int, novel: bool = False) -> dict[str, list[str]]:
    """Users walking i -> i + 7 (mod 30) over items i00..i29; with ``novel``, an item no source
    has (i05x, i17x: they sort between shared ids, so catalog indices differ from the
    sources') is slipped in after the first item, and the walk goes on after it."""
    out = {}
    for u in range(n_users):
        j = int(rng.integers(N_ITEMS))
        seq = []
        for _ in range(int(rng.integers(4, 10))):
            seq.append(f"i{j:02d}")
            j = (j + STEP) % N_ITEMS
        if novel:
            seq.insert(1, "i05x" if u % 2 else "i17x")
        out[f"{prefix}{u}"] = seq
    return out


CFG = SASRecConfig(hidden_size=32, inner_size=64, epochs=30, patience=5, batch_size=128, lr=5e-3, dropout=0.1,
                   eval_instances=200, progress=False, device="cpu")


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    sources = [prep("A", "shop", walks(rng, "a", 160)), prep("B", "shop", walks(rng, "b", 100)),
               prep("F", None, {f"f{k}": ["i00", "i29", "i01"] for k in range(10)})]  # undeclared: dropped
    target = prep("T", "shop", walks(rng, "t", 60, novel=True))
    return SASRecSources(CFG).fit(sources), sources, target


def test_the_target_is_scored_by_the_sources_embedding_of_the_same_id(trained):
    model, _, target = trained
    ids = model.identity.item_ids
    inst = make_instances(target.domain.sequences)
    hist, lengths = inst.histories()
    scores = model.score(target, hist, lengths, inst.days)
    emb = model.net.item_emb.weight.detach()
    model.net.eval()
    for r in range(0, len(inst), 7):
        names = [target.domain.item_ids[i] for i in hist[r, : lengths[r]]]
        known = [next(v for v in range(len(ids)) if ids[v] == x) for x in names if x in set(ids)]
        seq = torch.tensor([[v + 1 for v in known] or [0]])
        with torch.no_grad():
            user = model.net.user(seq, torch.tensor([max(len(known), 1)]))[0]
        for j, x in enumerate(target.domain.item_ids):
            if x in set(ids):
                v = next(v for v in range(len(ids)) if ids[v] == x)
                assert scores[r, j] == pytest.approx(float(user @ emb[v + 1]), abs=1e-4)
        novel = [j for j, x in enumerate(target.domain.item_ids) if x not in set(ids)]
        assert novel and np.all(scores[r, novel] < np.delete(scores[r], novel).min())


def test_a_pattern_learned_on_the_sources_carries_over_zero_shot(trained):
    model, _, target = trained
    inst = make_instances(target.domain.sequences)
    ids = target.domain.item_ids
    inst = inst.take(np.flatnonzero([not ids[t].endswith("x") for t in inst.targets]))
    hist, lengths = inst.histories()
    top = model.recommend(target, hist, lengths, inst.days, k=1)[0][:, 0]
    assert (top == inst.targets).mean() > 0.9, model.history[-3:]
    assert model.stats["items_without_identity"] == 30  # source F's 10 users x 3 items
    assert model.stats["held_out_users"] == 13  # 5% of the 260 declared users


def test_identity_sequences_and_histories_match_loops():
    rng = np.random.default_rng(0)
    d = prep("S", "shop", {f"u{k}": [f"x{v}" for v in rng.integers(0, 9, rng.integers(1, 8))] for k in range(40)})
    identity_of = np.where(rng.random(d.n_items) < 0.6, rng.permutation(d.n_items) + 100, -1)
    seqs, dropped = identity_sequences(d.domain.sequences, identity_of)
    expected = [[identity_of[i] for i in d.domain.sequences.sequence(k)[0] if identity_of[i] >= 0]
                for k in range(len(seqs))]
    assert [seqs.sequence(k)[0].tolist() for k in range(len(seqs))] == expected
    assert dropped == int((identity_of[d.domain.sequences.items] < 0).sum())
    inst = make_instances(d.domain.sequences)
    hist, lengths = inst.histories()
    padded = np.concatenate([hist, np.full((len(hist), 3), -1)], axis=1)
    out, n = to_identity_histories(padded, lengths, identity_of)
    for r in range(len(hist)):
        want = [identity_of[i] for i in hist[r, : lengths[r]] if identity_of[i] >= 0]
        assert n[r] == len(want) and out[r, : n[r]].tolist() == want and (out[r, n[r]:] == -1).all()


def test_holdout_is_a_seeded_share_of_users():
    d = prep("S", "shop", {f"u{k}": ["a", "b"] if k % 4 else ["a"] for k in range(100)})
    seqs = d.domain.sequences
    train, held = split_holdout(seqs, 0.05, np.random.default_rng(1))
    again = split_holdout(seqs, 0.05, np.random.default_rng(1))[1]
    assert len(held) == 4 and (held.lengths >= 2).all() and list(held.users) == list(again.users)
    assert sorted([*train.users, *held.users]) == sorted(seqs.users)


def test_undeclared_ids_are_a_clear_error(trained):
    model, sources, _ = trained
    plain = [prep("office", None, {"u": ["a", "b"]}), prep("lastfm", None, {"v": ["b", "c"]})]
    with pytest.raises(PrerecError, match="no source domain declares a shared item key space"):
        SASRecSources(CFG).fit(plain)
    for space, message in [(None, "declares no shared item key space"), ("elsewhere", "no source declares")]:
        other = prep(f"T-{space}", space, {"t": ["i00", "i07"]})
        with pytest.raises(PrerecError, match=message):
            model.score(other, np.array([[0]]), np.array([1]), np.array([0]))
    with pytest.raises(PrerecError, match="also a source"):
        model.match(sources[0])


def test_registry_fits_once_per_fold(monkeypatch):
    fits = []
    monkeypatch.setattr(SASRecSources, "fit", lambda self, sources, target=None: fits.append(1) or self)
    monkeypatch.setattr(SASRecSources, "match", lambda self, target: self)
    factory = MODELS["sasrec-sources"].build(ModelContext(sources=[]))
    assert factory("T1") is factory("T2") and len(fits) == 1
    assert MODELS["sasrec-sources"].needs_sources and not MODELS["sasrec-sources"].needs_run
