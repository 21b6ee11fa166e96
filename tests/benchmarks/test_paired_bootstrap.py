"""benchmarks/paired_bootstrap.py: the paired difference is the tables' mean difference, by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import paired_bootstrap as pb  # noqa: E402


def frame() -> pd.DataFrame:
    """Two targets of 100 items (K = 1); model a hits every instance of target x and half of y's,
    model b none: Recall@1% difference = mean(1, 0.5) = 0.75."""
    rows = []
    for dom, users in (("x", 4), ("y", 6)):
        for u in range(users):
            for pos in (1, 2):
                hit = dom == "x" or u % 2 == 0
                rows.append(dict(model="a", domain=dom, user_id=str(u), position=pos, item_id="i", n_items=100,
                                 n_higher=0 if hit else 50, n_tied=1))
                rows.append(dict(model="b", domain=dom, user_id=str(u), position=pos, item_id="i", n_items=100,
                                 n_higher=50, n_tied=1))
    return pd.DataFrame(rows)


def test_paired_difference_by_hand():
    out = pb.paired(frame(), "a", "b", draws=200)
    point, low, high = out["recall@k%"]
    assert point == pytest.approx(0.75)
    assert low <= point <= high and low > 0.5  # target x is a hit for every user: no spread there
    assert out["rndcg@k%"][0] == pytest.approx(0.75)  # a hit at rank 1 has r-NDCG 1


def test_refuses_different_instances():
    f = frame()
    f = f[~((f.model == "b") & (f.user_id == "0"))]
    with pytest.raises(SystemExit, match="same test instances"):
        pb.paired(f, "a", "b")


def test_one_domain_and_model_b_from_another_file():
    f = frame()
    assert pb.paired(pb.select(f, "b", "y"), "a", "b", draws=50)["recall@k%"][0] == pytest.approx(0.5)
    other = f[f.model == "a"].assign(model="b")  # b's instances from a file where b hits as a does
    point = pb.paired(pb.select(f[f.model == "a"], "b", None, other), "a", "b", draws=50)["recall@k%"][0]
    assert point == pytest.approx(0.0)
