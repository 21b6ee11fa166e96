"""Popularity factors: the sparse PopularityIndex against the research code's dense per-day tensor.

Usage: python benchmarks/popularity.py [--interactions 1000000] [--items 100000] [--days 1000]
                                       [--dense-items 10000] [--seed 0]

A synthetic log (Zipf-like item popularity, uniform days) of ``--interactions`` rows over
``--items`` items and ``--days`` days. Both approaches produce F_j(d) for every (day, item) pair
of the log (what training and evaluation read; the pairs are listed once, outside the timing):

- ``sparse``: :class:`prerec.popularity.PopularityIndex`, counting one slice of the day-sorted
  log per distinct query day;
- ``dense``: the research code's approach, a days x items x 4 float32 tensor filled by a Python
  loop over days (window selected by a mask over the whole log, counted with ``np.unique``,
  which is kinder to it than the original ``Counter``), then indexed.

The dense tensor of the full size (days x items x 4 x 4 bytes) is too large to hold beside other
work, so the dense approach runs on the same log with item ids folded into ``--dense-items``
items, and the sparse one runs on that same folded log too, for a like-for-like ratio. Time is
wall clock (best of ``--repeat``); peak memory is tracemalloc's peak of Python and NumPy allocations during the call
(a separate run from the timed one, since tracing slows allocation).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from prerec.popularity import N_FACTORS, WINDOW_DAYS, PopularityIndex


def synthetic_log(n: int, n_items: int, n_days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Items drawn with probability ~ 1 / rank^0.9 (a long tail, like real catalogs), days uniform."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = rng.permutation(n_items)[rng.choice(n_items, size=n, p=p / p.sum())]
    days = rng.integers(0, n_days, size=n)
    return items.astype(np.int64), days.astype(np.int64)


def log_pairs(items: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Every distinct (day, item) pair of the log, as rows (day, item), through one int64 key."""
    n, day0 = int(items.max()) + 1, int(days.min())
    key = np.unique((days - day0) * n + items)
    return np.stack([key // n + day0, key % n], axis=1)


def sparse(items: np.ndarray, days: np.ndarray, n_items: int, pairs: np.ndarray) -> np.ndarray:
    return PopularityIndex(items, days).factors(pairs[:, 0], pairs[:, 1])


def dense(items: np.ndarray, days: np.ndarray, n_items: int, pairs: np.ndarray) -> np.ndarray:
    """The research code's shape: a dense (days, items, 4) tensor, one Python iteration per day."""
    day0, day_end = int(days.min()), int(days.max())
    table = np.zeros((day_end - day0 + 1, n_items, N_FACTORS), dtype=np.float32)
    has_today = np.zeros(day_end - day0 + 1, dtype=bool)
    has_today[days - day0] = True
    for day in range(day0 + 1, day_end + 1):
        if not has_today[day - day0]:
            continue
        w = WINDOW_DAYS
        while True:
            mask = (days < day) & (days >= day - w)
            if mask.any():
                break
            w += 1
        uniq, counts = np.unique(items[mask], return_counts=True)
        c = counts.astype(np.float64)
        s = np.array([np.mean(c**p) ** (1.0 / p) for p in range(1, N_FACTORS + 1)])
        table[day - day0, uniq] = (c[:, None] / s[None, :]).astype(np.float32)
    return table[pairs[:, 0] - day0, pairs[:, 1]]


def measure(fn: Callable[..., np.ndarray], *args, repeat: int = 2) -> tuple[float, float, float, np.ndarray]:
    """(wall s, CPU s, peak MiB, result): the best of ``repeat`` timed runs (the machine is
    shared, so CPU time is the steadier figure), then one traced run for memory."""
    seconds = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        seconds = min(seconds, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, cpu, peak / 2**20, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=1_000)
    ap.add_argument("--dense-items", type=int, default=10_000, help="catalog size the dense tensor is run at")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per method (the best is reported)")
    args = ap.parse_args()

    items, days = synthetic_log(args.interactions, args.items, args.days, args.seed)
    folded = items % args.dense_items
    rows = []
    t, c, m, full = measure(sparse, items, days, args.items, log_pairs(items, days), repeat=args.repeat)
    rows.append(("sparse", args.items, t, c, m, len(full)))
    folded_pairs = log_pairs(folded, days)
    t_s, c_s, m_s, small = measure(sparse, folded, days, args.dense_items, folded_pairs, repeat=args.repeat)
    rows.append(("sparse", args.dense_items, t_s, c_s, m_s, len(small)))
    t_d, c_d, m_d, small_dense = measure(dense, folded, days, args.dense_items, folded_pairs, repeat=args.repeat)
    rows.append(("dense", args.dense_items, t_d, c_d, m_d, len(small_dense)))
    err = float(np.abs(small - small_dense).max())

    dense_full_mib = (days.max() - days.min() + 1) * args.items * N_FACTORS * 4 / 2**20
    print(f"log: {args.interactions:,} interactions, {args.days:,} days, seed {args.seed}")
    print(f"{'method':<8} {'items':>8} {'(day,item) pairs':>17} {'wall s':>8} {'CPU s':>7} {'peak MiB':>9}")
    for name, n_items, sec, cpu, mib, n in rows:
        print(f"{name:<8} {n_items:>8,} {n:>17,} {sec:>8.2f} {cpu:>7.2f} {mib:>9.1f}")
    print(f"at {args.dense_items:,} items: dense / sparse CPU time {c_d / c_s:.1f}x, peak memory {m_d / m_s:.1f}x; "
          f"max |sparse - dense| = {err:.1e}")
    print(f"dense tensor at {args.items:,} items would alone take {dense_full_mib:,.0f} MiB "
          f"(sparse peak there: {rows[0][4]:.0f} MiB)")


if __name__ == "__main__":
    main()
