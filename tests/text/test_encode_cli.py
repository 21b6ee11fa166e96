"""``prerec encode``: --texts-file to .npy, catalogs into the cache, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from prerec.cli import main
from prerec.text import HashEncoder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREREC_CACHE_DIR", str(tmp_path / "cache"))


def test_texts_file_to_npy(tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_bytes("\ufeffred mug\r\n\r\nTasse rouge\nボールペン\n".encode())
    out = tmp_path / "sub" / "out.npy"
    assert main(["encode", "--texts-file", str(f), "--out", str(out), "--encoder", "hash:16"]) == 0
    x = np.load(out)
    assert x.shape == (4, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(x, HashEncoder(16).encode(["red mug", "", "Tasse rouge", "ボールペン"]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "texts/s" in lines[-1] and lines[-1].startswith("encoded 4 texts in")
    assert not list(out.parent.glob("*.tmp"))


def test_texts_file_with_e5(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("wireless mouse\nsouris sans fil\n", encoding="utf-8")
    out = tmp_path / "e5.npy"
    assert main(["-q", "encode", "--texts-file", str(f), "--out", str(out)]) == 0  # e5 is the default
    x = np.load(out)
    assert x.shape == (2, 384) and float(x[0] @ x[1]) > 0.8


@pytest.mark.parametrize(
    "content, expected",
    [(None, "no such file"), (b"caf\xe9 au lait\n", "not UTF-8"), (b"", "empty"), (b"\n  \n", "empty")],
)
def test_bad_texts_file_is_one_line(tmp_path, capsys, content, expected):
    f = tmp_path / "t.txt"
    if content is not None:
        f.write_bytes(content)
    code = main(["encode", "--texts-file", str(f), "--out", str(tmp_path / "o.npy"), "--encoder", "hash:8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("prerec: error:") and expected in err[0]
    assert str(f) in err[0]
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--texts-file", "{f}"], "needs --out"),
        (["--texts-file", "{f}", "--out", "{d}/o.txt"], "expected a .npy"),
        ([], "nothing to encode"),
        (["--texts-file", "{f}", "--out", "{d}/o.npy", "--encoder", "nope"], "unknown encoder"),
    ],
)
def test_bad_arguments(tmp_path, capsys, argv, expected):
    f = tmp_path / "t.txt"
    f.write_text("a\n")
    argv = [a.format(f=f, d=tmp_path) for a in argv]
    assert main(["encode", *argv]) == 2
    assert expected in capsys.readouterr().err


def canonical_domain(folder):
    folder.mkdir()
    pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"]}).to_parquet(folder / "interactions.parquet")
    pd.DataFrame({"item_id": ["a", "b"], "text": ["red mug", "blue teapot"]}).to_parquet(folder / "items.parquet")


def test_catalogs_into_the_cache(tmp_path, capsys):
    canonical_domain(tmp_path / "shop")
    argv = ["encode", f"shop=canonical:{tmp_path / 'shop'}", "--encoder", "hash:16", "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0
    first = capsys.readouterr().out.strip().splitlines()
    assert first[0].startswith("shop: 2 items, 2 encoded") and "texts/s" in first[-1]
    assert list((tmp_path / "c" / "embeddings").glob("hash-16-*/*.emb.npy"))
    assert main(argv) == 0
    assert "0 encoded, 2 from cache" in capsys.readouterr().out


def test_exit_code_of_the_installed_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from prerec.cli import main; sys.exit(main())", "encode", "--texts-file", str(tmp_path / "missing.txt"), "--out",
         str(tmp_path / "o.npy"), "--encoder", "hash:8"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
