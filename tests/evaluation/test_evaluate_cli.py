"""``prerec evaluate`` / ``recommend`` / ``export`` end to end on a tiny canonical domain."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prerec.cli import main

CHECKS = Path(__file__).resolve().parents[3] / "shared" / "checks" / "recompute_metrics.py"
KEYS = {"recall@k%", "rndcg@k%", "recall@20", "ndcg@20", "instances"}


def write_canonical(folder: Path, n_users: int = 80, n_items: int = 150, seed: int = 0) -> Path:
    """A small log with timestamps, repeats and text; returns the folder."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = int(rng.integers(0, 50)) * 86400
        for _ in range(int(rng.integers(2, 9))):
            t += int(rng.integers(0, 3)) * 86400 + 60
            rows.append((f"u{u}", f"i{int(rng.zipf(1.5)) % n_items}", t))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(folder / "interactions.csv", index=False)
    colours = ["red", "blue", "green", "black"]
    things = ["mug", "cup", "bag", "lamp", "card"]
    pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_items)],
        "text": [f"{colours[j % 4]} {things[j % 5]} number {j}" for j in range(n_items)],
    }).to_csv(folder / "items.csv", index=False)
    return folder


def recompute(instances: pd.DataFrame, model: str, ratio: float = 0.01) -> dict[str, float]:
    """The independent check's arithmetic, per domain (a plain loop)."""
    out: dict[str, list[float]] = {}
    for row in instances[instances["model"] == model].itertuples():
        k = math.floor(ratio * row.n_items)
        ranks = [row.n_higher + 1 + i for i in range(row.n_tied)]
        out.setdefault(row.domain, []).append(sum(p <= k for p in ranks) / row.n_tied)
    return {d: float(np.mean(v)) for d, v in out.items()}


def test_evaluate_baselines_only(tmp_path, capsys):
    data = write_canonical(tmp_path / "toy")
    data2 = write_canonical(tmp_path / "toy2", seed=1)
    out, inst = tmp_path / "r.json", tmp_path / "i.parquet"
    rc = main(["evaluate", "--target", f"toy=canonical:{data}", "--target", f"toy2=canonical:{data2}",
               "--baselines", "popularity,text,text-last", "--encoder", "hash:64", "--ratio", "0.05",
               "--json", str(out), "--instances-out", str(inst)])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert set(res) == {"toy", "toy2", "mean"}
    for dom in res.values():
        assert set(dom) == {"popularity", "text", "text-last"}
        for m in dom.values():
            assert set(m) == KEYS and isinstance(m["instances"], int)
    frame = pd.read_parquet(inst)
    assert list(frame.columns) == ["model", "domain", "user_id", "position", "item_id", "n_items", "n_higher",
                                   "n_tied"]
    for model in ("popularity", "text", "text-last"):
        for dom, v in recompute(frame, model, 0.05).items():
            assert res[dom][model]["recall@k%"] == pytest.approx(v, abs=1e-12)
        assert len(frame[frame.model == model]) == res["mean"][model]["instances"]
    # popularity ties many zero-count items: n_tied > 1 must occur, or the test proves little
    assert (frame[frame.model == "popularity"].n_tied > 1).any()


