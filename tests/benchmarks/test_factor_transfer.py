"""benchmarks/factor_transfer.py: the configs it runs, the held-out score it chooses by, and its report.

The choice must read the held-out sources at the kept epoch (the refit's selection history when
there is one), never a target; the report's bar must compare the 3-seed mean with the best
training-free popularity row and text-last on every B2 fold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import factor_transfer as ft  # noqa: E402

B2 = ["amazon_scientific", "amazon_office", "lastfm", "online_retail_uk"]


def test_config_swaps_the_set_and_other_keys_and_keeps_the_split():
    cfg = ft.config_for("b1", "l2+embedding_postprocess=none+epochs=3", 2024, None)
    assert cfg.pretrain["set"]["popularity_factors"] == "l2"
    assert cfg.pretrain["set"]["embedding_postprocess"] == "none"
    assert cfg.pretrain["set"]["epochs"] == 3
    assert cfg.pretrain["set"]["item_identity"] is True  # the packaged B1 recipe otherwise
    assert cfg.models == ["prerec"] and cfg.train_seeds == [2024] and cfg.incremental == []
    assert cfg.seed == 2023  # the user split stays
    free = ft.config_for("b2", ft.FREE, 2023, None)
    assert free.models == ft.FREE_ROWS and free.pretrain["set"]["popularity_factors"] == "paper"


def _epoch(epoch: int, valid: dict[str, tuple[float, float]]) -> dict:
    return {"epoch": epoch, "valid": {d: {"recall@k%": r, "rndcg@k%": n} for d, (r, n) in valid.items()}}


def test_held_out_reads_the_kept_epoch_and_the_refit_selection():
    plain = {"epoch_kept": 2, "history": [_epoch(1, {"A": (.1, .01), "B": (.3, .03)}),
                                          _epoch(2, {"A": (.2, .02), "B": (.4, .06)})]}
    assert ft.held_out(plain) == pytest.approx({"recall@k%": .3, "rndcg@k%": .04})
    refit = {"epoch_kept": 3, "history": [_epoch(3, {"T": (.9, .9)})],
             "selection": {"epochs": 1, "history": [_epoch(1, {"H": (.5, .05)}), _epoch(2, {"H": (.6, .01)})]}}
    assert ft.held_out(refit) == pytest.approx({"recall@k%": .5, "rndcg@k%": .05})


def _write(work: Path, bench: str, name: str, seed: int, targets: dict, heldout: dict | None) -> None:
    out = work / bench / name / f"seed{seed}"
    out.mkdir(parents=True)
    results = {t: {m: {"recall@k%": r, "rndcg@k%": n} for m, (r, n) in rows.items()} for t, rows in targets.items()}
    pre = {f"{f}-prerec": {"epoch_kept": 1, "history": [_epoch(1, {"H": v})]} for f, v in (heldout or {}).items()}
    (out / "results.json").write_text(json.dumps({"complete": True, "results": results, "pretraining": pre}))


def test_selection_and_bar_on_a_small_tree(tmp_path):
    free = {t: {"popularity": (.10, .02), "popularity-log": (.10, .02), "text-last": (.15, .03)} for t in B2}
    _write(tmp_path, "b2", ft.FREE, 2023, free, None)
    _write(tmp_path, "b1", ft.FREE, 2023, {"mean": {"popularity": (.03, .01), "text-last": (.2, .05)}}, None)
    for seed in (2023, 2024, 2025):
        for name, score, target in (("paper", .02, (.20, .04)), ("l2", .03, (.12, .04))):
            _write(tmp_path, "b2", name, seed, {t: {"prerec": target} for t in B2},
                   {t: (.1, score) for t in B2})
            _write(tmp_path, "b1", name, seed, {"mean": {"prerec": (.3, .08)}}, {"all": (.3, score)})
    data = ft.collect(tmp_path)
    assert [s for s, *_ in ft.selection(data)] == ["l2", "paper"]  # by held-out r-NDCG, not by the targets
    bar = "\n".join(ft.bar(data))
    assert "| paper | lastfm | recall@k% | 0.2000 | 0.1000 (popularity and 1 equal) | 0.1500 | yes |" in bar
    assert "| l2 | lastfm | recall@k% | 0.1200 | 0.1000 (popularity and 1 equal) | 0.1500 | **no** |" in bar
    assert "prerec (l2)" in ft.markdown(data)
