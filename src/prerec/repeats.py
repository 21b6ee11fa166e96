"""The repeat mixture: whether the next item is one of the history's own, read from the history.

Domains differ in how often a user returns to an item: in Online Retail a customer re-orders
(16% of the United Kingdom's next items are already in the history), on Amazon reviews and
Last.fm artist lists almost never. PreRec's score ``s_j = U . V_j + g(F_j)`` (plus the transition
head) carries no notion of "already seen": its user tower puts the history's own items near
the top wherever it was trained, which a re-ordering domain rewards and a no-repeat domain
pays for with top slots that cannot be the answer. Which kind of domain a zero-shot target is
cannot be learned from the sources; but each request's history says how this user behaves.

With ``repeat_mixture`` on (a model key; off by default: the paper's score), the model ranks by
the two-component mixture (in the spirit of RepeatNet, Ren et al., AAAI 2019)

    P(j | h) = r_h P_repeat(j | h) + (1 - r_h) P_explore(j | h)

- ``r_h = (R_h + a) / (T_h + a + b)``: the history's own repeat rate, ``R_h`` of its ``T_h =
  L - 1`` transitions going to an item seen earlier in it, under a Beta(a, b) prior
  (:data:`REPEAT_PRIOR`: mean .0005, the weight of two transitions; chosen on held-out source
  countries, docs/popularity.md). A user who has not re-ordered yet is taken not to (a history
  item then ranks where a top-1% item would only if the model is very sure of it); one repeat
  in T transitions makes r_h about 1 / (T + 2). No parameter is fitted.
- ``P_explore``: the softmax of ``s`` over the items *not* in the history;
- ``P_repeat``: the softmax of ``s`` over the history's distinct items (the model's own
  preference among them).

``log P`` differs from ``s`` only on the history's items, by the same amount for all of them,

    delta_h = log(r_h / (1 - r_h)) + logsumexp_{i not in h} s_i - logsumexp_{i in h} s_i,

and by a constant per history elsewhere. So the score the library ranks by is ``s`` plus
``delta_h`` on the history's items: a sparse per-history bonus (served like the transition
head's), with one log-partition over the catalog per request. An empty history is left as is.
"""

from __future__ import annotations

import numpy as np
import torch

REPEAT_PRIOR = (0.001, 1.999)  # Beta(a, b) of the repeat rate: mean .0005, worth two transitions
REPEAT_CHOICES = ("run", "on", "off")  # --repeat-mixture: as the run was trained, or switched


def override(run, choice: str) -> None:
    """Switch a loaded run's ``repeat_mixture`` (``run``: leave it as trained). Nothing is fitted,
    so any run can rank with or without the mixture; its epoch was chosen with the run's own."""
    if choice not in REPEAT_CHOICES:
        raise ValueError(f"repeat mixture {choice!r}: expected one of {', '.join(REPEAT_CHOICES)}")
    if choice != "run":
        run.model.cfg.repeat_mixture = choice == "on"


def repeat_counts(histories: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, T) per history: transitions to an item seen earlier in it, and transitions (L - 1).

    ``histories`` are left-aligned rows padded with ``PAD`` after ``lengths``; negative entries
    (items outside the catalog) never count as a repeat.
    """
    h = np.asarray(histories, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    b, width = h.shape
    R = np.zeros(b, dtype=np.int64)
    cols = np.arange(width)
    for t in range(1, width):
        live = (t < lengths) & (h[:, t] >= 0)
        if not live.any():
            continue
        seen = ((h[:, :t] == h[:, t:t + 1]) & (cols[None, :t] < lengths[:, None])).any(axis=1)
        R += live & seen
    return R, np.maximum(lengths - 1, 0)


def repeat_rate(R: np.ndarray, T: np.ndarray, prior: tuple[float, float] = REPEAT_PRIOR) -> np.ndarray:
    """r_h = (R + a) / (T + a + b), float64."""
    a, b = prior
    return (np.asarray(R, np.float64) + a) / (np.asarray(T, np.float64) + a + b)


def history_mask(histories: np.ndarray, lengths: np.ndarray, n_items: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``(b, n_items)``: item j is one of the history's (catalog) items."""
    h = torch.as_tensor(np.asarray(histories, dtype=np.int64), device=device)
    lens = torch.as_tensor(np.asarray(lengths, dtype=np.int64), device=device)
    valid = (torch.arange(h.shape[1], device=device)[None, :] < lens[:, None]) & (h >= 0)  # PAD is -1
    mask = torch.zeros(len(h), n_items, dtype=torch.bool, device=device)
    rows = torch.arange(len(h), device=device)[:, None].expand_as(h)
    mask[rows[valid], h[valid]] = True
    return mask


def mixture_delta(r: np.ndarray, z_rest: np.ndarray, z_hist: np.ndarray) -> np.ndarray:
    """delta_h = log(r / (1 - r)) + z_rest - z_hist (float64): what the history's items gain.

    0 where it is undefined (no history item, or nothing outside the history)."""
    r, z_rest, z_hist = (np.asarray(v, dtype=np.float64) for v in (r, z_rest, z_hist))
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.log(r) - np.log1p(-r) + z_rest - z_hist
    return np.where(np.isfinite(delta), delta, 0.0)


def rest_partition(z_all: np.ndarray, z_hist: np.ndarray) -> np.ndarray:
    """logsumexp outside the history from the whole catalog's and the history's (float64)."""
    z_all, z_hist = np.asarray(z_all, np.float64), np.asarray(z_hist, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return z_all + np.log1p(-np.exp(np.minimum(z_hist - z_all, 0.0)))


def apply_repeat_mixture(scores: torch.Tensor, histories: np.ndarray, lengths: np.ndarray,
                         prior: tuple[float, float] = REPEAT_PRIOR) -> torch.Tensor:
    """``scores`` ``(b, n_items)`` (the full s) with delta_h added to each history's items, in place.

    Rows with an empty history, or whose history holds every item, are left unchanged.
    """
    mask = history_mask(histories, lengths, scores.shape[1], scores.device)
    R, T = repeat_counts(histories, lengths)
    s = scores.double()
    neg = torch.tensor(float("-inf"), dtype=torch.float64, device=scores.device)
    z_hist = torch.logsumexp(torch.where(mask, s, neg), dim=1).cpu().numpy()
    z_rest = torch.logsumexp(torch.where(mask, neg, s), dim=1).cpu().numpy()
    delta = mixture_delta(repeat_rate(R, T, prior), z_rest, z_hist) * (np.asarray(lengths) > 0)
    d = torch.as_tensor(delta, dtype=scores.dtype, device=scores.device)
    scores += torch.where(mask, d[:, None], torch.zeros((), dtype=scores.dtype, device=scores.device))
    return scores
