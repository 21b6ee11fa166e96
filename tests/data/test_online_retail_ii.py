"""``online-retail`` on the Online Retail II release (columns ``Invoice``, ``Customer ID``,
``Price``), one sheet per file, and on several files at once (a folder or ``a,b``).

No real II file is here: the fixtures are written in its schema, the larger one from part of
the embedded Online Retail data (whose 2010-2011 lines II repeats), cut into two overlapping
"sheets" the way II's two sheets overlap.
"""

from __future__ import annotations

import pandas as pd
import pytest

from prerec.data import load_domains
from prerec.data.readers.online_retail import REPEATED_INVOICE, RULES, embedded_path
from prerec.errors import PrerecError

COUNTRIES = ["Germany", "France", "Spain", "Portugal", "Belgium"]
TO_II = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}


def sorted_log(domain) -> pd.DataFrame:
    return domain.interactions.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def sheets(tmp_path_factory):
    """Part of the embedded data as the UCI file, and as two II sheets (Parquet + CSV) whose
    invoices overlap by 40."""
    root = tmp_path_factory.mktemp("retail")
    raw = pd.read_parquet(embedded_path())
    raw = raw[raw["Country"].isin(COUNTRIES)].reset_index(drop=True)
    raw.to_parquet(root / "uci.parquet")
    rank = pd.Series(pd.factorize(raw["InvoiceNo"].astype(str))[0])
    cut = int(rank.max() * 0.6)
    first, second = raw[rank < cut], raw[rank >= cut - 40]
    (root / "ii").mkdir()
    first.rename(columns=TO_II).to_parquet(root / "ii" / "online_retail_II_2009_2010.parquet")
    csv = second.rename(columns=TO_II).copy()
    csv["InvoiceDate"] = csv["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    csv.to_csv(root / "ii" / "online_retail_II_2010_2011.csv", index=False)
    overlap = raw[(rank >= cut - 40) & (rank < cut)]
    return root, overlap["Country"].value_counts()


def test_two_ii_sheets_read_as_the_uci_file(sheets):
    root, overlap = sheets
    uci = {d.name: d for d in load_domains([f"online-retail:{root / 'uci.parquet'}"])}
    ii = root / "ii"
    folder = {d.name: d for d in load_domains([f"online-retail:{ii}"])}
    listed = load_domains([f"online-retail:{ii / 'online_retail_II_2009_2010.parquet'},"
                           f"{ii / 'online_retail_II_2010_2011.csv'}#Spain,France"])
    assert [d.name for d in listed] == ["Spain", "France"]
    assert set(folder) == set(uci) == set(COUNTRIES)
    for name, d in folder.items():
        u = uci[name]
        pd.testing.assert_frame_equal(sorted_log(d), sorted_log(u))
        pd.testing.assert_series_equal(d.texts, u.texts)
        assert d.id_space == u.id_space == "online-retail:stockcode"
        # the overlapping invoices are read once and counted; every other rule counts alike
        assert d.report.dropped.pop(REPEATED_INVOICE) == overlap.get(name, 0)
        assert d.report.dropped == u.report.dropped
        assert d.report.rows_read == u.report.rows_read + overlap.get(name, 0)
    assert sum(overlap) > 0
    for d in listed:
        pd.testing.assert_frame_equal(sorted_log(d), sorted_log(uci[d.name]))


def test_ii_rules_on_a_hand_made_sheet(tmp_path):
    """Each B1 rule on the II column names, plus an invoice repeated in the second sheet."""
    rows = [  # Invoice, StockCode, Quantity, Customer ID, date
        ("489434", "85048", 12, 13085.0, "2009-12-01 07:45"),
        ("489434", "85048", 6, 13085.0, "2009-12-01 07:45"),  # repeated item in one invoice
        ("489434", "79323P", 12, 13085.0, "2009-12-01 07:45"),
        ("489435", "22350", 12, None, "2009-12-01 07:46"),  # no Customer ID
        ("C489449", "22087", -12, 16321.0, "2009-12-01 10:33"),  # cancellation
        ("489450", "21871", 0, 16321.0, "2009-12-01 10:34"),  # Quantity <= 0
        ("489451", "POST", 1, 16321.0, "2009-12-01 10:35"),  # not a product
        ("489452", "21871", 3, 16321.0, "2009-12-02 09:00"),
    ]
    frame = pd.DataFrame(rows, columns=["Invoice", "StockCode", "Quantity", "Customer ID", "InvoiceDate"])
    frame["Description"] = "THING " + frame["StockCode"]
    frame["Price"] = 1.25
    frame["Country"] = "United Kingdom"
    frame.to_csv(tmp_path / "a_2009_2010.csv", index=False)
    later = frame.iloc[[7]].assign(Quantity=99)  # invoice 489452 again: the first sheet's line is kept
    later = pd.concat([later, pd.DataFrame([{"Invoice": "581587", "StockCode": "23256", "Quantity": 4,
                                             "Customer ID": 12680.0, "InvoiceDate": "2011-12-09 12:50",
                                             "Description": "KIT", "Price": 4.15, "Country": "France"}])])
    later.to_parquet(tmp_path / "b_2010_2011.parquet")
    uk, fr = load_domains([f"online-retail:{tmp_path}#United Kingdom,France"])
    assert uk.report.dropped == {REPEATED_INVOICE: 1, **{r: 1 for r in RULES[1:]}}
    assert uk.interactions["item_id"].tolist() == ["85048", "79323P", "21871"]
    assert set(uk.interactions["user_id"]) == {"13085", "16321"}
    assert uk.interactions["timestamp"].iloc[-1] == pd.Timestamp("2009-12-02 09:00").value // 10**9
    assert fr.texts.to_dict() == {"23256": "KIT"} and fr.report.rows_read == 1
    # one file alone reports the five B1 rules only
    assert set(load_domains([f"online-retail:{tmp_path / 'a_2009_2010.csv'}"])[0].report.dropped) == set(RULES[1:])


def test_ii_bad_input(tmp_path):
    frame = pd.DataFrame({"Invoice": ["1"], "StockCode": ["85048"], "Description": ["X"], "Quantity": [1],
                          "InvoiceDate": ["2010-01-01 10:00"], "Price": [1.0], "Country": ["Spain"]})
    frame.to_csv(tmp_path / "no_customer.csv", index=False)
    with pytest.raises(PrerecError, match=r"no_customer.csv: missing column\(s\) Customer ID"):
        load_domains([f"online-retail:{tmp_path / 'no_customer.csv'}"])
    with pytest.raises(PrerecError, match=r"no such file: .*missing.csv"):
        load_domains([f"online-retail:{tmp_path / 'no_customer.csv'},{tmp_path / 'missing.csv'}"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(PrerecError, match=r"no \.parquet, \.csv, \.tsv file in the folder"):
        load_domains([f"online-retail:{empty}"])
