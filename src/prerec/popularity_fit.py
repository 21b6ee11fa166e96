"""How well a popularity window's counts fit the half-Gaussian the factors assume, and rivals.

The popularity factors F_j = c_j / (mean c^p)^(1/p), p = 1..4 (docs/data.md), rest on the
paper's assumption that a window's counts are half-Gaussian: then every normaliser s_p is a
fixed multiple of one scale, and F is comparable across domains. Here the counts c_j >= 1 of a
window are compared with four families on the support {1, 2, ...}, each fitted to the window by
maximum likelihood (its own scale per window, since traffic differs from window to window):

- ``half-normal``: C = ceil(X), X ~ half-normal(sigma) (the assumption, discretised; 1 parameter);
- ``log-normal``: C = ceil(X), X ~ log-normal(mu, s) (2 parameters);
- ``power-law``: the discrete power law (Zipf) P(C = k) = k^-alpha / zeta(alpha) (1 parameter);
- ``neg-binomial``: the zero-truncated negative binomial (r, p) (2 parameters).

Ceil-discretising a continuous law maps (0, 1] to 1, so the support starts at 1 as the counts of
a window's items do (an item is in a window only with c_j >= 1) and no truncation is needed.

Per window, :func:`fit_window` gives each model's log-likelihood and AIC, and the randomised
quantile residuals (Dunn and Smyth 1996): r = Phi^-1(u), u uniform between P(C < c) and
P(C <= c). Under the right model they are N(0, 1) whatever the window's parameters, which is
what lets windows of very different traffic be pooled into one QQ plot and one KS distance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

MODELS = ("half-normal", "log-normal", "power-law", "neg-binomial")
N_PARAMS = {"half-normal": 1, "log-normal": 2, "power-law": 1, "neg-binomial": 2}
POWERS = np.arange(1, 5, dtype=np.float64)
# s_p / s_1 of a continuous half-normal: (E X^p)^(1/p) / E X, with E X^p = sigma^p 2^(p/2) Gamma((p+1)/2) / sqrt(pi)
HALF_NORMAL_RATIOS = (
    (2.0 ** (POWERS / 2) * special.gamma((POWERS + 1) / 2) / np.sqrt(np.pi)) ** (1 / POWERS)
) / np.sqrt(2 / np.pi)


def _log_diff(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """log(a - b) from log a >= log b, stable when both are tiny."""
    with np.errstate(divide="ignore"):
        return log_a + np.log1p(-np.exp(np.minimum(log_b - log_a, 0.0)))


def log_sf(model: str, k: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """log P(C > k) for integers k >= 0 under ``model`` with parameters ``theta``."""
    k = np.asarray(k, dtype=np.float64)
    if model == "half-normal":
        return np.log(2.0) + special.log_ndtr(-k / theta[0])
    if model == "log-normal":
        with np.errstate(divide="ignore"):
            z = (np.log(k) - theta[0]) / theta[1]
        return np.where(k <= 0, 0.0, special.log_ndtr(-z))
    if model == "power-law":
        with np.errstate(divide="ignore"):
            return np.log(special.zeta(theta[0], k + 1)) - np.log(special.zeta(theta[0], 1.0))
    if model == "neg-binomial":
        r, p = theta
        with np.errstate(divide="ignore"):
            return np.log(special.betainc(k + 1, r, 1 - p)) - _log_nonzero(r, p)
    raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")


def _log_nonzero(r: float, p: float) -> float:
    """log P(N > 0) of a negative binomial N (the zero truncation's normaliser)."""
    return float(np.log(-np.expm1(r * np.log(p))))


def log_pmf(model: str, k: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """log P(C = k) for integers k >= 1."""
    k = np.asarray(k, dtype=np.float64)
    if model == "power-law":
        return -theta[0] * np.log(k) - np.log(special.zeta(theta[0], 1.0))
    if model == "neg-binomial":
        r, p = theta
        return (special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)
                + r * np.log(p) + k * np.log1p(-p) - _log_nonzero(r, p))
    return _log_diff(log_sf(model, k - 1, theta), log_sf(model, k, theta))


def _start_and_bounds(model: str, v: np.ndarray, w: np.ndarray) -> tuple[list[float], list[tuple]]:
    """A starting point and box bounds in the optimiser's coordinates (logs and logits)."""
    top = float(np.log(v.max()))
    if model == "half-normal":
        return [0.5 * np.log(np.average((v - 0.5) ** 2, weights=w))], [(np.log(0.05), top + 3)]
    if model == "log-normal":
        lv = np.log(v - 0.5)
        mu, sd = np.average(lv, weights=w), np.sqrt(np.average((lv - np.average(lv, weights=w)) ** 2, weights=w))
        return [mu, np.log(max(sd, 0.1))], [(-12.0, top + 3), (np.log(0.02), np.log(20.0))]
    if model == "power-law":
        alpha = 1 + w.sum() / max(float(np.sum(w * np.log(v / 0.5))), 1e-9)
        return [min(alpha, 29.0)], [(1.0 + 1e-6, 30.0)]
    m = float(np.average(v, weights=w))
    return [0.0, -np.log(m)], [(-10.0, 8.0), (-12.0, 20.0)]


def _theta(model: str, x: np.ndarray) -> np.ndarray:
    """Parameters from the optimiser's coordinates."""
    if model == "half-normal":
        return np.exp(x)
    if model == "log-normal":
        return np.array([x[0], np.exp(x[1])])
    if model == "power-law":
        return np.asarray(x, dtype=np.float64)
    return np.array([np.exp(x[0]), special.expit(x[1])])  # neg-binomial: log r, logit p


def fit_model(model: str, values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum-likelihood parameters and log-likelihood of ``model`` for the counts ``values``
    (distinct, >= 1) seen ``weights`` times each."""
    v, w = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    x0, bounds = _start_and_bounds(model, v, w)

    def nll(x: np.ndarray) -> float:
        out = -float(np.sum(w * log_pmf(model, v, _theta(model, np.atleast_1d(x)))))
        return out if np.isfinite(out) else 1e300

    if len(x0) == 1:
        res = optimize.minimize_scalar(nll, bounds=bounds[0], method="bounded", options={"xatol": 1e-6})
        x = np.atleast_1d(res.x)
    else:
        x = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds).x
        x = optimize.minimize(nll, x, method="Nelder-Mead", bounds=bounds,
                              options={"xatol": 1e-6, "fatol": 1e-9}).x  # polish the flat valleys
    return _theta(model, x), -nll(x)


def quantile_residuals(model: str, counts: np.ndarray, theta: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """Randomised quantile residuals Phi^-1(u), u ~ U(P(C < c), P(C <= c)), computed from the
    upper tail so that far-out counts keep their (large) residual instead of rounding to 1."""
    c = np.asarray(counts, dtype=np.float64)
    log_upper = np.logaddexp(log_sf(model, c, theta), np.log(rng.random(len(c))) + log_pmf(model, c, theta))
    return -special.ndtri_exp(np.minimum(log_upper, 0.0))


@dataclass
class WindowFit:
    """One window: its size, normaliser ratios and every model's fit."""

    n_items: int
    n_distinct: int
    ones: int  # items with c_j = 1
    scales: np.ndarray  # the normalisers s_1..s_4
    theta: dict[str, np.ndarray]
    loglik: dict[str, float]
    residuals: dict[str, np.ndarray]

    @property
    def ratios(self) -> np.ndarray:
        """s_p / s_1, p = 1..4 (a half-Gaussian window gives ``HALF_NORMAL_RATIOS``)."""
        return self.scales / self.scales[0]

    def aic(self, model: str) -> float:
        return 2 * N_PARAMS[model] - 2 * self.loglik[model]


def normalisers(counts: np.ndarray) -> np.ndarray:
    """s_p = (mean c^p)^(1/p), p = 1..4, as the popularity factors divide by."""
    c = np.asarray(counts, dtype=np.float64)
    return np.mean(c[None, :] ** POWERS[:, None], axis=1) ** (1 / POWERS)


def fit_window(counts: np.ndarray, rng: np.random.Generator,
               models: tuple[str, ...] = MODELS) -> WindowFit:
    """Fit every model to one window's positive counts."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) == 0 or counts.min() < 1:
        raise ValueError("a window's counts must be a non-empty array of integers >= 1")
    values, weights = np.unique(counts, return_counts=True)
    s = normalisers(counts)
    theta, loglik, resid = {}, {}, {}
    for m in models:
        theta[m], loglik[m] = fit_model(m, values, weights)
        resid[m] = quantile_residuals(m, counts, theta[m], rng)
    return WindowFit(len(counts), len(values), int(weights[0]) if values[0] == 1 else 0,
                     s, theta, loglik, resid)


def ks_normal(residuals: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the residuals' empirical CDF and N(0, 1)."""
    r = np.sort(residuals)
    n = len(r)
    cdf = special.ndtr(r)
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def summarise(fits: list[WindowFit], models: tuple[str, ...] = MODELS,
              informative: Callable[[WindowFit], bool] | None = None) -> dict:
    """A domain's statistics over its windows (see docs/popularity.md for their reading).

    ``aic_per_item``: the windows' AICs summed, divided by the items summed, minus the best
    model's (0 = best); ``won``: share of informative windows (default: >= 10 items and >= 2
    distinct counts) whose lowest AIC is the model's; ``ks``: KS distance of the pooled
    quantile residuals to N(0, 1).
    """
    informative = informative or (lambda f: f.n_items >= 10 and f.n_distinct >= 2)
    n = sum(f.n_items for f in fits)
    aic = {m: sum(f.aic(m) for f in fits) / n for m in models}
    best = min(aic.values())
    useful = [f for f in fits if informative(f)]
    won = {m: 0 for m in models}
    for f in useful:
        won[min(models, key=f.aic)] += 1
    ratios = np.array([f.ratios for f in fits])
    return {
        "windows": len(fits),
        "informative_windows": len(useful),
        "pooled_counts": n,
        "items_per_window_median": float(np.median([f.n_items for f in fits])),
        "share_ones": sum(f.ones for f in fits) / n,
        "s_ratio_median": np.median(ratios, axis=0).tolist(),
        "s4_s1_p10_p90": np.percentile(ratios[:, 3], [10, 90]).tolist(),
        "f2_of_count_one_median": float(np.median([1 / f.scales[1] for f in fits])),
        "aic_per_item": {m: aic[m] - best for m in models},
        "loglik_per_item": {m: sum(f.loglik[m] for f in fits) / n for m in models},
        "won": {m: (won[m] / len(useful) if useful else None) for m in models},
        "ks": {m: ks_normal(np.concatenate([f.residuals[m] for f in fits])) for m in models},
        "best_aic": min(models, key=aic.get),
    }
