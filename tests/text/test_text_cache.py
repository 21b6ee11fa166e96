"""The embedding cache: hits and misses, identity separation, memory-mapped reads, concurrency."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest

from prerec.data.domain import build_domain
from prerec.errors import PrerecError
from prerec.text import HashEncoder, embed_catalog
from prerec.text import cache as cache_mod
from prerec.text.cache import EmbeddingCache, default_cache_dir, encode_cached, text_keys
from prerec.text.catalog import embed_catalog_stats


class Counting(HashEncoder):
    """A hash encoder that records every text it is asked to encode."""

    def __init__(self, dim=16, identity=None):
        super().__init__(dim)
        if identity:
            self.identity = identity
        self.seen: list[str] = []

    def encode(self, texts, *, progress=False):
        self.seen.extend(texts)
        return super().encode(texts, progress=progress)


TEXTS = ["red mug", "blue teapot", "red mug", "", "Tasse rouge", "ボールペン"]


def test_second_run_encodes_nothing(tmp_path):
    enc = Counting()
    first, st1 = encode_cached(enc, TEXTS, cache_dir=tmp_path)
    assert sorted(enc.seen) == sorted(set(TEXTS)) and st1.encoded == 5 and st1.texts == 6
    enc.seen.clear()
    second, st2 = encode_cached(enc, TEXTS, cache_dir=tmp_path)
    assert enc.seen == [] and st2.encoded == 0 and st2.cached == 5
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(second, HashEncoder(16).encode(TEXTS))


def test_only_new_or_changed_texts_are_encoded(tmp_path):
    enc = Counting()
    encode_cached(enc, ["a b", "c d", "e f"], cache_dir=tmp_path)
    enc.seen.clear()
    out, st = encode_cached(enc, ["a b", "c d changed", "e f", "g h"], cache_dir=tmp_path)
    assert sorted(enc.seen) == ["c d changed", "g h"] and st.encoded == 2
    np.testing.assert_allclose(out, HashEncoder(16).encode(["a b", "c d changed", "e f", "g h"]))


def test_identity_separation(tmp_path):
    a, b = Counting(16, identity="model-a"), Counting(16, identity="model-b")
    xa, _ = encode_cached(a, TEXTS, cache_dir=tmp_path)
    _, st = encode_cached(b, TEXTS, cache_dir=tmp_path)
    assert st.encoded == 5 and sorted(b.seen) == sorted(set(TEXTS))  # nothing served across identities
    other_dim = Counting(32)
    _, st = encode_cached(other_dim, TEXTS, cache_dir=tmp_path)
    assert st.encoded == 5
    ca, cb = EmbeddingCache(tmp_path, "model-a", 16), EmbeddingCache(tmp_path, "model-b", 16)
    assert ca.dir != cb.dir
    assert not np.intersect1d(text_keys("model-a", TEXTS), text_keys("model-b", TEXTS)).size
    hit, found = ca.lookup(text_keys("model-a", ["red mug"]))
    assert hit.all()
    np.testing.assert_array_equal(found[0], xa[0])
    assert not cb.lookup(text_keys("model-a", ["red mug"]))[0].any()


def test_identity_file_is_checked(tmp_path):
    c = EmbeddingCache(tmp_path, "model-a", 16)
    (c.dir / "identity.json").write_text('{"identity": "model-z", "dim": 16}')
    with pytest.raises(PrerecError, match="belongs to encoder 'model-z'"):
        EmbeddingCache(tmp_path, "model-a", 16)


def test_reads_are_memory_mapped(tmp_path):
    enc = Counting()
    encode_cached(enc, TEXTS, cache_dir=tmp_path)
    c = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    assert len(c) == 5
    assert c._shards and all(isinstance(s, np.memmap) for s in c._shards)
    hit, emb = c.lookup(text_keys(enc.identity, ["blue teapot", "unknown"]))
    assert hit.tolist() == [True, False]
    np.testing.assert_allclose(emb[0], HashEncoder(16).encode(["blue teapot"])[0])


def test_no_cache_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PREREC_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    enc = Counting()
    encode_cached(enc, ["x"], cache_dir=False)
    assert not (tmp_path / "envcache").exists()
    encode_cached(enc, ["x"])  # None: the environment's folder
    assert list((tmp_path / "envcache" / "embeddings").glob("*/*.keys.npy"))
    monkeypatch.delenv("PREREC_CACHE_DIR")
    assert str(default_cache_dir()).endswith(".cache/prerec")


def test_compaction_keeps_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "COMPACT_AT", 3)
    enc = Counting()
    texts = [f"item {k}" for k in range(12)]
    for k in range(0, 12, 2):  # six runs, one shard each; merged whenever more than three
        encode_cached(enc, texts[: k + 2], cache_dir=tmp_path)
    c = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    assert len(list(c.dir.glob("*.keys.npy"))) <= 3
    assert not list(c.dir.glob(".tmp-*"))
    enc.seen.clear()
    out, st = encode_cached(enc, texts, cache_dir=tmp_path)
    assert st.encoded == 0
    np.testing.assert_allclose(out, HashEncoder(16).encode(texts))


def test_leftovers_of_a_crash_are_ignored(tmp_path):
    enc = Counting()
    encode_cached(enc, ["a"], cache_dir=tmp_path)
    c = EmbeddingCache(tmp_path, enc.identity, enc.dim)
    np.save(c.dir / "orphan.emb.npy", np.ones((3, 16), np.float32))  # written, keys never renamed in
    (c.dir / ".tmp-123-x.keys.npy").write_bytes(b"partial")
    enc.seen.clear()
    _, st = encode_cached(enc, ["a", "b"], cache_dir=tmp_path)
    assert enc.seen == ["b"] and st.cached == 1


def _writer(root, worker, rounds):
    enc = HashEncoder(16)
    for r in range(rounds):
        texts = [f"shared {k}" for k in range(30)] + [f"w{worker} r{r} {k}" for k in range(20)]
        encode_cached(enc, texts, cache_dir=root)


def test_two_processes_writing_the_same_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "COMPACT_AT", 4)  # forked workers inherit it: merges race with writes
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, w, 8)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    texts = [f"shared {k}" for k in range(30)] + [f"w{w} r{r} {k}" for w in range(2) for r in range(8) for k in range(20)]
    enc = Counting()
    out, st = encode_cached(enc, texts, cache_dir=tmp_path)
    assert st.encoded == 0
    np.testing.assert_allclose(out, HashEncoder(16).encode(texts), atol=1e-7)


def test_embed_catalog_aligned_and_cached(tmp_path):
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["i3", "i1", "i2", "i3"]})
    texts = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "text": ["red mug", "", "blue teapot"]})
    domain = build_domain("shop", inter, texts, source="test")
    enc = Counting()
    emb = embed_catalog(domain, enc, cache_dir=tmp_path)
    assert emb.shape == (domain.n_items, 16)
    expected = HashEncoder(16).encode(domain.texts.tolist())
    np.testing.assert_allclose(emb, expected)
    enc.seen.clear()
    emb2, st = embed_catalog_stats(domain, enc, cache_dir=tmp_path)
    assert enc.seen == [] and st.encoded == 0
    np.testing.assert_array_equal(emb, emb2)


def test_unwritable_cache_still_answers(tmp_path, monkeypatch, caplog):
    enc = Counting()
    encode_cached(enc, ["a"], cache_dir=tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "_atomic_save", full_disk)
    out, st = encode_cached(enc, ["a", "b"], cache_dir=tmp_path)
    assert st.encoded == 1 and "could not store" in caplog.text
    np.testing.assert_allclose(out, HashEncoder(16).encode(["a", "b"]))
