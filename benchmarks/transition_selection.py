"""How the transition head's form and weight were chosen: on a run's held-out source domains only.

    python benchmarks/transition_selection.py RUN [--data SPEC ...]

``RUN`` is a pre-trained run with ``select_on`` domains (held out of training; B1's runs hold out
EIRE and Netherlands) and item identity. On those domains' validation users, zero-shot, with the
transition counts of the trained sources (the run's head), it prints for f = log(1 + T) and
f = sqrt(T): Recall@1% and r-NDCG@1% of PreRec's score plus beta * f over a grid of beta (and f
alone, PreRec breaking its ties), and the maximum-likelihood fit of beta (with and without a
temperature on PreRec's score). No target domain is read. The figures are in docs/identity.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from prerec.data import load_domains
from prerec.data.instances import make_instances
from prerec.evaluation.metrics import instance_metrics, rank_counts
from prerec.intervention import PreRecRecommender
from prerec.run import load_run
from prerec.training.transitions import fit_beta
from prerec.transitions import history_entries

FORMS = {"log1p": np.log1p, "sqrt": np.sqrt}
GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def held_out_data(run, specs: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """(PreRec scores without the head, dense T, targets, catalog size) of each held-out domain."""
    if not run.config.select_on or run.transitions is None:
        raise SystemExit("the run needs select_on domains and a transition head (item identity)")
    domains = {d.name: d for d in load_domains(specs)}
    rec = PreRecRecommender(run, transitions=False)
    out = []
    for name in run.config.select_on:
        d = run.prepare(domains[name])
        inst = make_instances(d.split.valid)
        hist, lengths = inst.histories(run.model.cfg.max_history)
        scores = rec.score(d, hist, lengths, inst.days)
        rows, items, t = history_entries(run.transitions.table(run.identity.lookup(d.domain)), hist, lengths,
                                         run.transitions.last)
        T = np.zeros_like(scores, dtype=np.float64)
        T[rows, items] = t
        out.append((scores, T, inst.targets, d.n_items))
    return out


def metrics(data, score) -> tuple[float, float]:
    """Mean over the held-out domains of Recall@1% and r-NDCG@1% under ``score(s, T)``."""
    r = []
    for s, T, y, n in data:
        higher, tied = rank_counts(score(s, T).astype(np.float32), y)
        m = instance_metrics(higher, tied, n, 0.01)
        r.append((float(np.mean(m["recall@k%"])), float(np.mean(m["rndcg@k%"]))))
    return tuple(np.mean(r, axis=0))


def likelihood_without_temperature(data, f) -> float:
    """The beta maximising the next item's log-likelihood of softmax(s + beta f), on a grid."""
    def nll(beta: float) -> float:
        return sum(float((torch.logsumexp(torch.from_numpy(s + beta * f(T)).double(), 1)
                          - torch.from_numpy(s + beta * f(T)).double()[torch.arange(len(y)), torch.from_numpy(y)]).sum())
                   for s, T, y, _ in data)

    grid = np.linspace(0, 6, 61)
    return float(grid[int(np.argmin([nll(b) for b in grid]))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", nargs="*", default=["online-retail:embedded"], help="domain specs holding select_on")
    args = ap.parse_args()
    run = load_run(args.run)
    data = held_out_data(run, args.data)
    print(f"held out: {', '.join(run.config.select_on)} ({sum(len(y) for _, _, y, _ in data)} validation instances)\n")
    print("| f | beta | Recall@1% | r-NDCG@1% |\n|---|---|---|---|")
    for name, f in FORMS.items():
        for beta in GRID:
            rec, nd = metrics(data, lambda s, T, b=beta, f=f: s + b * f(T))
            print(f"| {name} | {beta:g} | {rec:.4f} | {nd:.4f} |")
        rec, nd = metrics(data, lambda s, T, f=f: 1e-3 * s + f(T))
        print(f"| {name} | f alone (PreRec breaks ties) | {rec:.4f} | {nd:.4f} |")
    print("\n| f | beta, likelihood without temperature | beta, with temperature | NLL per instance | "
          "NLL without the head | Recall@1% / r-NDCG@1% at that beta |\n|---|---|---|---|---|---|")
    for name, f in FORMS.items():
        fit = fit_beta([(torch.from_numpy(s).double(), torch.from_numpy(f(T)).double(), torch.from_numpy(y))
                        for s, T, y, _ in data])
        rec, nd = metrics(data, lambda s, T, b=fit["beta"], f=f: s + b * f(T))
        print(f"| {name} | {likelihood_without_temperature(data, f):.2f} | {fit['beta']:.2f} | {fit['nll']:.4f} | "
              f"{fit['nll_without_head']:.4f} | {rec:.4f} / {nd:.4f} |")


if __name__ == "__main__":
    main()
