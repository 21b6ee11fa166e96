"""Readers: each on the real files in ../shared/data where they exist, on small fixtures otherwise.

The counts asserted for shared sets are those of ../shared/data/README.md.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prerec.data import load_domains
from prerec.data.readers import load_domain
from prerec.data.readers.xmarket import CATEGORY_SENTENCE
from shared_data import shared


def sequence_of(domain, user: str) -> list[str]:
    df = domain.interactions
    return df.loc[df["user_id"] == user, "item_id"].tolist()


def counts(domain) -> tuple[int, int, int]:
    return domain.n_users, domain.n_items, len(domain.interactions)


# ---------------------------------------------------------------- unisrec


def test_unisrec_scientific_real():
    path = shared("amazon_scientific")
    d = load_domain(f"sci=unisrec:{path}")
    assert counts(d) == (8442, 4385, 59384)
    assert not d.has_time and d.report.items_without_text == 0
    assert "B0000223SI" in d.item_index  # ids are ASINs, not integer indices
    # the test row of user index 0 is "0..12 -> 13": its sequence is those 14 items, mapped back
    item2index = pd.read_csv(path / "Scientific.item2index", sep="\t", header=None)
    user2index = pd.read_csv(path / "Scientific.user2index", sep="\t", header=None)
    asin = dict(zip(item2index[1], item2index[0]))
    user0 = dict(zip(user2index[1], user2index[0]))[0]
    assert sequence_of(d, user0) == [asin[k] for k in range(14)]
    text = d.texts["B0000223SI"]
    assert text.startswith("PORTER-CABLE 740000801")


def write_unisrec(root: Path) -> Path:
    root.mkdir()
    (root / "Toy.text").write_text("item_id:token\ttext:token_seq\nA1\tfirst item\nB2\tsecond item\nC3\tthird\n")
    (root / "Toy.item2index").write_text("A1\t0\nB2\t1\nC3\t2\n")
    (root / "Toy.user2index").write_text("alice\t0\nbob\t1\n")
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (root / "Toy.train.inter").write_text(head + "0\t0\t1\n1\t2\t0\n")
    (root / "Toy.valid.inter").write_text(head + "0\t0 1\t2\n1\t2 0\t1\n")
    (root / "Toy.test.inter").write_text(head + "0\t0 1 2\t0\n1\t2 0 1\t1\n")
    return root


def test_unisrec_fixture_sequence_is_test_history_plus_target(tmp_path):
    root = write_unisrec(tmp_path / "toy")
    d = load_domain(f"toy=unisrec:{root}")
    assert sequence_of(d, "alice") == ["A1", "B2", "C3", "A1"]
    assert sequence_of(d, "bob") == ["C3", "A1", "B2", "B2"]
    assert d.texts.to_dict() == {"A1": "first item", "B2": "second item", "C3": "third"}
    # a file of the set as PATH works too, and names the domain after the set
    assert load_domains([f"unisrec:{root / 'Toy.text'}"])[0].name == "Toy"


# ---------------------------------------------------------------- recbole


def test_recbole_xmarket_es_real():
    d = load_domain(f"es=recbole:{shared('xmarket_electronics', 'es.inter')}")
    assert counts(d) == (6218, 3467, 44655)
    assert d.has_time
    assert d.report.items_without_text == 3467  # no es.item: no text at all
    first = d.interactions.iloc[0]
    assert first["timestamp"] % 86400 == 0  # XMarket dates are whole days


def test_recbole_fixture_text_columns_and_timestamps(tmp_path):
    (tmp_path / "shop.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti2\t5\t200.0\nu1\ti1\t4\t100\nu2\ti3\t3\t86400.5\nu2\ti1\t1\t90000\n"
    )
    (tmp_path / "shop.item").write_text(
        "item_id:token\ttitle:token_seq\tprice:float\tcategories:token_seq\tbrand:token\n"
        "i1\tRed Pen\t1.5\tOffice Pens\tAcme\ni2\tBlue Ink\t2\t\tInkCo\ni3\t\t3\tPaper\t\n"
    )
    d = load_domain(f"recbole:{tmp_path}")
    assert d.name == "shop"
    assert sequence_of(d, "u1") == ["i1", "i2"]  # sorted by time
    assert d.interactions["timestamp"].tolist() == [100, 200, 86400, 90000]
    assert d.texts.to_dict() == {"i1": "Red Pen. Office Pens. Acme", "i2": "Blue Ink. InkCo", "i3": "Paper"}
    assert any("title, categories, brand" in note for note in d.report.notes)


def test_recbole_without_timestamp_keeps_row_order(tmp_path):
    f = tmp_path / "x.inter"
    f.write_text("user_id:token\titem_id:token\nu\tb\nu\ta\nv\ta\n")
    d = load_domain(f"recbole:{f}")
    assert not d.has_time and sequence_of(d, "u") == ["b", "a"]
    assert d.report.items_without_text == 2


# ---------------------------------------------------------------- xmarket-5core

XMARKET_5CORE = {"ca": (4668, 5735, 44779), "uk": (3352, 3251, 31547), "fr": (1838, 1879, 17624),
                 "de": (1851, 2179, 17300), "mx": (1878, 1645, 17095), "jp": (487, 955, 4485),
                 "in": (239, 470, 2015)}


def test_xmarket_5core_real_counts():
    domains = load_domains([f"xmarket-5core:{shared('xmarket_electronics')}"])
    assert {d.name: counts(d) for d in domains} == XMARKET_5CORE
    for d in domains:
        assert d.has_time and d.report.items_without_text == d.n_items


def test_xmarket_5core_fixture_days_and_selector(tmp_path):
    (tmp_path / "de_5core.txt").write_text(
        "userId itemId rate date\nu1 B2 5.0 2016-06-13\nu1 B1 4.0 2016-06-12\nu2 B1 5.0 2016-06-13\n"
    )
    (tmp_path / "fr_5core.txt").write_text("userId itemId rate date\nv B9 5.0 2020-01-01\n")
    d = load_domain(f"x=xmarket-5core:{tmp_path}#de")
    assert d.name == "x"
    assert sequence_of(d, "u1") == ["B1", "B2"]
    day = int(pd.Timestamp("2016-06-12").value // 10**9 // 86400)
    assert d.sequences.days.min() == day
    assert [x.name for x in load_domains([f"xmarket-5core:{tmp_path}"])] == ["de", "fr"]


# ---------------------------------------------------------------- xmarket (full release)


def write_jsonl_gz(path: Path, rows: list, *, arrays: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        if arrays:  # the published files hold one JSON array of reviews per line
            f.write(json.dumps(rows[:2]) + "\n[]\n" + json.dumps(rows[2:]) + "\n")
        else:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def review(user: str, asin: str, date: str) -> dict:
    return {"reviewerID": user, "asin": asin, "cleanReviewTime": date, "overall": 5, "reviewText": "ok"}


def make_xmarket(root: Path, *, arrays: bool = False) -> Path:
    el = root / "de" / "Electronics"
    write_jsonl_gz(el / "reviews_de_Electronics.json.gz", [
        review("u1", "A1", "2019-01-02"), review("u1", "A2", "2019-01-01"),
        review("u2", "A1", "2019-01-03"), review("u2", "A3", "2019-01-04"),
    ], arrays=arrays)
    write_jsonl_gz(el / "metadata_de_Electronics.json.gz", [
        {"asin": "A1", "title": "Cable", "features": ["2 m", "USB-C"], "categories": ["Electronics", "Cables"]},
        {"asin": "A2", "title": "Mouse", "categories": ["Electronics"]},  # no features
    ])
    office = root / "de" / "Office_Products"
    write_jsonl_gz(office / "reviews_de_Office_Products.json.gz", [
        review("u1", "A1", "2019-01-02"),  # the same review under a second category
        review("u3", "A4", "2019-01-05"),
    ])
    write_jsonl_gz(office / "metadata_de_Office_Products.json.gz", [
        {"asin": "A1", "title": "Cable", "features": ["2 m", "USB-C"], "categories": ["Electronics", "Cables"]},
        {"asin": "A4", "title": "Stapler", "features": [], "categories": ["Office"]},
    ])
    mx = root / "mx" / "Electronics"
    write_jsonl_gz(mx / "reviews_mx_Electronics.json.gz", [review("m1", "A1", "2020-05-01"),
                                                           review("m1", "A9", "2020-05-02")])
    write_jsonl_gz(mx / "metadata_mx_Electronics.json.gz", [
        {"asin": "A1", "title": "Cable (es)", "features": None, "categories": [["Electrónicos", "Cables"]]},
        {"asin": "A9", "title": "Teclado", "categories": []},
    ])
    return root


@pytest.mark.parametrize("arrays", [False, True])
def test_xmarket_full_release_fixture(tmp_path, arrays):
    root = make_xmarket(tmp_path / "xm", arrays=arrays)
    de = load_domain(f"xmarket:{root}#de")
    assert de.name == "de" and counts(de) == (3, 4, 5)
    assert de.report.dropped == {"same review in several categories": 1}
    assert sequence_of(de, "u1") == ["A2", "A1"]
    assert de.texts["A1"] == f"Cable 2 m USB-C {CATEGORY_SENTENCE} Electronics Cables"
    assert de.texts["A2"] == f"Mouse {CATEGORY_SENTENCE} Electronics"
    assert de.texts["A3"] == "" and de.report.items_without_text == 1  # reviewed, no metadata
    assert de.report.conflicting_texts == 0  # A1 repeated across categories with the same text
    both = load_domains([f"xmarket:{root}"])
    assert [d.name for d in both] == ["de", "mx"]
    assert both[1].texts["A9"] == "Teclado"
    assert both[1].texts["A1"] == f"Cable (es) {CATEGORY_SENTENCE} Electrónicos Cables"  # nested list flattened


def test_xmarket_market_folder_as_path(tmp_path):
    root = make_xmarket(tmp_path / "xm")
    d = load_domain(f"german=xmarket:{root / 'de'}")
    assert d.name == "german" and len(d.interactions) == 5


# ---------------------------------------------------------------- movielens


def test_movielens_100k_fixture(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n1\t20\t3\t881250900\n2\t10\t4\t891717742\n")
    flags_toy = ["0"] * 19
    flags_toy[3] = flags_toy[4] = "1"  # Animation, Children's
    (tmp_path / "u.item").write_bytes(
        ("10|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags_toy) + "\n"
         "20|Cit\xe9 des enfants perdus, La (1995)|01-Jan-1995||http://y|" + "|".join(["0"] * 19) + "\n"
         ).encode("latin-1"))
    d = load_domain(f"ml=movielens:{tmp_path}")
    assert counts(d) == (2, 2, 3)
    assert sequence_of(d, "1") == ["20", "10"]
    assert d.texts["10"] == "Toy Story (1995). Genres: Animation, Children's"
    assert d.texts["20"] == "Cité des enfants perdus, La (1995)"


def test_movielens_1m_fixture(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::"
        "Animation|Children's|Musical\n".encode("latin-1"))
    d = load_domain(f"movielens:{tmp_path / 'ratings.dat'}")
    assert counts(d) == (2, 2, 3)
    assert d.texts["661"] == "James and the Giant Peach (1996). Genres: Animation, Children's, Musical"
    assert d.interactions["timestamp"].iloc[0] == 978300760


def test_movielens_latest_csv_fixture(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Grumpier Old Men, The (1995)",'
        "(no genres listed)\n")
    d = load_domain(f"movielens:{tmp_path}")
    assert sequence_of(d, "1") == ["3", "1"]
    assert d.texts.to_dict() == {"1": "Toy Story (1995). Genres: Adventure, Animation",
                                 "3": "Grumpier Old Men, The (1995)"}


# ---------------------------------------------------------------- canonical + online retail (real)


@pytest.mark.parametrize("name,expected", [("amazon_office", (4905, 2420, 53258)), ("lastfm", (1220, 4606, 56794))])
def test_canonical_real_counts(name, expected):
    d = load_domain(f"{name}=canonical:{shared(name)}")
    assert counts(d) == expected and d.report.items_without_text == 0


def test_online_retail_real_counts_and_cleaning():
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    raw = pd.read_parquet(path, columns=["CustomerID", "StockCode", "Country"])
    assert (len(raw), raw["CustomerID"].nunique(), raw["StockCode"].nunique()) == (541909, 4372, 4070)
    domains = load_domains([f"online-retail:{path}"])
    assert len(domains) == 37  # Hong Kong's 288 rows have no CustomerID: no domain
    total = {}
    for d in domains:
        for rule, n in d.report.dropped.items():
            total[rule] = total.get(rule, 0) + n
    assert total == {"no CustomerID": 135080 - 288, "cancellation": 8905, "Quantity <= 0": 0,
                     "not a product stock code": 1554, "repeated item in one invoice": 10016}
    log = pd.concat([d.interactions for d in domains])
    assert (log["user_id"].nunique(), log["item_id"].nunique(), len(log)) == (4335, 3659, 386354)
    assert sum(d.report.rows_read for d in domains) == 541909 - 288
    by = {d.name: d for d in domains}
    assert counts(by["Germany"]) == (94, 1663, 8634)
    assert by["United Kingdom"].n_users == 3917
    # a user's sequence is time-ordered (ties keep invoice line order)
    ts = by["Germany"].interactions.groupby("user_id", sort=False)["timestamp"].apply(
        lambda s: bool(np.all(np.diff(s.to_numpy(dtype=np.int64)) >= 0)))
    assert ts.all()


def test_online_retail_country_lists_and_exclusion():
    """``#A,B`` picks countries, ``#!A,B`` every country but those (how B1's sources are named)."""
    picked = load_domains(["online-retail:embedded#Germany,France"])
    assert [d.name for d in picked] == ["Germany", "France"]
    every = {d.name for d in load_domains(["online-retail:embedded"])}
    rest = {d.name for d in load_domains(["online-retail:embedded#!Germany,France"])}
    assert rest == every - {"Germany", "France"}
