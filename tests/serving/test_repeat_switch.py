"""--repeat-mixture on / off / run: any run ranks with or without the mixture, alike in evaluate,
recommend and the service."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prerec.cli import main
from prerec.data import load_domains
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.serving import Service


@pytest.fixture(scope="module")
def target_spec(target_dir):
    return f"shop=canonical:{target_dir}"


def test_evaluate_switches_the_mixture(tiny_run, target_spec, tmp_path):
    got = {}
    for choice in ("run", "off", "on"):
        out = tmp_path / f"{choice}.json"
        assert main(["evaluate", "--run", str(tiny_run), "--target", target_spec, "--repeat-mixture", choice,
                     "--json", str(out), "--split", "valid"]) == 0
        got[choice] = json.loads(out.read_text())["shop"]["prerec"]
    assert got["run"] == got["off"]  # the tiny run was trained without it
    assert got["on"] != got["off"]
    with pytest.raises(SystemExit) as exc:  # argparse: exit 2 with the choices named
        main(["evaluate", "--run", str(tiny_run), "--target", target_spec, "--repeat-mixture", "maybe",
              "--json", str(tmp_path / "x.json")])
    assert exc.value.code == 2


def test_recommend_and_service_rank_by_the_mixture_when_switched_on(tiny_run, target_spec, capsys):
    domain = load_domains([target_spec])[0]
    history = [str(domain.item_ids[0]), str(domain.item_ids[1]), str(domain.item_ids[0])]
    day = int(domain.sequences.days.max()) + 1
    run = load_run(tiny_run)
    run.model.cfg.repeat_mixture = True
    h = np.array([[domain.item_index[i] for i in history]])
    top, scores = PreRecRecommender(run, "zero-shot").recommend(run.prepare(domain), h, np.array([3]),
                                                                np.array([day]), k=5)
    capsys.readouterr()
    assert main(["recommend", "--run", str(tiny_run), "--target", target_spec, "--history", ",".join(history),
                 "-k", "5", "--json", "--repeat-mixture", "on"]) == 0
    got = json.loads(capsys.readouterr().out)["items"]
    assert [g["item_id"] for g in got] == [str(domain.item_ids[j]) for j in top[0]]
    np.testing.assert_allclose([g["score"] for g in got], scores[0], rtol=1e-5, atol=1e-5)
    service = Service.load(tiny_run, "zero-shot", repeat_mixture="on", clock=lambda: day * 86400 + 60)
    assert service.model.repeat_mixture
    service.attach(domain)
    recs = service.recommend("shop", [history], k=5)
    assert list(recs.indices[0]) == list(top[0])
    np.testing.assert_allclose(recs.scores[0], scores[0], rtol=1e-4, atol=1e-4)


def test_a_finetuned_mixture_run_keeps_the_mixture(tiny_run, target_spec, tmp_path):
    """Fine-tuning a run that ranks by the mixture validates with it, and the saved run keeps it."""
    import torch

    from prerec.config import FinetuneConfig
    from prerec.data.instances import make_instances
    from prerec.training.finetune import finetune_run, save_finetuned_run

    run = load_run(tiny_run)
    run.model.cfg.repeat_mixture = True
    target = run.prepare(load_domains([target_spec])[0])
    torch.set_num_threads(1)
    new = finetune_run(run, target, None, FinetuneConfig(epochs=1, lr=0.01))
    assert new.model.cfg.repeat_mixture
    loaded = load_run(save_finetuned_run(new, tmp_path / "ft", tiny_run, target_spec))
    assert loaded.model.cfg.repeat_mixture
    inst = make_instances(target.split.test)
    inst = inst.take(np.arange(min(20, len(inst))))
    hist, lengths = inst.histories(20)
    got = PreRecRecommender(loaded, "in-domain").score(target, hist, lengths, inst.days)
    np.testing.assert_allclose(got, PreRecRecommender(new, "in-domain").score(target, hist, lengths, inst.days),
                               rtol=1e-5, atol=1e-5)
    loaded.model.cfg.repeat_mixture = False
    plain = PreRecRecommender(loaded, "in-domain").score(target, hist, lengths, inst.days)
    assert not np.allclose(got, plain)
