"""``prerec data taste``: the signal and the U.V weight it prints are the ones scoring uses."""

from __future__ import annotations

import pytest
from training_fixtures import office, one_torch_thread, tiny_config  # noqa: F401

from prerec.cli import main
from prerec.constants import SPLIT_SEED
from prerec.data.prepared import prepare_domain
from prerec.data.readers import load_domain
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.text import embed_catalog, get_encoder
from prerec.text.taste import taste_signal, text_weight
from prerec.training.pretrain import pretrain
from shared_data import shared


def test_printed_signal_and_weight_are_the_ones_scoring_uses(office, tmp_path, capsys):  # noqa: F811
    pretrain([office], tiny_config(epochs=1, max_instances_per_epoch=300, taste_calibration=0.5), tmp_path / "r",
             specs=["office=canonical:x"])
    spec = f"lastfm=canonical:{shared('lastfm')}"
    capsys.readouterr()
    assert main(["data", "taste", spec, "--run", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    run = load_run(tmp_path / "r")
    prepared = run.prepare(load_domain(spec))
    sig = taste_signal(prepared.item_emb, prepared.split.train)
    weight = text_weight(sig, run.source_taste_signal(), 0.5)
    assert sig.readable and f"{sig.value:.3f}" in out and f"{weight:.3f}" in out
    rec = PreRecRecommender(run, "zero-shot")
    rec.item_tensor(prepared)
    assert rec.intervention.text_weight("lastfm") == pytest.approx(weight)
    assert f"office {run.sources[0].taste_signal:.3f}" in out

    assert main(["data", "taste", spec, "--encoder", "hash:64"]) == 0  # no run: the encoder's own space
    out = capsys.readouterr().out
    d = load_domain(spec)
    plain = prepare_domain(d, embed_catalog(d, get_encoder("hash:64")), SPLIT_SEED)
    assert f"{taste_signal(plain.item_emb, plain.split.train).value:.3f}" in out
    assert main(["data", "taste", spec, "--tau", "0.5"]) == 2
    assert "--tau needs --run" in capsys.readouterr().err
