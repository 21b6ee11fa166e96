"""Item key spaces (``@ids=SPACE``, readers' defaults) and the shared identity vocabulary."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from prerec.cli import main
from prerec.data import load_domains, parse_spec
from prerec.data.domain import build_domain
from prerec.data.identity import build_identity, match_target
from prerec.errors import PrerecError

# ---------------------------------------------------------------- declaring a key space


def test_spec_suffix_and_defaults():
    s = parse_spec("Germany=online-retail:data.parquet#Germany@ids=shop:sku")
    assert (s.name, s.path, s.selector, s.ids, s.id_space()) == ("Germany", "data.parquet", "Germany", "shop:sku",
                                                                 "shop:sku")
    assert parse_spec("online-retail:embedded#Germany").id_space() == "online-retail:stockcode"
    assert parse_spec("xmarket-5core:d").id_space() == parse_spec("xmarket:d#de").id_space() == "xmarket:asin"
    for fmt in ("canonical", "unisrec", "recbole", "movielens"):
        assert parse_spec(f"{fmt}:somewhere").id_space() is None
    assert parse_spec("online-retail:embedded@ids=none").id_space() is None
    s = parse_spec("es=recbole:/d/es.inter@ids=xmarket:asin")
    assert (s.path, s.selector, s.id_space()) == ("/d/es.inter", None, "xmarket:asin")
    # a spec standing for one of several domains keeps the declaration
    one = parse_spec(parse_spec("online-retail:a.csv,b.csv#!Spain@ids=x").for_domain("France"))
    assert (one.path, one.selector, one.ids) == ("a.csv,b.csv", "France", "x")


@pytest.mark.parametrize("bad", ["online-retail:embedded@ids=", "online-retail:embedded@ids=a b",
                                 "canonical:x@ids=a/b"])
def test_malformed_key_space_is_a_clear_error(bad):
    with pytest.raises(PrerecError, match="@ids="):
        parse_spec(bad)


def test_malformed_key_space_exits_2(capsys):
    assert main(["data", "stats", "online-retail:embedded#Spain@ids=a b"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "@ids=" in err[0] and "key space" in err[0]


def test_loaded_domains_carry_their_space(tmp_path):
    assert load_domains(["online-retail:embedded#Spain"])[0].id_space == "online-retail:stockcode"
    assert load_domains(["online-retail:embedded#Spain@ids=none"])[0].id_space is None
    pd.DataFrame({"user_id": ["u"] * 2, "item_id": ["a", "b"]}).to_csv(tmp_path / "interactions.csv", index=False)
    assert load_domains([f"c=canonical:{tmp_path}"])[0].id_space is None
    assert load_domains([f"c=canonical:{tmp_path}@ids=shop"])[0].id_space == "shop"
    f = tmp_path / "de_5core.txt"
    f.write_text("userId itemId rate date\nu1 B1 5.0 2016-06-13\n")
    assert load_domains([f"xmarket-5core:{f}"])[0].id_space == "xmarket:asin"


# ---------------------------------------------------------------- the vocabulary


def dom(name: str, space: str | None, seqs: dict[str, str]):
    """A domain from ``{user: "abc"}`` (one-letter items, in order)."""
    rows = [(u, i, t) for u, items in seqs.items() for t, i in enumerate(items)]
    d = build_domain(name, pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), None, source=name)
    d.id_space = space
    return d


def test_vocabulary_maps_and_support():
    a = dom("A", "shop", {"u1": "abca", "u2": "bd"})
    b = dom("B", "shop", {"v1": "dex"})
    other = dom("O", "other", {"w": "ab"})  # same-looking ids, another key space
    free = dom("F", None, {"z": "abq"})  # no key space: text only
    idn = build_identity([a, b, other, free])
    keys = set(zip(idn.spaces, idn.item_ids))
    assert keys == {("shop", x) for x in "abcdex"} | {("other", x) for x in "ab"}
    for d in (a, b, other):
        m = idn.maps[d.name]
        assert (m >= 0).all()
        assert list(idn.item_ids[m]) == list(d.item_ids) and set(idn.spaces[m]) == {d.id_space}
    assert (idn.maps["F"] == -1).all()
    support = {(s, i): int(n) for s, i, n in zip(idn.spaces, idn.item_ids, idn.support)}
    assert support[("shop", "a")] == 2 and support[("shop", "d")] == 2 and support[("other", "a")] == 1
    assert idn.report.undeclared == ["F"]
    shop = next(s for s in idn.report.spaces if s.space == "shop")
    assert (shop.items, shop.shared, shop.shared_per_source) == (6, 1, {"A": 1, "B": 1})


def test_target_matched_only_in_its_own_space(caplog):
    a = dom("A", "shop", {"u1": "abc"})
    o = dom("O", "other", {"w": "xyz"})
    target = dom("T", "shop", {"t1": "abxq"})  # x is in O's space only: no match
    with caplog.at_level(logging.INFO, logger="prerec.data.identity"):
        idn = build_identity([a, o], target)
    m = idn.maps["T"]
    assert [idn.item_ids[j] if j >= 0 else None for j in m] == ["a", "b", None, None]  # catalog a b q x
    t = idn.report.target
    assert (t.items, t.matched, t.interactions, t.matched_interactions) == (4, 2, 4, 2)
    line = next(r.getMessage() for r in caplog.records if "target T" in r.getMessage())
    assert "2 of 4 items" in line and "2 of 4 interactions" in line and "2 item(s) are text only" in line


def test_no_overlap_at_all_is_an_error_naming_the_domains():
    a = dom("A", "shop", {"u1": "abc"})
    b = dom("B", "shop", {"u2": "cd"})
    with pytest.raises(PrerecError, match=r"'shop'.*'T'.*A, B"):
        build_identity([a, b], dom("T", "shop", {"t": "xy"}))
    with pytest.raises(PrerecError, match=r"'shop': C share\(s\) no item id.*\(A, B\)"):
        build_identity([a, b, dom("C", "shop", {"u3": "pq"})])


def test_identity_required_where_nothing_is_declared():
    plain = [dom("A", None, {"u": "ab"}), dom("B", None, {"v": "bc"})]
    with pytest.raises(PrerecError, match="no source domain declares a shared item key space"):
        build_identity(plain, required=True)
    build_identity(plain)  # not asked for: fine, everything text only
    src = [dom("A", "shop", {"u": "ab"})]
    with pytest.raises(PrerecError, match="target 'T' declares no shared item key space"):
        build_identity(src, dom("T", None, {"t": "ab"}), required=True)
    assert (build_identity(src, dom("T", None, {"t": "ab"})).maps["T"] == -1).all()
    with pytest.raises(PrerecError, match=r"no source declares target 'T'.s key space 'elsewhere'"):
        build_identity(src, dom("T", "elsewhere", {"t": "ab"}), required=True)


def test_match_a_later_target():
    idn = build_identity([dom("A", "shop", {"u": "abc"})])
    overlap = match_target(idn, dom("T", "shop", {"t": "cbz"}), required=True)
    assert (overlap.matched, overlap.items) == (2, 3)
    assert np.array_equal(idn.item_ids[idn.maps["T"][:2]], ["b", "c"])


def test_b1_targets_match_the_sources():
    """Online Retail's countries share stock codes: B1's targets are (almost) all known."""
    targets = ["Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal"]
    sources = load_domains([f"online-retail:embedded#!{','.join(targets)}"])
    spain = load_domains(["online-retail:embedded#Spain"])[0]
    idn = build_identity(sources, spain, required=True)
    assert idn.report.target.matched == spain.n_items == 1090
    assert len(idn.report.spaces) == 1 and len(idn.report.spaces[0].sources) == 31


# ---------------------------------------------------------------- prerec data identity


def canonical(tmp_path, name: str, items: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    pd.DataFrame({"user_id": ["u"] * len(items), "item_id": list(items)}).to_csv(folder / "interactions.csv",
                                                                                  index=False)
    return f"{name}=canonical:{folder}"


def test_cli_reports_overlap_and_exits_2_on_bad_declarations(tmp_path, capsys):
    a, b = canonical(tmp_path, "a", "pqr"), canonical(tmp_path, "b", "rst")
    t = canonical(tmp_path, "t", "rsxy")
    assert main(["data", "identity", "--source", f"{a}@ids=shop", f"{b}@ids=shop", "--target", f"{t}@ids=shop"]) == 0
    out = capsys.readouterr().out
    assert "key space shop: 2 source(s), 5 item ids, 1 of them in two or more sources" in out
    assert "target t (shop): 2 of 4 items (50.0%)" in out

    def bad(*argv: str) -> str:
        assert main(["data", "identity", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("prerec: error: ")
        return err[0]

    line = bad("--source", f"{a}@ids=shop", "--target", f"{canonical(tmp_path, 'z', 'xyz')}@ids=shop")
    assert "'shop'" in line and "target 'z' shares no item id" in line and "(a)" in line
    line = bad("--source", a, b, "--target", t, "--require")
    assert "no source domain declares a shared item key space (a, b)" in line
    line = bad("--source", f"{a}@ids=shop", "--target", t, "--require")
    assert "target 't' declares no shared item key space" in line and "@ids=SPACE" in line
