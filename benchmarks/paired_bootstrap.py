"""Paired difference of two models of one benchmark run, with a bootstrap interval over test users.

    python benchmarks/paired_bootstrap.py RUN/instances.parquet MODEL_A MODEL_B [--ratio 0.01]
        [--domain NAME] [--b-from OTHER/instances.parquet]

Reads the per-instance ranks ``prerec experiment`` writes (``instances.parquet``), takes the
instances both models scored (the same test users), and prints A - B for Recall@K% and r-NDCG@K%
as the benchmark tables average them (over instances within a target, then over targets without
weights) with a 95% percentile interval from resampling users within each target (1,000 draws):
an instance's outcome depends on its user, so users, not instances, are the unit. ``--domain``
keeps one target; ``--b-from`` reads MODEL_B from another instance file of the same test users
(a per-seed file ``instances-seed{S}.parquet`` holds only the seeded rows; the training-free
rows are in ``instances.parquet``).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from prerec.evaluation.metrics import instance_metrics

KEYS = ("recall@k%", "rndcg@k%")


def paired(frame: pd.DataFrame, a: str, b: str, ratio: float = 0.01, draws: int = 1000,
           seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{metric: (A - B, low, high)} over the instances both models have."""
    def ranks(model: str) -> pd.DataFrame:
        d = frame[frame.model == model]
        if d.empty:
            raise SystemExit(f"no instances of model {model!r} (have: {', '.join(sorted(frame.model.unique()))})")
        return d.sort_values(["domain", "user_id", "position"]).reset_index(drop=True)

    x, y = ranks(a), ranks(b)
    if not (x[["domain", "user_id", "position"]].equals(y[["domain", "user_id", "position"]])):
        raise SystemExit(f"{a} and {b} were not scored on the same test instances")
    mx = instance_metrics(x.n_higher.to_numpy(), x.n_tied.to_numpy(), x.n_items.to_numpy(), ratio)
    my = instance_metrics(y.n_higher.to_numpy(), y.n_tied.to_numpy(), y.n_items.to_numpy(), ratio)
    users = [[np.flatnonzero(((x.domain == dom) & (x.user_id == u)).to_numpy()) for u in x.user_id[x.domain == dom].unique()]
             for dom in x.domain.unique()]
    rng = np.random.default_rng(seed)
    out = {}
    for key in KEYS:
        diff = np.asarray(mx[key], dtype=np.float64) - np.asarray(my[key], dtype=np.float64)
        point = float(np.mean([diff[np.concatenate(us)].mean() for us in users]))
        stats = [np.mean([diff[np.concatenate([us[i] for i in rng.integers(len(us), size=len(us))])].mean()
                          for us in users]) for _ in range(draws)]
        low, high = np.percentile(stats, [2.5, 97.5])
        out[key] = (point, float(low), float(high))
    return out


def select(frame: pd.DataFrame, b: str, domain: str | None = None, b_from: pd.DataFrame | None = None) -> pd.DataFrame:
    """The instances to compare: model ``b``'s taken from ``b_from`` when given, one ``domain`` if asked."""
    if b_from is not None:
        frame = pd.concat([frame[frame.model != b], b_from[b_from.model == b]], ignore_index=True)
    return frame if domain is None else frame[frame.domain == domain]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instances")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ratio", type=float, default=0.01)
    ap.add_argument("--domain", help="only this target")
    ap.add_argument("--b-from", help="read MODEL_B from this instance file")
    args = ap.parse_args()
    other = pd.read_parquet(args.b_from) if args.b_from else None
    result = paired(select(pd.read_parquet(args.instances), args.b, args.domain, other), args.a, args.b, args.ratio)
    print(f"| metric | {args.a} - {args.b} | 95% interval (users resampled within targets) |\n|---|---|---|")
    for key, (point, low, high) in result.items():
        print(f"| {key} | {point:+.4f} | {low:+.4f} .. {high:+.4f} |")


if __name__ == "__main__":
    main()
