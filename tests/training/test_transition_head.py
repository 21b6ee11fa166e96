"""The transition head: counts by shared identity, beta fitted held out, saved with the run, one score."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from training_fixtures import *  # noqa: F403  (fixtures: markets)
from training_fixtures import tiny_config

from prerec.baselines.markov import MarkovBaseline
from prerec.data.instances import make_instances
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.training.pretrain import pretrain
from prerec.training.transitions import fit_beta
from prerec.transitions import TRANSITIONS_FILE, count_pairs, history_entries


@pytest.fixture(scope="module")
def run(markets, tmp_path_factory):
    out = tmp_path_factory.mktemp("transitions") / "run"
    cfg = tiny_config(epochs=2, lr=3e-3, item_identity=True, lambda_identity=1.0, select_on=["Spain"])
    pretrain(markets[:3], cfg, out)
    return load_run(out)


def slow_entries(pairs: list[tuple[int, int, float]], histories, lengths, last):
    """T_h(j) by the definition: a loop over rows, lags and pairs."""
    out = {}
    for r, (h, n) in enumerate(zip(histories, lengths)):
        for lag in range(min(last, n)):
            item = h[n - 1 - lag]
            for a, b, c in pairs:
                if a == item:
                    out[(r, b)] = out.get((r, b), 0.0) + c * 2.0 ** -lag
    return out


def test_history_entries_match_the_definition():
    rng = np.random.default_rng(0)
    n = 12
    a, b = rng.integers(0, n, 60), rng.integers(0, n, 60)
    table = count_pairs(a, b, n)
    pairs = [(int(x // n), int(x % n), float(c)) for x, c in
             zip(*np.unique(a * n + b, return_counts=True))]
    lengths = rng.integers(0, 8, 9)
    histories = np.full((9, 8), -1)
    for r, m in enumerate(lengths):
        histories[r, :m] = rng.integers(0, n, m)
    rows, items, t = history_entries(table, histories, lengths, last=3)
    got = {(int(r), int(j)): float(v) for r, j, v in zip(rows, items, t)}
    assert got == pytest.approx(slow_entries(pairs, histories, lengths, 3))
    assert len(got) == len(set(got))  # one entry per (row, item)


def test_fit_beta_recovers_a_planted_weight_and_refuses_noise():
    g = torch.Generator().manual_seed(0)
    n, m = 3000, 40
    s = torch.randn(n, m, generator=g, dtype=torch.float64)
    f = torch.log1p(torch.poisson(torch.full((n, m), 0.5, dtype=torch.float64), generator=g))
    y = torch.multinomial(torch.softmax(1.5 * s + 3.0 * f, 1), 1, generator=g).squeeze(1)
    fit = fit_beta([(s, f, y)])
    assert fit["beta"] == pytest.approx(2.0, rel=0.15) and fit["alpha"] == pytest.approx(1.5, rel=0.15)
    assert fit["nll"] < fit["nll_without_head"]
    y0 = torch.multinomial(torch.softmax(1.5 * s, 1), 1, generator=g).squeeze(1)  # f says nothing
    assert fit_beta([(s, f, y0)])["beta"] < 0.15


def test_head_fitted_held_out_saved_and_loaded(run):
    head = run.transitions
    assert head is not None and (run.path / TRANSITIONS_FILE).exists()
    assert head.fitted["on"] == ["Spain"] and head.fitted["split"] == "valid"
    assert head.n_identity == len(run.identity) and head.beta >= 0
    assert head.fitted["nll"] <= head.fitted["nll_without_head"] + 1e-9


def test_score_adds_beta_log1p_of_the_source_markov_counts(run, markets):
    target = run.prepare(markets[3])
    inst = make_instances(target.split.test)
    hist, lengths = inst.histories(run.model.cfg.max_history)
    rec = PreRecRecommender(run)
    rec.transitions = replace(run.transitions, beta=0.7)  # any beta: the term is checked, not the fit
    with_head = rec.score(target, hist, lengths, inst.days)
    without = PreRecRecommender(run, transitions=False).score(target, hist, lengths, inst.days)
    trained = [run.prepare(d) for d in markets[:2]]  # the run's trained sources (Spain held out)
    T = MarkovBaseline(target_transitions=False).fit(trained).transition_scores(target, hist, lengths)
    assert T.sum() > 0
    np.testing.assert_allclose(with_head - without, 0.7 * np.log1p(T), atol=1e-4)


def test_head_switched_off(markets, tmp_path):
    cfg = tiny_config(epochs=1, item_identity=True, transition_head=False, select_on=["Spain"])
    run = pretrain(markets[:3], cfg, tmp_path / "r")
    assert run.transitions is None and not (tmp_path / "r" / TRANSITIONS_FILE).exists()
    assert load_run(tmp_path / "r").transitions is None


def test_finetuning_adds_the_targets_transitions_and_refits_beta(run, markets):
    from prerec.config import FinetuneConfig
    from prerec.training.finetune import finetune_run

    target = run.prepare(markets[3])
    ft = finetune_run(run, target, 200, FinetuneConfig(epochs=1, progress=False))
    head = ft.transitions
    assert head is not None and head.n_identity == len(ft.identity) >= len(run.identity)
    assert head.fitted["inference"] == "in-domain" and head.fitted["on"] == [target.name]
    # the refit beta is kept only if it ranks the target's validation users better
    kept_pretrained = head.fitted.get("kept") == "pre-trained beta"
    assert (head.beta == run.transitions.beta) == kept_pretrained
    assert (head.fitted["valid_metric"] > head.fitted["valid_metric_pretrained_beta"]) != kept_pretrained
    inst = make_instances(target.split.train).first(200)
    rows = ft.identity_rows(target.domain)
    prev, nxt = rows[inst.sequences.items[inst.flat - 1]], rows[inst.targets]
    old = dict(zip(run.transitions.codes // run.transitions.n_identity * head.n_identity
                   + run.transitions.codes % run.transitions.n_identity, run.transitions.counts))
    new = dict(zip(head.codes, head.counts))
    for a, b in zip(prev, nxt):  # every fine-tuning pair is counted on top of the sources'
        code = a * head.n_identity + b
        assert new[code] >= old.get(code, 0) + 1
    assert sum(new.values()) == pytest.approx(sum(old.values()) + len(inst))


def test_a_finetuned_run_with_identity_and_head_saves_and_loads(run, markets, tmp_path):
    """save_finetuned_run keeps the grown identity vocabulary, its support and the head (counts
    and beta): the loaded run scores the target in-domain exactly as the in-memory one."""
    from prerec.config import FinetuneConfig
    from prerec.intervention import PreRecRecommender
    from prerec.run import load_run
    from prerec.training.finetune import finetune_run, save_finetuned_run

    target = run.prepare(markets[3])
    ft = finetune_run(run, target, 200, FinetuneConfig(epochs=1, progress=False))
    loaded = load_run(save_finetuned_run(ft, tmp_path / "ft", run.path))
    assert loaded.transitions.beta == ft.transitions.beta
    np.testing.assert_array_equal(loaded.transitions.counts, ft.transitions.counts)
    np.testing.assert_array_equal(loaded.identity.support, ft.identity.support)
    inst = make_instances(target.split.test)
    hist, lengths = inst.histories(run.model.cfg.max_history)
    want = PreRecRecommender(ft, "in-domain").score(target, hist[:20], lengths[:20], inst.days[:20])
    got = PreRecRecommender(loaded, "auto").score(loaded.prepare(target.domain), hist[:20], lengths[:20],
                                                  inst.days[:20])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("retrieval", ["exact", "flat"])
def test_service_serves_the_same_score(run, markets, retrieval):
    """Service.recommend with the head equals PreRecRecommender(run).score, item for item."""
    from prerec.data.domain import SECONDS_PER_DAY
    from prerec.serving import Service

    target = run.prepare(markets[3])
    inst = make_instances(target.split.test)
    sel = np.arange(min(len(inst), 12))
    hist, lengths = inst.histories(run.model.cfg.max_history)
    hist, lengths = hist[sel], lengths[sel]
    day = int(inst.days[sel].max())
    head_beta = load_run(run.path).transitions.beta
    assert head_beta > 0
    rec = PreRecRecommender(load_run(run.path))
    scores = rec.score(target, hist, lengths, np.full(len(sel), day))
    ids = target.domain.item_ids
    histories = [[str(ids[j]) for j in h[:n]] for h, n in zip(hist, lengths)]
    service = Service.load(run.path, retrieval=retrieval, clock=lambda: day * SECONDS_PER_DAY + 60)
    try:
        service.attach(markets[3])
        out = service.recommend(markets[3].name, histories, k=10)
    finally:
        service.close()
    for r in range(len(sel)):
        np.testing.assert_allclose(out.scores[r], np.sort(scores[r])[::-1][:10], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out.scores[r], scores[r, out.indices[r]], rtol=1e-4, atol=1e-4)


def test_finetuning_a_run_without_identity_gives_target_items_identity(markets, tmp_path):
    """Sources that share no ids (B2): fine-tuning still learns the target's items as an ID model
    would, from identity rows of their own (off: target_identity = false)."""
    from prerec.config import FinetuneConfig
    from prerec.training.finetune import finetune_run

    run = pretrain(markets[:2], tiny_config(epochs=1), tmp_path / "text")
    assert run.identity is None and run.model.identity is None
    target = run.prepare(markets[3])
    ft = finetune_run(run, target, 300, FinetuneConfig(epochs=2, progress=False))
    rows = ft.identity_rows(target.domain)
    assert ft.model.identity is not None and len(ft.identity) == target.n_items
    assert sorted(rows.tolist()) == list(range(target.n_items))  # each target item, its own row
    assert ft.identity.support.sum() == 300  # the fine-tuning instances' targets
    assert float(ft.model.identity.detach().abs().sum()) > 0 or ft.epoch == 0  # learned (unless epoch 0 kept)
    # and a transition head of the target's own fine-tuning pairs, each counted once, beta refitted
    head = ft.transitions
    assert head is not None and head.n_identity == target.n_items
    inst = make_instances(target.split.train).first(300)
    pairs = rows[inst.sequences.items[inst.flat - 1]] * head.n_identity + rows[inst.targets]
    codes, counts = np.unique(pairs, return_counts=True)
    np.testing.assert_array_equal(head.codes, codes)
    np.testing.assert_array_equal(head.counts, counts)
    assert head.fitted["on"] == [target.name] and head.fitted["inference"] == "in-domain"
    assert (head.beta > 0) == (head.fitted.get("kept") != "pre-trained beta")
    off = finetune_run(run, target, 300, FinetuneConfig(epochs=1, progress=False, target_identity=False))
    assert off.identity is None and off.model.identity is None and off.transitions is None


def test_finetuning_sets_its_own_negatives_and_identity_shrinkage(markets, tmp_path):
    from prerec.config import FinetuneConfig
    from prerec.training.finetune import finetune_run

    run = pretrain(markets[:2], tiny_config(epochs=1), tmp_path / "text")
    target = run.prepare(markets[3])
    ft = finetune_run(run, target, 300, FinetuneConfig(epochs=1, progress=False, n_negatives=7,
                                                       identity_shrinkage=0.5))
    assert ft.config.n_negatives == 7 and run.config.n_negatives != 7
    n = torch.as_tensor(ft.identity.support, dtype=torch.float32)
    torch.testing.assert_close(ft.model.identity_weight, n / (n + 0.5))  # w = n / (n + kappa)
    assert run.model.cfg.identity_shrinkage == 10.0  # the pre-trained run is untouched


def test_finetuning_a_run_without_identity_and_head_switched_off(markets, tmp_path):
    from prerec.config import FinetuneConfig
    from prerec.training.finetune import finetune_run

    run = pretrain(markets[:2], tiny_config(epochs=1, transition_head=False), tmp_path / "text")
    ft = finetune_run(run, run.prepare(markets[3]), 300, FinetuneConfig(epochs=1, progress=False))
    assert ft.model.identity is not None and ft.transitions is None
