"""Latency and recall of the serving retrieval paths (exact, FAISS flat, FAISS HNSW) at scale.

    .venv/bin/python benchmarks/retrieval.py          # clustered 10k/100k/1M, isotropic 10k/100k
    .venv/bin/python benchmarks/retrieval.py --cases clustered:10000 --queries 100

Synthetic item vectors (H = 128, the cpu preset's hidden size) and user vectors of two kinds:

- ``clustered`` (embedding-like): a 32-dimensional mixture of 500 clusters mapped linearly to
  H dimensions plus a little noise, the way V = W x inherits the low intrinsic dimension of
  text embeddings;
- ``isotropic``: i.i.d. Gaussian vectors, the worst case for a graph index (intrinsic
  dimension = H), reported to show where HNSW's recall breaks down.

User vectors are scaled so that U . V has standard deviation 1 over the catalog. The
popularity term is shaped like the served one: every item gets g(0) except the ``--hot`` share
of the catalog (the 15-day window's items), which get g(0) + U(0, ``--pop-scale``). The full
score U . V + g(F) of the exact path is the reference; recall@k is the share of the exact
top-k that a path returns. Latency is per request (one history per call, one thread, requests
one after another); build time is the index's (``--threads`` threads). The "+ repeat mixture term"
row is what a ``repeat_mixture`` run adds to every path (an exact log-partition over the catalog
and the history's deltas; ``prerec.serving.terms``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from prerec.serving.layered import Layered
from prerec.serving.retrieval import ExactRetriever, FaissRetriever, PopularityTerm
from prerec.serving.terms import repeat_bonus


def make_case(kind: str, n: int, dim: int, n_queries: int, hot: float, pop_scale: float, seed: int):
    rng = np.random.default_rng(seed)
    V = np.empty((n, dim), np.float32)
    if kind == "isotropic":
        for a in range(0, n, 100_000):  # bounded temporaries
            b = min(a + 100_000, n)
            V[a:b] = rng.standard_normal((b - a, dim), dtype=np.float32) / np.sqrt(dim)
        U = rng.standard_normal((n_queries, dim), dtype=np.float32)
    elif kind == "clustered":
        centres = rng.standard_normal((500, 32))
        proj = rng.standard_normal((32, dim)) / np.sqrt(32 * dim)
        for a in range(0, n, 100_000):
            b = min(a + 100_000, n)
            z = centres[rng.integers(0, 500, b - a)] + 0.5 * rng.standard_normal((b - a, 32))
            V[a:b] = z @ proj + 0.01 / np.sqrt(dim) * rng.standard_normal((b - a, dim))
        zu = centres[rng.integers(0, 500, n_queries)] + 0.5 * rng.standard_normal((n_queries, 32))
        U = (zu @ proj).astype(np.float32)
    else:
        raise SystemExit(f"unknown data kind {kind!r}: clustered or isotropic")
    sample = V[rng.choice(n, min(n, 20_000), replace=False)]
    U /= (U @ sample.T).std(axis=1, keepdims=True)  # U . V ~ standard deviation 1 per user
    pop = np.full(n, -0.2, np.float32)
    m = max(1, int(hot * n))
    window = rng.choice(n, m, replace=False)
    pop[window] += rng.uniform(0, pop_scale, m).astype(np.float32)
    return V, np.ascontiguousarray(U, dtype=np.float32), PopularityTerm(pop, base=-0.2, special=window)


def run_queries(retriever, items, U, pop, k) -> tuple[np.ndarray, np.ndarray]:
    ids = np.empty((len(U), k), np.int64)
    lat = np.empty(len(U))
    for q in range(len(U)):
        t = time.perf_counter()
        ids[q] = retriever.top_k(items, U[q : q + 1], pop, k)[0][0]
        lat[q] = time.perf_counter() - t
    return ids, lat


def repeat_term_latency(items, U, pop, seed: int) -> np.ndarray:
    """Per request: the repeat mixture's term (whole-catalog log-partition + the history's deltas)
    for a 20-entry history with a few repeats, what a ``repeat_mixture`` run adds to any path."""
    rng = np.random.default_rng(seed)
    lat = np.empty(len(U))
    for q in range(len(U)):
        hist = rng.integers(0, items.n_items, 20)
        hist[rng.integers(1, 20, 3)] = hist[0]
        t = time.perf_counter()
        repeat_bonus(items, U[q : q + 1], pop, hist[None, :], np.array([20]))
        lat[q] = time.perf_counter() - t
    return lat


def recall(ids: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, ref)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="clustered:10000,clustered:100000,clustered:1000000,isotropic:10000,"
                   "isotropic:100000", help="KIND:ITEMS comma list (kinds: clustered, isotropic)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=200, help="requests per size (one history each)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--hot", type=float, default=0.02, help="share of items with a positive window count")
    p.add_argument("--pop-scale", type=float, default=1.0, help="g(F) - g(0) of hot items ~ U(0, this)")
    p.add_argument("--m", type=int, default=32, help="HNSW M")
    p.add_argument("--ef-construction", type=int, default=40, help="HNSW efConstruction")
    p.add_argument("--ef-search", default="128,256",
                   help="HNSW efSearch values to measure on the same index (comma list; at least the pool)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="FAISS OpenMP threads for builds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import faiss
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # one thread per request, as in the service
    faiss.omp_set_num_threads(args.threads)
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        data, _, size = case.partition(":")
        n = int(size)
        V, U, pop = make_case(data, n, args.dim, args.queries, args.hot, args.pop_scale, args.seed)
        table = Layered.of(V)
        print(f"{data} n={n:,}: exact ...", file=sys.stderr, flush=True)
        exact = ExactRetriever()
        ref, lat = run_queries(exact, exact.vectors(table), U, pop, args.k)
        rows.append((data, n, "exact", 0.0, lat, 1.0, "-"))
        rows.append((data, n, "+ repeat mixture term", 0.0, repeat_term_latency(exact.vectors(table), U, pop, args.seed),
                     float("nan"), "-"))
        efs = [int(e) for e in str(args.ef_search).split(",")]
        for kind in ("flat", "hnsw"):
            r = FaissRetriever(kind, m=args.m, ef_construction=args.ef_construction, ef_search=efs[0])
            print(f"{data} n={n:,}: {kind} build ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            items = r.vectors(table)
            build = time.perf_counter() - t
            for ef in efs if kind == "hnsw" else efs[:1]:
                r.ef_search = ef
                r.stats = dict.fromkeys(r.stats, 0)
                faiss.omp_set_num_threads(1)  # one request = one thread, as in the service
                ids, lat = run_queries(r, items, U, pop, args.k)
                faiss.omp_set_num_threads(args.threads)
                st = r.stats
                rounds = "/".join(f"{st[key] / max(st['rows'], 1):.0%}" for key in ("certified", "pop_round", "widened"))
                rows.append((data, n, kind if kind == "flat" else f"hnsw efS={ef}", build, lat, recall(ids, ref), rounds))
            del items
        del V, table
    print(f"\nRetrieval of U.V + g(F), k={args.k}, H={args.dim}, {args.queries} requests of one history, "
          f"hot={args.hot:.0%}, pop-scale={args.pop_scale}, HNSW M={args.m} efConstruction={args.ef_construction}, "
          f"{args.threads} build threads\n")
    print("| data | items | path | build s | p50 ms | p99 ms | mean ms | recall@k vs exact | "
          "certified at once / popularity round / widened |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for data, n, kind, build, lat, rec, rounds in rows:
        ms = lat * 1000
        print(f"| {data} | {n:,} | {kind} | {build:.1f} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 99):.2f} | "
              f"{ms.mean():.2f} | {rec:.4f} | {rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
