"""One path for a score: every caller of a trained run gives the same scores and top-k.

The callers: ``PreRecRecommender.score`` and ``recommend`` (``prerec evaluate``, the benchmarks),
the validation scoring function (training), and ``Service.recommend`` with each retrieval
backend (exact, FAISS flat, FAISS HNSW). Checked in every inference mode on a trained run whose
D and offsets were made large enough to matter, with histories longer than the user tower's
limit and with raw-text entries.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prerec.data import load_domains
from prerec.data.domain import SECONDS_PER_DAY
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.serving import Service, Text
from prerec.training.pretrain import pretrain, score_function
from shared_data import first_users, shared
from training.training_fixtures import tiny_config

K = 10
LENGTHS = (3, 64, 65, 90)  # around and beyond the limit of 64


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A run pre-trained on two markets (Germany, France) saved to disk, and a third (Spain)."""
    torch.set_num_threads(1)
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    found = {d.name: d for d in load_domains([f"online-retail:{path}#Germany,France,Spain"])}
    sources = [first_users(found["Germany"], 60), first_users(found["France"], 60)]
    out = tmp_path_factory.mktemp("parity") / "run"
    run = pretrain(sources, tiny_config(epochs=1, max_instances_per_epoch=800, lr=2e-3), out)
    with torch.no_grad():  # D and e large enough that a mode mixed up would show
        run.model.domain.normal_(0, 0.5)
        run.model.offsets.normal_(0, 0.5)
    from prerec.checkpoint import model_tensors, save_tensors_atomic

    save_tensors_atomic(out / "model.safetensors", model_tensors(run.model), {"epoch": 1, "format": "prerec-run/1"})
    return load_run(out), out, {"Germany": sources[0], "Spain": first_users(found["Spain"], 40)}


def histories(prepared, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hist = np.full((len(LENGTHS), max(LENGTHS)), -1, dtype=np.int64)
    for r, n in enumerate(LENGTHS):
        hist[r, :n] = rng.integers(0, prepared.n_items, n)
    return hist, np.array(LENGTHS)


CASES = [("zero-shot", "Spain"), ("zero-shot-mc", "Spain"), ("in-domain", "Germany")]


@pytest.mark.parametrize(("inference", "domain"), CASES)
def test_every_path_gives_the_same_scores_and_top_k(world, inference, domain):
    run, run_dir, domains = world
    prepared = run.prepare(domains[domain])
    hist, lengths = histories(prepared)
    today = int(prepared.domain.sequences.days.max()) + 1
    days = np.full(len(hist), today)
    rec = PreRecRecommender(run, inference, batch_size=3)
    scores = rec.score(prepared, hist, lengths, days)
    ids, top = rec.recommend(prepared, hist, lengths, days, k=K)
    # training validation's scoring function
    valid = score_function(run, 64)(inference, prepared, hist, lengths, days).numpy()
    np.testing.assert_allclose(valid, scores, rtol=1e-5, atol=1e-5)
    # only the last 64 items count: a longer history equals its tail
    tail = np.full_like(hist, -1)
    for r, n in enumerate(lengths):
        tail[r, : min(n, 64)] = hist[r, max(n - 64, 0):n]
    np.testing.assert_allclose(rec.score(prepared, tail, np.minimum(lengths, 64), days), scores, rtol=1e-5, atol=1e-5)
    item_ids = prepared.domain.item_ids
    requests = [[str(item_ids[j]) for j in hist[r, :n]] for r, n in enumerate(lengths)]
    for retrieval in ("exact", "flat", "hnsw"):
        service = Service.load(run_dir, inference, retrieval=retrieval, clock=lambda: today * SECONDS_PER_DAY + 60)
        service.attach(domains[domain])
        got = service.recommend(domain, requests, k=K)
        for r in range(len(hist)):
            np.testing.assert_allclose(got.scores[r], top[r], rtol=1e-4, atol=1e-4, err_msg=retrieval)
            np.testing.assert_allclose(scores[r, got.indices[r]], got.scores[r], rtol=1e-4, atol=1e-4)
            assert set(got.indices[r]) == set(ids[r]) or np.allclose(got.scores[r], top[r], atol=1e-5), retrieval


@pytest.mark.parametrize(("inference", "domain"), CASES)
def test_raw_text_entries_are_scored_as_their_text(world, inference, domain):
    """A raw-text entry is W x of its text: in the zero-shot modes the same as the catalog item
    with that text; in-domain it lacks the item's offset e_j, so it is checked against the scorer."""
    run, run_dir, domains = world
    prepared = run.prepare(domains[domain])
    hist, lengths = histories(prepared, seed=1)
    today = int(prepared.domain.sequences.days.max()) + 1
    service = Service.load(run_dir, inference, clock=lambda: today * SECONDS_PER_DAY + 60)
    service.attach(domains[domain])
    item_ids, texts = prepared.domain.item_ids, prepared.domain.texts
    r, n = 1, int(lengths[1])  # the text replaces the history's last entry
    as_ids = [str(item_ids[j]) for j in hist[r, :n]]
    with_text = [*as_ids[:-1], Text(str(texts.iloc[hist[r, n - 1]]))]
    got = service.recommend(domain, [with_text], k=K)
    rec = PreRecRecommender(run, inference)
    V = rec.item_tensor(prepared)
    x = torch.from_numpy(prepared.item_emb[hist[r, n - 1]][None])
    table = torch.cat([V, rec.scorer.item_vectors(x)])  # the text's own vector as row n_items
    row = hist[r:r + 1, :n].copy()
    row[0, -1] = prepared.n_items
    U = rec.scorer.user_vectors(table, row, np.array([n]), domain)
    want = (U @ V.T)[0].numpy() + rec.day_popularity(prepared, today).numpy()
    np.testing.assert_allclose(got.scores[0], np.sort(want)[::-1][:K], rtol=1e-4, atol=1e-4)
    if inference != "in-domain":
        ref = service.recommend(domain, [as_ids], k=K)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-5)


def test_unique_rows_matches_numpy_unique_axis0():
    """scoring.unique_rows is np.unique(axis=0, return_inverse=True), only faster."""
    from prerec.scoring import unique_rows

    rng = np.random.default_rng(3)
    for shape, dtype in (((500, 4), np.float32), ((300, 3), np.float64), ((200, 2), np.int64), ((1, 4), np.float32)):
        a = rng.integers(-3, 4, size=shape).astype(dtype) / (2 if dtype != np.int64 else 1)
        a = np.vstack([a, a[: len(a) // 2]])  # plenty of repeated rows
        want_u, want_i = np.unique(a, axis=0, return_inverse=True)
        got_u, got_i = unique_rows(a)
        assert got_u.dtype == a.dtype and np.array_equal(got_u, want_u)
        assert np.array_equal(got_i, want_i.reshape(-1))
        assert np.array_equal(got_u[got_i], a)
    u, i = unique_rows(np.zeros((0, 4), np.float32))
    assert u.shape == (0, 4) and i.shape == (0,)
