"""EmbeddingTransform against slow, obviously-correct NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from prerec.errors import PrerecError
from prerec.text.postprocess import EmbeddingTransform


def domains(seed=0, dim=6):
    rng = np.random.default_rng(seed)
    shift = rng.normal(size=dim) * 3  # a strong common component, as e5 has
    return [rng.normal(size=(n, dim)) * rng.uniform(0.2, 2.0, size=dim) + shift for n in (40, 7, 15)]


def ref_mean(arrays):
    """Each domain weighs the same: mean of per-domain means, by explicit loops."""
    dim = arrays[0].shape[1]
    total = np.zeros(dim)
    for a in arrays:
        s = np.zeros(dim)
        for row in a:
            s += row
        total += s / len(a)
    return total / len(arrays)


def ref_cov(arrays, mu):
    dim = arrays[0].shape[1]
    total = np.zeros((dim, dim))
    for a in arrays:
        c = np.zeros((dim, dim))
        for row in a:
            c += np.outer(row - mu, row - mu)
        total += c / len(a)
    return total / len(arrays)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_center_matches_reference():
    arrays = domains()
    t = EmbeddingTransform().fit(arrays, kind="center")
    mu = ref_mean(arrays)
    np.testing.assert_allclose(t.mean, mu, rtol=1e-5, atol=1e-6)
    x = arrays[1]
    np.testing.assert_allclose(t.apply(x), unit(x - mu), rtol=1e-4, atol=1e-5)
    assert t.apply(x).dtype == np.float32


def test_whiten_matrix_is_inverse_sqrt_of_shrunk_covariance():
    arrays = domains(1)
    t = EmbeddingTransform(shrink=0.05).fit(arrays, kind="whiten")
    mu = ref_mean(arrays)
    cov = ref_cov(arrays, mu)
    eps = 0.05 * np.trace(cov) / cov.shape[0]
    w = t.matrix.astype(np.float64)
    np.testing.assert_allclose(w, w.T, atol=1e-5)  # ZCA: symmetric
    np.testing.assert_allclose(w @ w, np.linalg.inv(cov + eps * np.eye(len(cov))), rtol=1e-3, atol=1e-4)
    x = arrays[0]
    np.testing.assert_allclose(t.apply(x), unit((x - mu) @ w), rtol=1e-4, atol=1e-5)


def test_whitening_decorrelates_the_sources():
    arrays = domains(2)
    t = EmbeddingTransform(shrink=1e-6).fit(arrays, kind="whiten")
    z = [(a - t.mean) @ t.matrix for a in arrays]
    cov = ref_cov(z, np.zeros(z[0].shape[1]))
    np.testing.assert_allclose(cov, np.eye(len(cov)), atol=1e-3)


def test_none_only_normalises():
    x = domains()[0]
    t = EmbeddingTransform().fit(domains(), kind="none")
    np.testing.assert_allclose(t.apply(x), unit(x), rtol=1e-5)
    assert set(t.state_dict()) == {"kind", "shrink"}


@pytest.mark.parametrize("kind", ["none", "center", "whiten"])
def test_state_dict_round_trip_through_safetensors(tmp_path, kind):
    from safetensors.numpy import load_file, save_file

    arrays = domains(3)
    t = EmbeddingTransform().fit(arrays, kind=kind)
    state = t.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    save_file(state, str(tmp_path / "t.safetensors"))
    back = EmbeddingTransform.from_state_dict(load_file(str(tmp_path / "t.safetensors")))
    assert back.kind == kind
    np.testing.assert_array_equal(back.apply(arrays[2]), t.apply(arrays[2]))


def test_bad_input():
    with pytest.raises(PrerecError):
        EmbeddingTransform("pca")
    with pytest.raises(PrerecError):
        EmbeddingTransform().fit([], kind="center")
    t = EmbeddingTransform().fit(domains(dim=6), kind="center")
    with pytest.raises(PrerecError):
        t.apply(np.ones((2, 5)))
    with pytest.raises(PrerecError):
        EmbeddingTransform.from_state_dict({"kind": np.array([2])})
