"""One --source that yields several domains (Online Retail countries) trains on all of them."""

from __future__ import annotations

from prerec.cli import main
from prerec.run import load_run


def test_one_spec_several_domains_trains_on_each(tmp_path):
    out = tmp_path / "run"
    rc = main(["pretrain", "--source", "online-retail:embedded#Germany,France,Spain", "--out", str(out),
               "--preset", "cpu", "--encoder", "hash:32", "--set", "epochs=1", "--set", "hidden_size=16",
               "--set", "max_instances_per_epoch=300", "--set", "valid_max_instances=50",
               "--set", "progress=false"])
    assert rc == 0
    run = load_run(out)
    assert sorted(run.source_names) == ["France", "Germany", "Spain"]
    specs = {s.name: s.spec for s in run.sources}
    assert specs["Spain"].endswith("online-retail:embedded#Spain")
