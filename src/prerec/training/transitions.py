"""Fit the transition head's beta after pre-training, on held-out users only.

The head adds beta * log(1 + T_h(j)) to PreRec's zero-shot score, T the sources' transition
counts by shared identity (:mod:`prerec.transitions`). beta is the one number it has; it is
chosen the way every other choice of a run is: on users no target test set contains, under the
conditions of zero-shot use. The selection users are the validation users of the ``select_on``
domains (held out of training), or, without them, of every trained source; each selection
domain is scored with counts from the *other* trained sources only, so its own transitions never
score it (as a new domain's never do).

beta maximises the full-ranking log-likelihood of the next item, fitted jointly with a
temperature on PreRec's score (softmax(alpha s + beta' f); ranking uses beta = beta' / alpha),
since the pre-trained logits are not calibrated against a new term (without it the fit gives a
beta well below the held-out ranking's best: docs/identity.md). A fitted beta below 0 is set
to 0 (the head then changes nothing) and said so.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.intervention import PreRecRecommender
from prerec.run import Run
from prerec.transitions import TransitionHead, TransitionTable, catalog_table, history_entries, identity_pairs

log = logging.getLogger(__name__)
MAX_SCORES = 50_000_000  # score-matrix entries kept for the fit (instances x catalog, all domains)


def _domain_data(run: Run, head: TransitionHead, table: TransitionTable, d: PreparedDomain, budget: int,
                 inference: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(PreRec scores without the head, dense log(1 + T), targets) of ``d``'s validation users."""
    inst = make_instances(d.split.valid)
    cap = max(budget // max(d.n_items, 1), 1)
    if len(inst) > cap:
        inst = inst.take(np.sort(np.random.default_rng(run.config.seed).choice(len(inst), cap, replace=False)))
    if not len(inst):
        return None
    hist, lengths = inst.histories(run.model.cfg.max_history)
    scores = PreRecRecommender(run, inference, transitions=False).score(d, hist, lengths, inst.days)
    rows, items, t = history_entries(table, hist, lengths, head.last)
    f = np.zeros_like(scores)
    f[rows, items] = np.log1p(t)
    return torch.from_numpy(scores).double(), torch.from_numpy(f).double(), torch.from_numpy(inst.targets)


def refit_beta(run: Run, head: TransitionHead, domains: list[tuple[PreparedDomain, TransitionTable]],
               inference: str = "zero-shot", counts_from: str = "") -> TransitionHead:
    """``head`` with beta fitted on the validation users of ``domains`` (each with its table)."""
    budget = MAX_SCORES // max(len(domains), 1)
    data = [x for d, table in domains if (x := _domain_data(run, head, table, d, budget, inference))]
    names = [d.name for d, _ in domains]
    if not data:
        log.warning("transition head: no validation users in %s to fit beta on; the head is off (beta = 0)",
                    ", ".join(names))
        return replace(head, beta=0.0, fitted={"on": names, "instances": 0})
    fit = fit_beta(data)
    if fit["beta_raw"] < 0:
        log.warning("transition head: the fitted beta is negative (%.3f); set to 0 (the head is off)", fit["beta_raw"])
    log.info("transition head: beta %.3f fitted on the validation users of %s (%d instances, %s); "
             "log-likelihood per instance %.4f -> %.4f", fit["beta"], ", ".join(names), fit["instances"], inference,
             -fit["nll_without_head"], -fit["nll"])
    return replace(head, beta=float(fit["beta"]),
                   fitted={**fit, "on": names, "split": "valid", "inference": inference, "counts_from": counts_from})


def _minimise(loss, start: list[float]) -> tuple[list[float], float]:
    """LBFGS over a few scalars: (argmin, min)."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss(p)
        value.backward()
        return value

    opt.step(closure)
    with torch.no_grad():
        return [float(v) for v in p], float(loss(p))


def fit_beta(data: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict:
    """(alpha, beta') maximising sum log softmax(alpha s + beta' f)[target]; beta = beta' / alpha.

    ``nll_without_head``: the same fit with beta' = 0 (alpha alone), for the record."""
    n = max(sum(len(y) for _, _, y in data), 1)

    def nll(alpha: torch.Tensor, beta: torch.Tensor | float) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for s, f, y in data:
            z = alpha * s + beta * f
            total = total + (torch.logsumexp(z, 1) - z[torch.arange(len(y)), y]).sum()
        return total / n

    (alpha, beta), fitted = _minimise(lambda p: nll(p[0], p[1]), [1.0, 0.0])
    _, without = _minimise(lambda p: nll(p[0], 0.0), [1.0])
    ratio = beta / alpha if alpha > 0 else 0.0
    return {"beta": max(ratio, 0.0), "alpha": alpha, "beta_raw": beta, "nll": fitted, "nll_without_head": without,
            "instances": sum(len(y) for _, _, y in data)}


def fit_transition_head(run: Run, prepared: list[PreparedDomain]) -> TransitionHead | None:
    """The run's transition head (counts over its trained sources, beta fitted held out), or
    ``None`` when the run has no item identity or ``transition_head`` is off."""
    if run.identity is None or run.model.identity is None or not run.config.transition_head:
        return None
    trained = [p for p in prepared if p.name in run.source_names]
    maps = {p.name: run.identity.lookup(p.domain) for p in prepared}
    n = len(run.identity)
    head = TransitionHead(*identity_pairs(maps, trained, n), n)
    held = [p for p in prepared if p.name in run.config.select_on]
    chosen = []
    for d in held or trained:  # each scored with the counts of the *other* trained sources
        others = identity_pairs(maps, [p for p in trained if p.name != d.name], n)
        chosen.append((d, catalog_table(*others, n, maps[d.name])))
    return refit_beta(run, head, chosen, "zero-shot", "the trained sources other than the scored domain")
