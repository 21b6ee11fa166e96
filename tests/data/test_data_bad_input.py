"""Bad input through the command line: exit code 2 and one stderr line naming the file and the fault.

Also the two non-fatal cases: items without text are counted and reported (an error only where
text is required), and conflicting texts are resolved deterministically and counted.
"""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from prerec.cli import main
from prerec.data.readers import load_domain


def run_bad(capsys, *argv: str) -> str:
    """Run the CLI, expect rc 2 and exactly one stderr line; return it."""
    rc = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("prerec: error: ")
    return err[0]


def five_core(tmp_path, body: str, header: str = "userId itemId rate date"):
    f = tmp_path / "de_5core.txt"
    f.write_text(header + "\n" + body)
    return f


def test_missing_file(capsys, tmp_path):
    line = run_bad(capsys, "data", "stats", f"de=xmarket-5core:{tmp_path / 'de_5core.txt'}")
    assert "no such file" in line and "de_5core.txt" in line


def test_missing_companion_file(capsys, tmp_path):
    (tmp_path / "Toy.test.inter").write_text("user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0\t1\n")
    line = run_bad(capsys, "data", "stats", f"unisrec:{tmp_path}")
    assert "Toy.item2index" in line and "no such file" in line


def test_unknown_format(capsys, tmp_path):
    line = run_bad(capsys, "data", "stats", f"x=xmarket5:{tmp_path}")
    assert "unknown format 'xmarket5'" in line and "xmarket-5core" in line


def test_misnamed_columns(capsys, tmp_path):
    f = five_core(tmp_path, "u1 B1 5.0 2016-06-13\n", header="user item rate date")
    line = run_bad(capsys, "data", "stats", f"xmarket-5core:{f}")
    assert str(f) in line and "missing column(s) userId, itemId" in line and "found user, item" in line


def test_missing_columns_canonical(capsys, tmp_path):
    pd.DataFrame({"user": ["a"], "item_id": ["x"]}).to_csv(tmp_path / "interactions.csv", index=False)
    line = run_bad(capsys, "data", "stats", f"canonical:{tmp_path}")
    assert "interactions.csv" in line and "missing column(s) user_id" in line


def test_recbole_header_without_types(capsys, tmp_path):
    (tmp_path / "x.inter").write_text("user_id\titem_id\nu\ti\n")
    line = run_bad(capsys, "data", "stats", f"recbole:{tmp_path / 'x.inter'}")
    assert "x.inter" in line and "name:type" in line


def test_unparsable_date(capsys, tmp_path):
    f = five_core(tmp_path, "u1 B1 5.0 2016-06-13\nu2 B2 5.0 2016-13-45\n")
    line = run_bad(capsys, "data", "stats", f"xmarket-5core:{f}")
    assert str(f) in line and "'2016-13-45'" in line and "line 3" in line and "YYYY-MM-DD" in line


def test_unparsable_timestamp_recbole(capsys, tmp_path):
    f = tmp_path / "x.inter"
    f.write_text("user_id:token\titem_id:token\ttimestamp:float\nu\ti\t100\nu\tj\tsoon\n")
    line = run_bad(capsys, "data", "stats", f"recbole:{f}")
    assert str(f) in line and "'soon'" in line and "row 2" in line


def test_unparsable_timestamp_canonical(capsys, tmp_path):
    pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "timestamp": ["2011-01-01", "yesterday"]}).to_csv(
        tmp_path / "interactions.csv", index=False)
    line = run_bad(capsys, "data", "stats", f"canonical:{tmp_path}")
    assert "interactions.csv" in line and "'yesterday'" in line


def test_invalid_json_lines(capsys, tmp_path):
    d = tmp_path / "de" / "Electronics"
    d.mkdir(parents=True)
    with gzip.open(d / "reviews_de_Electronics.json.gz", "wt") as f:
        f.write('{"reviewerID": "u", "asin": "A", "cleanReviewTime": "2019-01-01"}\n{"reviewerID": oops}\n')
    line = run_bad(capsys, "data", "stats", f"xmarket:{tmp_path}")
    assert "reviews_de_Electronics.json.gz" in line and "line 2 is not valid JSON" in line


def online_retail_fixture(tmp_path, invoices: list[str], countries: list[str]):
    n = len(invoices)
    df = pd.DataFrame({
        "InvoiceNo": invoices, "StockCode": ["85123A"] * n, "Description": ["HEART"] * n,
        "Quantity": [1] * n, "InvoiceDate": pd.to_datetime(["2011-01-01 10:00"] * n),
        "UnitPrice": [1.0] * n, "CustomerID": [12345.0] * n, "Country": countries,
    })
    path = tmp_path / "retail.parquet"
    df.to_parquet(path)
    return path


def test_domain_empty_after_cleaning(capsys, tmp_path):
    path = online_retail_fixture(tmp_path, ["C1", "C2", "3"], ["Germany", "Germany", "France"])
    line = run_bad(capsys, "data", "stats", f"online-retail:{path}#Germany")
    assert str(path) in line and "'Germany'" in line and "no interactions left after cleaning" in line


def test_every_domain_empty_after_cleaning(capsys, tmp_path):
    path = online_retail_fixture(tmp_path, ["C1", "C2"], ["Germany", "France"])
    line = run_bad(capsys, "data", "stats", f"online-retail:{path}")
    assert str(path) in line and "left after cleaning" in line


def test_empty_log_file(capsys, tmp_path):
    f = five_core(tmp_path, "")
    line = run_bad(capsys, "data", "stats", f"xmarket-5core:{f}")
    assert str(f) in line and "no interactions" in line


def test_items_without_text_reported_not_fatal(capsys, tmp_path):
    f = five_core(tmp_path, "u1 B1 5.0 2016-06-13\nu1 B2 5.0 2016-06-14\n")
    assert main(["data", "stats", f"xmarket-5core:{f}"]) == 0
    assert "2 of 2 items have no text" in capsys.readouterr().out


def test_items_without_text_fatal_where_text_is_required(capsys, tmp_path):
    f = five_core(tmp_path, "u1 B1 5.0 2016-06-13\nu1 B2 5.0 2016-06-14\n")
    line = run_bad(capsys, "data", "stats", "--require-text", f"xmarket-5core:{f}")
    assert str(f) in line and "no item text" in line


def test_conflicting_texts_resolved_and_counted(capsys, tmp_path):
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}).to_csv(
        tmp_path / "interactions.csv", index=False)
    # x: "Beta" twice beats "Alpha" once; y: a tie, the lexicographically smallest wins
    pd.DataFrame({"item_id": ["x", "x", "x", "y", "y"],
                  "text": ["Beta", "Alpha", "Beta", "Zed", "Yak"]}).to_csv(tmp_path / "items.csv", index=False)
    assert main(["data", "stats", f"canonical:{tmp_path}"]) == 0
    assert "2 items had several texts" in capsys.readouterr().out
    for _ in range(2):  # and the same choice every time
        d = load_domain(f"canonical:{tmp_path}")
        assert d.texts.to_dict() == {"x": "Beta", "y": "Yak"} and d.report.conflicting_texts == 2


@pytest.mark.parametrize("spec", ["unisrec", "recbole", "movielens", "xmarket"])
def test_folder_without_the_format_files(capsys, tmp_path, spec):
    line = run_bad(capsys, "data", "stats", f"{spec}:{tmp_path}")
    assert str(tmp_path) in line
