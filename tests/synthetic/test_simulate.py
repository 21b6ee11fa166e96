"""The synthetic world: canonical files, ground truth, oracle scores against a slow reference,
the embeddings input, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prerec.cli import main
from prerec.data import load_domains
from prerec.data.instances import make_instances
from prerec.errors import PrerecError
from prerec.simulate import DAY0, SimConfig, generate, load_truth, oracle_scores, simulate
from prerec.text import get_encoder

SMALL = dict(n_domains=3, n_users=120, n_items=300, n_days=30, seed=7)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "w"
    simulate(out, SimConfig(**SMALL, domain_bias=1.0))
    return out


def test_canonical_files_and_truth(world):
    truth = load_truth(world)
    meta = json.loads((world / "world.json").read_text())
    assert meta["domains"] == ["d0", "d1", "d2"] and meta["config"]["domain_bias"] == 1.0
    doms = load_domains([f"{n}=canonical:{world / n}" for n in truth.domain_names])
    for k, d in enumerate(doms):
        assert d.has_time and d.n_users <= SMALL["n_users"]
        universe = np.array([int(i[1:]) for i in d.item_ids])
        assert np.isin(universe, truth.catalogs[k]).all()  # only the domain's catalog is used
        words = [t.split() for t in d.texts.to_numpy()]
        assert all(len(w) == 5 for w in words)
        assert truth.trends[k].shape == (SMALL["n_days"], len(truth.catalogs[k]))
        days = d.sequences.days - DAY0
        assert days.min() >= 0 and days.max() < SMALL["n_days"]
    assert truth.domain_bias.shape == (3, truth.config.latent_dim)
    np.testing.assert_allclose(truth.transition @ truth.transition.T, np.eye(truth.config.latent_dim), atol=1e-8)


def test_same_seed_same_world_and_domains_independent_of_k():
    _, a = generate(SimConfig(**SMALL))
    _, b = generate(SimConfig(**SMALL))
    _, c = generate(SimConfig(**{**SMALL, "n_domains": 2}))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    pd.testing.assert_frame_equal(a[0], c[0])  # a domain's log does not depend on how many others there are


def test_planted_effects_have_their_magnitudes():
    truth, _ = generate(SimConfig(n_domains=40, n_users=1, n_items=2000, n_days=200, domain_bias=2.0,
                                  popularity_persistence=0.9))
    norms = np.linalg.norm(truth.domain_bias, axis=1)
    assert 1.6 < norms.mean() < 2.4  # |D_k| ~ domain_bias
    b = truth.trends[0]
    assert 0.85 < b.std() < 1.15  # stationary N(0, 1)
    lag1 = np.corrcoef(b[1:].ravel(), b[:-1].ravel())[0, 1]
    assert abs(lag1 - 0.9) < 0.03  # phi


def _slow_oracle(truth, k, item_ids, hist, n, day):
    """l(j) for one history, written out item by item."""
    cfg = truth.config
    q = {i: truth.item_latents[int(i[1:])] for i in item_ids}
    s = np.zeros(cfg.latent_dim)
    for j in hist[:n]:
        s = cfg.memory * s + (1 - cfg.memory) * truth.transition @ q[item_ids[j]]
    out = []
    for i in item_ids:
        pos = list(truth.catalogs[k]).index(int(i[1:]))
        out.append(cfg.sharpness * (s + truth.domain_bias[k]) @ q[i]
                   + cfg.popularity_effect * truth.trends[k][day - DAY0, pos])
    return np.array(out)


def test_oracle_matches_slow_reference_and_explains_the_log(world):
    truth = load_truth(world)
    d = load_domains([f"d1=canonical:{world / 'd1'}"])[0]
    inst = make_instances(d.sequences)
    hist, lengths = inst.histories(64)
    s = oracle_scores(truth, "d1", d.item_ids, hist, lengths, inst.days)
    for r in (0, 5, len(inst) - 1):
        np.testing.assert_allclose(s[r], _slow_oracle(truth, 1, d.item_ids, hist[r], lengths[r], inst.days[r]),
                                   rtol=1e-4, atol=1e-4)
    # the log was drawn from softmax(l): the oracle ranks the next item far above chance, and
    # dropping the planted D_k (strong here) makes it worse
    def mean_rank(scores):
        return float((1 + (scores > scores[np.arange(len(scores)), inst.targets][:, None]).sum(1)).mean())

    no_d = oracle_scores(truth, "d1", d.item_ids, hist, lengths, inst.days, with_bias=False)
    assert mean_rank(s) < 0.15 * d.n_items and mean_rank(s) < mean_rank(no_d)


def test_embeddings_input_encoder(world, tmp_path):
    truth = load_truth(world)
    enc = get_encoder(f"table:{world / 'embeddings.safetensors'}")
    texts = truth.texts(np.arange(5))
    np.testing.assert_allclose(enc.encode(texts), truth.embeddings[:5], atol=1e-6)  # x is already unit length
    with pytest.raises(PrerecError, match="no embedding for the text"):
        enc.encode(["not an item"])
    with pytest.raises(PrerecError, match="no such file"):
        get_encoder(f"table:{tmp_path / 'nope.safetensors'}")
    other = tmp_path / "w2"
    simulate(other, SimConfig(**{**SMALL, "seed": 8}))
    assert get_encoder(f"table:{other / 'embeddings.safetensors'}").identity != enc.identity


def test_cli(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "w"), "--n-domains", "2", "--n-users", "20",
                 "--n-items", "50", "--domain-bias", "0.0"]) == 0
    assert json.loads((tmp_path / "w" / "world.json").read_text())["config"]["domain_bias"] == 0.0
    assert "table:" in capsys.readouterr().out
    assert main(["simulate", "--out", str(tmp_path / "w")]) == 2  # not empty
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path / "x"), "--catalog-fraction", "0"]) == 2
    assert "catalog_fraction" in capsys.readouterr().err


def test_oracle_parts(world):
    """Dropping D_k or the trend removes exactly that term of l."""
    truth = load_truth(world)
    d = load_domains([f"d0=canonical:{world / 'd0'}"])[0]
    inst = make_instances(d.sequences).take(np.arange(20))
    hist, lengths = inst.histories(64)
    args = (truth, "d0", d.item_ids, hist, lengths, inst.days)
    full, no_d = oracle_scores(*args), oracle_scores(*args, with_bias=False)
    process = oracle_scores(*args, with_bias=False, with_popularity=False)
    universe = np.array([int(i[1:]) for i in d.item_ids])
    tilt = truth.config.sharpness * truth.item_latents[universe] @ truth.domain_bias[0]
    np.testing.assert_allclose(full - no_d, np.broadcast_to(tilt, full.shape), rtol=1e-4, atol=1e-4)
    pos = np.searchsorted(truth.catalogs[0], universe)
    trend = truth.config.popularity_effect * truth.trends[0][inst.days - DAY0][:, pos]
    np.testing.assert_allclose(no_d - process, trend, rtol=1e-4, atol=1e-4)
