"""Scale curve: wall time and peak memory of each pipeline stage at 10^5, 10^6 and 10^7 interactions.

    python benchmarks/scale.py --out results/scale [--sizes 1e5,1e6,1e7] [--steps 50]

For each size a synthetic corpus is written (benchmarks/scale_corpus.py: three domains in the
canonical format, catalogs of interactions / 8 items per domain, 10^6 items in the largest at
10^7, 180 days, Zipf popularity with sequential walks, an embeddings table read by the
``table:`` encoder: text encoding is not run here, its cost is benchmarks/encode.py's and it
grows linearly in the number of items). Each stage (benchmarks/scale_stages.py) runs in its own
process with one thread (``OMP_NUM_THREADS=1``): the process builds the stage's prerequisites,
resets its peak RSS and runs the stage, so "peak" is the stage's own high-water mark (with its
inputs in memory) and "start" the RSS its inputs took. A stage that runs past ``--timeout`` or
past ``--mem-limit-gb`` of RSS is killed and recorded as such.

Writes ``table.md``, ``results.json`` and ``scale.png`` (time and peak memory against
interactions, log-log) under ``--out`` and prints the table. "x/n" is the stage's time per
interaction relative to the smallest size (1.0: linear; 10: ten times the cost per interaction);
"slope" the log-log slope between the two largest sizes that finished (1: linear, 2: quadratic).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale_corpus import write_corpus  # noqa: E402
from scale_stages import STAGES  # noqa: E402


def child_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_stage(corpus: Path, stage: str, args: argparse.Namespace) -> dict:
    """One stage in its own process, killed past the time or memory limit."""
    out = corpus / f"stage-{stage}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PREREC_CACHE_DIR=str(corpus / "cache"),
               PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, str(HERE / "scale_stages.py"), str(corpus), stage, str(out), "--steps", str(args.steps),
           "--eval-instances", str(args.eval_instances)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    status, seen = "ok", 0.0
    try:
        while proc.poll() is None:
            seen = max(seen, child_rss_mb(proc.pid))
            if time.perf_counter() - t0 > args.timeout:
                status = f"killed after {args.timeout:.0f} s (too slow)"
            elif seen > args.mem_limit_gb * 1024:
                status = f"killed at {seen / 1024:.1f} GiB RSS (over {args.mem_limit_gb} GiB)"
            if status != "ok":
                break
            time.sleep(0.2)
    finally:  # never leave the stage's process behind (a limit, an interrupt)
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    wall = time.perf_counter() - t0
    row = {"stage": stage, "status": status, "process_s": wall, "process_peak_mb": seen}
    if status == "ok" and proc.returncode == 0 and out.exists():
        row.update(json.loads(out.read_text()))
    elif status == "ok":
        row["status"] = f"failed (exit {proc.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}"
    return row


def fmt_time(s: float) -> str:
    return f"{s:.2f}" if s < 10 else f"{s:,.0f}"


def slope(points: list[tuple[int, float]]) -> float | None:
    """Log-log slope between the two largest sizes with a positive value."""
    pts = [(n, v) for n, v in points if v and v > 0]
    if len(pts) < 2:
        return None
    (n1, v1), (n2, v2) = pts[-2], pts[-1]
    return math.log(v2 / v1) / math.log(n2 / n1)


def fits(points: list[tuple[int, float]], limit_mb: float) -> str:
    """The corpus size whose peak would reach ``limit_mb``: the line through the two largest sizes'
    peaks (memory here grows linearly above a fixed base: its slopes are <= 1.1)."""
    pts = [(n, v) for n, v in points if v and v > 0]
    if len(pts) < 2:
        return "-"
    (n1, v1), (n2, v2) = pts[-2], pts[-1]
    if v2 >= limit_mb:
        return f"< {n2:.0e}"
    per = (v2 - v1) / (n2 - n1)
    return "-" if per <= 0 else f"~{n2 + (limit_mb - v2) / per:.0e}"


def table(rows: list[dict], sizes: list[int], limit_gb: float = 22.0) -> str:
    """Markdown: per stage and size the seconds (x/n) and the peak MB, the slopes, and the corpus
    size at which the stage's peak would reach ``limit_gb`` (linear extrapolation)."""
    head = "| stage | " + " | ".join(f"{n:.0e} s (x/n)" for n in sizes) + " | slope | " + \
        " | ".join(f"{n:.0e} peak MB" for n in sizes) + f" | mem slope | peak {limit_gb:.0f} GiB at |"
    lines = [head, "|" + "---|" * (2 * len(sizes) + 4)]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        by = {r["size"]: r for r in rows if r["stage"] == stage}
        base = next((by[n]["seconds"] / n for n in sizes if n in by and "seconds" in by[n]), None)
        cells, mem = [], []
        for n in sizes:
            r = by.get(n)
            if r is None:
                cells.append("-"), mem.append("-")
            elif "seconds" not in r:
                cells.append(r["status"].split(" (")[0]), mem.append(f"> {r['process_peak_mb']:,.0f}")
            else:
                rel = (r["seconds"] / n) / base if base else float("nan")
                cells.append(f"{fmt_time(r['seconds'])} ({rel:.2f})")
                mem.append(f"{r['peak_mb']:,.0f}")
        ts = slope([(n, by[n].get("seconds")) for n in sizes if n in by])
        ms = slope([(n, by[n].get("peak_mb", 0) - by[n].get("rss_start_mb", 0)) for n in sizes if n in by])
        big = fits([(n, by[n].get("peak_mb")) for n in sizes if n in by], limit_gb * 1024)
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {'-' if ts is None else f'{ts:.2f}'} | "
                     + " | ".join(mem) + f" | {'-' if ms is None else f'{ms:.2f}'} | {big} |")
    notes = [
        "", "s: the stage's CPU seconds (one thread; wall seconds in results.json); x/n: its time per interaction relative to the smallest "
        "size (1: linear); slope: log-log slope of time between the two largest sizes (1: linear, 2: "
        "quadratic); peak MB: the stage process's peak RSS (its inputs included); mem slope: of the "
        "stage's own growth (peak - RSS at its start); peak at: the corpus size whose peak would reach "
        "the limit, on the line through the two largest sizes' peaks.",
        "train runs a fixed number of steps and evaluate a fixed number of test instances: for them "
        "x/n says nothing; a constant time would be flat, and their growth is per-step (per-instance) "
        "cost that grows with the corpus (catalog).",
        "train_full_epoch is derived, not run: the training instances of one epoch over train's "
        "instances/s (its memory is train's).",
    ]
    return "\n".join(lines + notes) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    for stage in dict.fromkeys(r["stage"] for r in rows):
        pts = sorted((r["size"], r["seconds"], r["peak_mb"]) for r in rows if r["stage"] == stage and "seconds" in r)
        if pts:
            ax_t.plot([p[0] for p in pts], [max(p[1], 1e-3) for p in pts], "o-", label=stage)
            ax_m.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=stage)
    xs = sorted({r["size"] for r in rows})
    if len(xs) > 1:  # a linear reference through the smallest size
        ax_t.plot(xs, [1.0 * x / xs[0] for x in xs], "k:", label="linear (1 s at smallest)")
    for ax, what in ((ax_t, "CPU seconds (one thread)"), (ax_m, "peak RSS of the stage's process, MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("interactions")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7)
    ax_t.set_title("CPU time per stage (one thread)")
    ax_m.set_title("peak memory per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def with_projections(rows: list[dict]) -> list[dict]:
    """The rows plus ``train_full_epoch``: one whole epoch at the measured instances/s (derived)."""
    extra = [{**r, "stage": "train_full_epoch", "seconds": r["full_epoch_s"], "derived": True}
             for r in rows if r["stage"] == "train" and "full_epoch_s" in r]
    return rows + extra


def write_outputs(rows: list[dict], sizes: list[int], out: Path, meta: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    shown = with_projections([r for r in rows if not r.get("derived")])
    text = table(shown, sizes)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps({**meta, "rows": rows}, indent=2, default=float) + "\n")
    plot(shown, out / "scale.png")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="1e5,1e6,1e7", help="interactions per corpus, comma list")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--work", type=Path, default=Path("/tmp/prerec-scale"), help="where the corpora go")
    ap.add_argument("--steps", type=int, default=50, help="training steps of 256 instances")
    ap.add_argument("--eval-instances", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64, help="item embedding dimension of the table")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per stage process")
    ap.add_argument("--mem-limit-gb", type=float, default=20.0)
    ap.add_argument("--from-json", type=Path, help="only rewrite the table and plot from a results.json")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        print(write_outputs(saved["rows"], saved["sizes"], args.out, {k: v for k, v in saved.items() if k != "rows"}))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rows, meta = [], {"sizes": sizes, "steps": args.steps, "eval_instances": args.eval_instances,
                      "dim": args.dim, "corpora": {}}
    for n in sizes:
        corpus = args.work / f"corpus-{n}"
        t0 = time.perf_counter()
        info = json.loads((corpus / "corpus.json").read_text()) if (corpus / "corpus.json").exists() \
            else write_corpus(corpus, n, dim=args.dim)
        meta["corpora"][n] = {**info, "generate_s": time.perf_counter() - t0}
        print(f"corpus {n:,}: {json.dumps(info['domains'])}", flush=True)
        for stage in args.stages.split(","):
            row = {"size": n, **run_stage(corpus, stage, args)}
            rows.append(row)
            print(f"  {stage:<12} {row['status']:<8} {row.get('seconds', float('nan')):9.2f} s  "
                  f"peak {row.get('peak_mb', row['process_peak_mb']):8,.0f} MB  (process {row['process_s']:.0f} s)",
                  flush=True)
            write_outputs(rows, sizes, args.out, meta)
    print(write_outputs(rows, sizes, args.out, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
