"""``prerec finetune`` writes a complete run directory, and the fine-tuned target is used in-domain
by ``evaluate``, ``recommend`` and the service (mode ``auto``), while new domains stay zero-shot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from serving_helpers import DAY0, tiny_domain

from prerec.cli import main
from prerec.config import FinetuneConfig
from prerec.data import load_domains
from prerec.data.domain import SECONDS_PER_DAY
from prerec.data.instances import make_instances
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.training.finetune import finetune_run, save_finetuned_run


@pytest.fixture(scope="module")
def target_spec(target_dir):
    return f"shop=canonical:{target_dir}"


@pytest.fixture(scope="module")
def finetuned_dir(tiny_run, target_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "run-ft"
    torch.set_num_threads(1)
    assert main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out", str(out),
                 "--set", "epochs=3", "--set", "lr=0.01"]) == 0
    return out


@pytest.fixture(scope="module")
def perturbed_dir(tiny_run, target_spec, tmp_path_factory):
    """A fine-tuned run whose target D and offsets are far from 0, saved: in-domain != zero-shot."""
    run = load_run(tiny_run)
    new = finetune_run(run, run.prepare(load_domains([target_spec])[0]), None, FinetuneConfig(epochs=1))
    with torch.no_grad():
        new.model.domain[-1].normal_(0, 0.5)
        new.model.offsets.normal_(0, 0.5)
    return save_finetuned_run(new, tmp_path_factory.mktemp("ftp") / "run", tiny_run, target_spec)


def _requests(prepared, n=10):
    inst = make_instances(prepared.split.test)
    inst = inst.take(np.arange(min(n, len(inst))))
    hist, lengths = inst.histories(20)
    return hist, lengths, inst.days


def test_saved_run_scores_as_the_in_memory_one(tiny_run, target_spec, tmp_path):
    run = load_run(tiny_run)
    target = run.prepare(load_domains([target_spec])[0])
    new = finetune_run(run, target, None, FinetuneConfig(epochs=2, lr=0.01))
    with torch.no_grad():  # the fresh D and offsets matter in the comparison
        new.model.domain[-1].normal_(0, 0.5)
        new.model.offsets.normal_(0, 0.5)
    out = save_finetuned_run(new, tmp_path / "ft", tiny_run, target_spec)
    loaded = load_run(out)
    assert [s.role for s in loaded.sources][-1] == "finetune" and loaded.source("shop") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft"]  # no temporary folder left behind
    hist, lengths, days = _requests(target)
    want = PreRecRecommender(new, "in-domain").score(target, hist, lengths, days)
    got = PreRecRecommender(loaded, "in-domain").score(loaded.prepare(target.domain), hist, lengths, days)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    zero = PreRecRecommender(loaded, "zero-shot").score(target, hist, lengths, days)
    assert not np.allclose(got, zero, atol=1e-3)  # in-domain really uses the target's D and offsets
    with pytest.raises(PrerecError, match="already exists"):
        save_finetuned_run(new, out)


def test_auto_mode_is_in_domain_for_learned_domains_and_zero_shot_for_new_ones(perturbed_dir, target_spec):
    run = load_run(perturbed_dir)
    target = run.prepare(load_domains([target_spec])[0])
    other = run.prepare(tiny_domain("elsewhere", seed=7))
    for prepared, mode in ((target, "in-domain"), (other, "zero-shot")):
        hist, lengths, days = _requests(prepared)
        auto = PreRecRecommender(run, "auto").score(prepared, hist, lengths, days)
        np.testing.assert_allclose(auto, PreRecRecommender(run, mode).score(prepared, hist, lengths, days),
                                   rtol=1e-6, atol=1e-6)


def test_cli_writes_a_run_with_its_selection(finetuned_dir, tiny_run, target_spec, capsys):
    run = load_run(finetuned_dir)
    assert run.source_names == load_run(tiny_run).source_names  # the target is not a training source
    assert run.sources[-1].name == "shop" and run.sources[-1].role == "finetune"
    assert run.selection["chosen_on"] == "target validation users"
    cfg = json.loads((finetuned_dir / "config.json").read_text())
    assert cfg["identity"]["finetuned_from"] == str(tiny_run) and cfg["identity"]["target"] == target_spec
    assert main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out", str(finetuned_dir)]) == 2
    assert "already a run directory" in capsys.readouterr().err
    (finetuned_dir.parent / "empty").mkdir()  # refused before any training, not when saving
    assert main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out",
                 str(finetuned_dir.parent / "empty")]) == 2
    assert "already exists (use --force" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--set", "momentum=0.9"], "unknown key(s) momentum"),
    (["--set", "epochs"], "expected KEY=VALUE"),
    (["--instances", "0"], "--instances: expected a positive number"),
    (["--set", "variants=[{lr=1.0, beta=2}]"], r"variants[0]: unknown key(s) beta"),
])
def test_cli_bad_settings_exit_2(tiny_run, target_spec, tmp_path, capsys, args, message):
    code = main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out", str(tmp_path / "x"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_evaluate_and_recommend_use_the_finetuned_target(finetuned_dir, target_spec, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--run", str(finetuned_dir), "--target", target_spec, "--mode", "in-domain",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["shop"]["prerec"]["instances"] > 0  # the row is "prerec" in every mode
    run = load_run(finetuned_dir)
    domain = load_domains([target_spec])[0]
    history = list(domain.item_ids[:3])
    capsys.readouterr()
    assert main(["recommend", "--run", str(finetuned_dir), "--target", target_spec, "--history", ",".join(history),
                 "-k", "5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["items"]
    target = run.prepare(domain)
    h = np.array([[domain.item_index[i] for i in history]])
    day = int(domain.sequences.days.max()) + 1
    top, scores = PreRecRecommender(run, "in-domain").recommend(target, h, np.array([3]), np.array([day]), k=5)
    assert [g["item_id"] for g in got] == [str(domain.item_ids[j]) for j in top[0]]
    np.testing.assert_allclose([g["score"] for g in got], scores[0], rtol=1e-5, atol=1e-5)


def test_service_serves_the_finetuned_target_in_domain(perturbed_dir, target_spec):
    from prerec.serving.api import Service

    run = load_run(perturbed_dir)
    domain = load_domains([target_spec])[0]
    today = DAY0 + 45
    service = Service.load(perturbed_dir, clock=lambda: today * SECONDS_PER_DAY + 3600)
    service.attach(domain)
    history = [list(domain.item_ids[:4])]
    recs = service.recommend(domain.name, history, k=8)
    h = np.array([[domain.item_index[i] for i in history[0]]])
    scores = PreRecRecommender(run, "in-domain").score(run.prepare(domain), h, np.array([4]), np.array([today]))[0]
    np.testing.assert_allclose(recs.scores[0], scores[recs.indices[0]], rtol=1e-4, atol=1e-5)
    zero = PreRecRecommender(run, "zero-shot").score(run.prepare(domain), h, np.array([4]), np.array([today]))[0]
    assert not np.allclose(recs.scores[0], zero[recs.indices[0]], atol=1e-4)
    service.close()


def test_cli_config_file_gives_variants_and_bad_files_exit_2(tiny_run, target_spec, tmp_path, capsys):
    good = tmp_path / "ft.toml"
    good.write_text("[finetune]\nepochs = 1\nvariants = [{}, { lr = 0.01 }]\n")
    out = tmp_path / "run"
    assert main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out", str(out),
                 "--config", str(good)]) == 0
    tried = load_run(out).selection["tried"]
    assert [t["variant"] for t in tried] == [{}, {"lr": 0.01}]
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 1\n")
    for path, message in ((bad, "not valid TOML"), (tmp_path / "none.toml", "no such file")):
        code = main(["finetune", "--run", str(tiny_run), "--target", target_spec, "--out", str(tmp_path / "x"),
                     "--config", str(path)])
        assert code == 2 and message in capsys.readouterr().err