def test_independent_recompute_script(tmp_path):
    if not CHECKS.exists():
        pytest.skip(f"{CHECKS} not found")
    data = write_canonical(tmp_path / "toy", n_users=120, n_items=400)
    out, inst = tmp_path / "r.json", tmp_path / "i.parquet"
    assert main(["evaluate", "--target", f"toy=canonical:{data}", "--baselines", "popularity,text-last",
                 "--encoder", "hash:64", "--json", str(out), "--instances-out", str(inst)]) == 0
    for model in ("popularity", "text-last"):
        done = subprocess.run([sys.executable, str(CHECKS), str(inst), str(out), model],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


class FakeRun:
    """Stands in for a pre-trained run: prepares with hash:64, knows its sources' items."""

    def source_item_ids(self) -> dict[str, list[str]]:
        return {"src": [f"i{j}" for j in range(0, 150, 2)]}  # odd items are "unseen"

    def prepare(self, domain):
        from prerec.evaluation.prepare import prepare_without_run

        return prepare_without_run([domain], "hash:64", progress=False)[0]


def test_evaluate_prerec_row_and_unseen(tmp_path, monkeypatch, capsys):
    import prerec.cli.evaluate as ev
    from prerec.baselines import TextMeanBaseline

    monkeypatch.setattr(ev, "load_run", lambda path: FakeRun())
    monkeypatch.setattr(ev, "PreRecRecommender", lambda run, mode, **kw: TextMeanBaseline())
    data = write_canonical(tmp_path / "toy")
    out, detail = tmp_path / "r.json", tmp_path / "d.json"
    rc = main(["evaluate", "--run", str(tmp_path), "--target", f"toy=canonical:{data}", "--mode", "zero-shot",
               "--baselines", "text", "--json", str(out), "--detail-json", str(detail), "--ks", "10,20"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert set(res["toy"]) == {"prerec", "text"}
    assert res["toy"]["prerec"]["recall@k%"] == res["toy"]["text"]["recall@k%"]  # same scorer
    assert {"recall@10", "ndcg@10"} <= set(res["toy"]["prerec"])
    d = json.loads(detail.read_text())
    n_all, n_seen, n_unseen = (d[s]["toy"]["prerec"]["instances"] for s in ("all", "seen", "unseen"))
    assert n_seen + n_unseen == n_all and n_seen > 0 and n_unseen > 0


def test_bad_input_exits_2(tmp_path, capsys):
    data = write_canonical(tmp_path / "toy")
    assert main(["evaluate", "--target", f"toy=canonical:{data}", "--json", str(tmp_path / "r.json")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["evaluate", "--target", f"toy=canonical:{data}", "--baselines", "nope",
                 "--json", str(tmp_path / "r.json")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "no-run"), "--target", f"toy=canonical:{data}",
                 "--json", str(tmp_path / "r.json")]) == 2
    assert "no-run" in capsys.readouterr().err


def test_export_recbole(tmp_path):
    data = write_canonical(tmp_path / "toy")
    assert main(["export", "recbole", f"toy=canonical:{data}", "--out", str(tmp_path / "rb")]) == 0
    folder = tmp_path / "rb" / "toy"
    test = pd.read_csv(folder / "toy.test.inter", sep="\t", dtype=str)
    assert list(test.columns) == ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    # the test rows are exactly the instances prerec evaluate ranks, in order
    out, inst = tmp_path / "r.json", tmp_path / "i.parquet"
    assert main(["evaluate", "--target", f"toy=canonical:{data}", "--baselines", "text-last", "--encoder", "hash:64",
                 "--json", str(out), "--instances-out", str(inst)]) == 0
    frame = pd.read_parquet(inst)
    assert test["user_id:token"].tolist() == frame["user_id"].tolist()
    assert test["item_id:token"].tolist() == frame["item_id"].tolist()
    lens = test["item_id_list:token_seq"].str.split(" ").map(len)
    assert (lens == np.minimum(frame["position"], 50)).all()
    items = pd.read_csv(folder / "toy.item", sep="\t", dtype=str)
    assert len(items) == pd.read_csv(data / "interactions.csv")["item_id"].nunique()


def test_recommend_prints_k_lines_and_unknown_item_exits_2(tmp_path, capsys):
    data = write_canonical(tmp_path / "toy")
    assert main(["recommend", "--target", f"toy=canonical:{data}", "--model", "text-last", "--encoder", "hash:64",
                 "--history", "i1,i2", "-k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].split("\t")[1] == "i2"  # the last item itself ranks first
    assert all(len(line.split("\t")) == 4 for line in lines)
    assert main(["recommend", "--target", f"toy=canonical:{data}", "--model", "popularity", "--encoder", "hash:64",
                 "--history", "i1,nope", "-k", "4"]) == 2
    assert "'nope'" in capsys.readouterr().err


def test_experiment_end_to_end_without_pretraining(tmp_path, capsys):
    write_canonical(tmp_path / "a", seed=1)
    write_canonical(tmp_path / "b", seed=2)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'''
name = "tiny"
encoder = "hash:64"
ratio = 0.05
domains = ["a=canonical:{tmp_path / 'a'}", "b=canonical:{tmp_path / 'b'}"]
targets = ["a", "b"]
protocol = "leave-one-out"
models = ["popularity", "text-last", "sasrec-scratch"]
incremental = [0, 10, "all"]
incremental_models = ["sasrec-scratch"]
[sasrec]
epochs = 2
batch_size = 64
[quick]
max_instances = 20
''')
    out = tmp_path / "out"
    assert main(["experiment", str(cfg), "--out", str(out), "--quick", "--no-progress"]) == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"a", "b", "mean"}
    assert set(res["results"]["mean"]) == {"popularity", "text-last", "sasrec-scratch"}
    assert res["results"]["a"]["text-last"]["instances"] == 20
    assert [f["sources"] for f in res["folds"]] == [["b"], ["a"]]
    curve = res["incremental"]["sasrec-scratch"]
    assert set(curve) == {"0", "10", "all"}
    assert curve["all"]["mean"]["sasrec-scratch"] == res["results"]["mean"]["sasrec-scratch"]
    assert (out / "incremental.png").stat().st_size > 1000
    assert "| text-last |" in (out / "table.md").read_text()
    frame = pd.read_parquet(out / "instances.parquet")
    assert len(frame) == 3 * 2 * 20


def test_evaluate_and_recommend_with_a_pretrained_run(tmp_path, capsys):
    """The contract's path on a tiny real run: pretrain (1 epoch), evaluate zero-shot, recompute, recommend."""
    a, b, c = (write_canonical(tmp_path / n, seed=s) for n, s in (("a", 1), ("b", 2), ("c", 3)))
    run = tmp_path / "run"
    assert main(["pretrain", "--source", f"a=canonical:{a}", "--source", f"b=canonical:{b}", "--out", str(run),
                 "--preset", "cpu", "--encoder", "hash:64", "--set", "epochs=1", "--set", "hidden_size=32"]) == 0
    out, inst = tmp_path / "r.json", tmp_path / "i.parquet"
    for mode in ("zero-shot", "zero-shot-mc"):
        assert main(["evaluate", "--run", str(run), "--target", f"c=canonical:{c}", "--mode", mode, "--ratio", "0.1",
                     "--baselines", "popularity,text,text-last", "--json", str(out), "--instances-out", str(inst)]) == 0
        res = json.loads(out.read_text())
        assert set(res["c"]) == {"prerec", "popularity", "text", "text-last"}
        assert set(res["c"]["prerec"]) == KEYS
        frame = pd.read_parquet(inst)
        assert res["c"]["prerec"]["recall@k%"] == pytest.approx(recompute(frame, "prerec", 0.1)["c"], abs=1e-12)
    capsys.readouterr()
    assert main(["recommend", "--run", str(run), "--target", f"c=canonical:{c}", "--history", "i1,i2", "-k", "5"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5


def test_experiment_without_curve_draws_no_plot(tmp_path, capsys):
    write_canonical(tmp_path / "a", seed=1)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'''
name = "nocurve"
encoder = "hash:64"
domains = ["a=canonical:{tmp_path / 'a'}"]
targets = ["a"]
models = ["popularity"]
incremental = []
''')
    out = tmp_path / "out"
    assert main(["experiment", str(cfg), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    assert not (out / "incremental.png").exists()
    assert "Incremental" not in (out / "table.md").read_text()


def test_experiment_selects_per_fold_on_held_out_sources(tmp_path, capsys):
    """[pretrain] select_from: each fold holds out the first listed name that is one of its sources."""
    for n, s in (("a", 1), ("b", 2), ("c", 3)):
        write_canonical(tmp_path / n, seed=s)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'''
name = "select"
encoder = "hash:64"
ratio = 0.05
domains = ["a=canonical:{tmp_path / 'a'}", "b=canonical:{tmp_path / 'b'}", "c=canonical:{tmp_path / 'c'}"]
targets = ["a", "c"]
protocol = "leave-one-out"
models = ["prerec"]
[pretrain]
preset = "cpu"
set = {{ epochs = 2, hidden_size = 32, refit = true }}
select_from = ["c", "b"]
''')
    out = tmp_path / "out"
    assert main(["experiment", str(cfg), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    pre = json.loads((out / "results.json").read_text())["pretraining"]
    assert pre["a-prerec"]["select_on"] == ["c"] and pre["c-prerec"]["select_on"] == ["b"]
    for fold in ("a-prerec", "c-prerec"):
        chosen = pre[fold]["selection"]["epochs"]
        assert pre[fold]["epochs_trained"] == pre[fold]["epoch_kept"] == chosen and pre[fold]["refit"]
        assert all(r["valid"][pre[fold]["select_on"][0]]["inference"] == "zero-shot"
                   for r in pre[fold]["selection"]["history"])
    # run again into the same folder: the runs are reused and still reported
    assert main(["experiment", str(cfg), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())["pretraining"]
    assert {k: (v["selection"], v["epoch_kept"]) for k, v in again.items()} == {
        k: (v["selection"], v["epoch_kept"]) for k, v in pre.items()}

    cfg.write_text(cfg.read_text().replace('select_from = ["c", "b"]', 'select_from = ["zzz"]'))
    assert main(["experiment", str(cfg), "--out", str(tmp_path / "out2"), "--no-progress"]) == 2
    assert "none of [pretrain] select_from (zzz)" in capsys.readouterr().err


def test_experiment_reports_each_result_as_soon_as_it_is_done(tmp_path):
    from prerec.data import load_domains
    from prerec.evaluation.evaluate import EvalConfig
    from prerec.evaluation.experiment import Experiment
    from prerec.evaluation.prepare import prepare_without_run
    from prerec.registry import build_model

    domains = load_domains([f"{n}=canonical:{write_canonical(tmp_path / n, seed=s)}" for n, s in (("a", 1), ("b", 2))])
    targets = prepare_without_run(domains, "hash:64", 2023, progress=False)
    seen = []
    exp = Experiment(targets, {"popularity": build_model("popularity"), "text-last": build_model("text-last")},
                     EvalConfig(ratio=0.05, progress=False))
    res = exp.run(on_result=lambda r: seen.append((r.model, r.domain, len(exp.results.ranks))))
    assert seen == [("popularity", "a", 1), ("text-last", "a", 2), ("popularity", "b", 3), ("text-last", "b", 4)]
    assert len(res.ranks) == 4


def test_experiment_zero_shot_rows_over_training_seeds_and_markov_na(tmp_path, capsys):
    """train_seeds: the zero-shot PreRec rows once per training seed on the same test users;
    an id-based baseline where ids are not shared is n/a, with the reason."""
    for n, s in (("a", 1), ("b", 2), ("c", 3)):
        write_canonical(tmp_path / n, seed=s)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'''
name = "seeds"
encoder = "hash:64"
ratio = 0.05
train_seeds = [5, 6]
domains = ["a=canonical:{tmp_path / 'a'}", "b=canonical:{tmp_path / 'b'}", "c=canonical:{tmp_path / 'c'}"]
targets = ["c"]
models = ["text-last", "markov", "prerec", "prerec-finetuned"]
[pretrain]
preset = "cpu"
set = {{ epochs = 1, hidden_size = 16, max_instances_per_epoch = 300 }}
[finetune]
epochs = 1
''')
    out = tmp_path / "out"
    assert main(["experiment", str(cfg), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert res["train_seeds"] == [5, 6] and set(res["by_seed"]) == {"5", "6"}
    assert set(res["by_seed"]["6"]) == {"prerec"}  # zero-shot rows only; fine-tuning keeps one seed
    assert res["by_seed"]["5"]["prerec"] == res["results"]["mean"]["prerec"]
    assert res["by_seed"]["6"]["prerec"]["instances"] == res["results"]["mean"]["prerec"]["instances"]
    assert res["by_seed"]["6"]["prerec"] != res["by_seed"]["5"]["prerec"]  # another training seed
    assert res["pretraining"]["all-prerec-seed6"]["train_seed"] == 6
    assert "markov" in res["not_applicable"] and "markov" not in res["results"]["mean"]
    table = (out / "table.md").read_text()
    assert "| markov | n/a" in table and "over 2 training seeds" in table
    first = pd.read_parquet(out / "instances.parquet")
    other = pd.read_parquet(out / "instances-seed6.parquet")
    prerec = first[first.model == "prerec"]
    assert list(other.user_id) == list(prerec.user_id) and list(other.position) == list(prerec.position)
