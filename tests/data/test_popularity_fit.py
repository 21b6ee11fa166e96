"""The popularity-window fit statistics: distributions against scipy's, and fits judged on
synthetic draws whose law is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from prerec.popularity import PopularityIndex
from prerec.popularity_fit import (
    HALF_NORMAL_RATIOS,
    MODELS,
    fit_window,
    ks_normal,
    log_pmf,
    log_sf,
    normalisers,
    quantile_residuals,
    summarise,
)

K = np.arange(1, 30)


def reference_log_pmf(model: str, theta: np.ndarray) -> np.ndarray:
    """The slow obvious reference: scipy.stats' laws, discretised or truncated by hand."""
    if model == "half-normal":
        d = stats.halfnorm(scale=theta[0])
        return np.log(d.cdf(K) - d.cdf(K - 1))
    if model == "log-normal":
        d = stats.lognorm(theta[1], scale=np.exp(theta[0]))
        return np.log(d.cdf(K) - d.cdf(K - 1))
    if model == "power-law":
        return stats.zipf.logpmf(K, theta[0])
    r, p = theta
    return stats.nbinom.logpmf(K, r, p) - np.log1p(-stats.nbinom.pmf(0, r, p))


THETAS = {"half-normal": np.array([6.0]), "log-normal": np.array([1.2, 0.9]),
          "power-law": np.array([2.3]), "neg-binomial": np.array([0.8, 0.2])}


@pytest.mark.parametrize("model", MODELS)
def test_pmf_and_tail_agree_with_scipy(model):
    theta = THETAS[model]
    assert np.allclose(log_pmf(model, K, theta), reference_log_pmf(model, theta), atol=1e-9)
    # the tail is what the pmf leaves: P(C > k) = 1 - sum_{i <= k} P(C = i)
    tail = 1 - np.cumsum(np.exp(log_pmf(model, K, theta)))
    assert np.allclose(np.exp(log_sf(model, K, theta)), tail, atol=1e-9)
    assert log_sf(model, np.array([0]), theta)[0] == pytest.approx(0.0, abs=1e-12)


def draws(law: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if law == "half-normal":
        x = np.ceil(np.abs(rng.normal(0, 5.0, n)))
    elif law == "log-normal":
        x = np.ceil(rng.lognormal(1.0, 1.0, n))
    else:
        x = rng.zipf(2.0, n)
    return np.maximum(x, 1).astype(np.int64)  # ceil(X) = 0 has probability 0


@pytest.mark.parametrize("law", ["half-normal", "log-normal", "power-law"])
def test_draws_are_judged_by_their_law(law):
    rng = np.random.default_rng(1)
    fits = [fit_window(draws(law, 1500, rng), rng) for _ in range(4)]
    s = summarise(fits)
    assert s["best_aic"] == law
    assert s["won"][law] >= 0.75
    assert s["ks"][law] < 0.03  # its pooled residuals are N(0, 1) ...
    if law != "log-normal":  # ... and the half-normal's are far from it on heavy tails (and back)
        other = "log-normal" if law == "half-normal" else "half-normal"
        assert s["aic_per_item"][other] > 0.05


def test_half_normal_fit_recovers_scale_and_ratios():
    rng = np.random.default_rng(2)
    f = fit_window(np.ceil(np.abs(rng.normal(0, 40.0, 20000))).astype(np.int64), rng)
    assert f.theta["half-normal"][0] == pytest.approx(40.0, rel=0.03)
    # with a large scale the discretisation is negligible: s_p / s_1 are the continuous law's
    assert np.allclose(f.ratios, HALF_NORMAL_RATIOS, rtol=0.02)


def test_residuals_under_the_true_law_are_standard_normal():
    rng = np.random.default_rng(3)
    c = rng.zipf(1.8, 5000)
    r = quantile_residuals("power-law", c, np.array([1.8]), rng)
    assert ks_normal(r) < 0.025
    assert stats.kstest(r, "norm").statistic == pytest.approx(ks_normal(r), abs=1e-12)


def test_normalisers_are_the_factors_denominators():
    items = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5, 5])
    index = PopularityIndex(items, None)
    _, counts = index.window(None)
    f = index.factors(None, np.array([5]))[0]
    assert np.allclose(5 / normalisers(counts), f, rtol=1e-6)


def test_all_ones_window_is_not_informative():
    rng = np.random.default_rng(4)
    s = summarise([fit_window(np.ones(40, np.int64), rng)])
    assert s["informative_windows"] == 0 and s["won"]["half-normal"] is None
    assert s["s_ratio_median"] == [1.0, 1.0, 1.0, 1.0] and s["share_ones"] == 1.0


def test_bad_window_is_refused():
    with pytest.raises(ValueError):
        fit_window(np.array([0, 3]), np.random.default_rng(0))
