"""Training throughput: instances/s and peak memory of the training step, in one process.

    python benchmarks/train_throughput.py [--device cpu|cuda] [--seconds 6] [--threads N]

Data: Online Retail's B1 source countries (every country but the six targets; ~330k
interactions, mostly the United Kingdom) from ../shared/data, items encoded with ``hash:384``
(the dimension of the default e5 encoder; the encoder does not change the training step).
For each configuration (``paper``: H=256, 2 layers, 64 history, 255 negatives, batch 256;
``cpu``: the cpu preset) it measures, on the same draws:

- ``reference``: the straightforward layout of the research code: every instance its own
  64-long sequence, every item *occurrence* projected (W x for each history slot and each of
  the 256 candidates), the popularity head run on every (instance, candidate) pair;
- ``instance``: the paper's layout with our batch builder (each distinct item projected once
  per batch, g once per distinct factor row);
- ``sequence``: chunks of <= 65 items, one causal pass per chunk, negatives shared by a chunk;
- ``sequence+identity``: the same with item identity (a table row per shared stock code), whose
  cost is printed against ``sequence``.

and prints instances/s, peak memory (CUDA: max allocated; CPU: peak growth of the malloc
heap during the mode, sampled every millisecond; model and data allocated before it are not counted) and the arithmetic floor: forward+backward FLOPs per instance of
that layout (backward = 2x forward), over this machine's measured matmul rate.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

from prerec.constants import set_thread_environment

set_thread_environment()  # before torch loads libgomp (see docs/model.md)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PREREC_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGETS = ("Germany", "France", "Spain", "Belgium", "Switzerland", "Portugal")


class PeakHeap:
    """Peak growth of this process's malloc heap while the block runs (CPU tensors live there).

    glibc's ``mallinfo2`` (bytes in use, arenas + mmapped blocks) is sampled every millisecond
    by a thread; unlike RSS it falls again when memory is freed, so each mode is measured on
    its own even after earlier modes grew the process.
    """

    class _Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    def __init__(self) -> None:
        libc = ctypes.CDLL("libc.so.6")
        self._mallinfo2 = libc.mallinfo2
        self._mallinfo2.restype = PeakHeap._Info

    def used(self) -> int:
        info = self._mallinfo2()
        return int(info.uordblks + info.hblkhd)

    def __enter__(self) -> PeakHeap:
        gc.collect()
        self.base = self.peak = self.used()
        self.stop = False
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, self.used())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, self.used())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def matmul_rate(device: torch.device, H: int) -> float:
    """FLOP/s of a (8192, H) x (H, H) float32 matmul, the tower's dominant shape."""
    a = torch.randn(8192, H, device=device)
    b = torch.randn(H, H, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        a @ b
        n += 1
    sync(device)
    return 2 * 8192 * H * H * n / (time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_sources(encoder: str, data: str | None = None):
    from prerec.config import TrainConfig
    from prerec.data import load_domains
    from prerec.text import get_encoder
    from prerec.training.pretrain import prepare_sources

    path = Path(data) if data else DATA / "online_retail" / "online_retail_2010_2011.parquet"
    if data == "embedded":
        path = "embedded"  # the copy shipped inside the package
    elif not path.exists():
        sys.exit(f"Online Retail not found at {path} (--data embedded uses the packaged copy)")
    domains = [d for d in load_domains([f"online-retail:{path}"]) if d.name not in TARGETS]
    cfg = TrainConfig(encoder=encoder, progress=False)
    prepared, _ = prepare_sources(domains, cfg, get_encoder(encoder), progress=False)
    return prepared


def reference_step(model, corpus, X, d, u, neg_local, device):
    """The research code's layout: per instance, every occurrence projected, g per candidate."""
    L = corpus.max_history
    row = corpus._inst_offsets[d] + u
    t_flat = corpus.instance_flat[row]
    start = corpus.instance_start[row]
    lengths = t_flat - start
    cols = np.arange(L)
    valid = cols[None, :] < lengths[:, None]
    hist = np.where(valid, corpus.items[np.where(valid, start[:, None] + cols, 0)], 0)
    cand = np.concatenate([corpus.items[t_flat][:, None], neg_local + corpus.item_base[d][:, None]], axis=1)
    day_keys = corpus.day_keys[t_flat]
    local = np.concatenate([corpus.local[t_flat][:, None], neg_local], axis=1)
    factors = corpus.table.rows[corpus.table.lookup(day_keys[:, None], local)]
    hist_t = torch.from_numpy(hist).to(device)
    cand_t = torch.from_numpy(cand).to(device)
    valid_t = torch.from_numpy(valid).to(device).unsqueeze(-1)
    dom_t = torch.from_numpy(corpus.part_domain[d]).to(device)
    Vh = model.item_proj(X[hist_t]) + model.offsets[hist_t]  # (B, 64, H): every occurrence
    Vh = torch.where(valid_t, Vh, torch.zeros((), device=device)) + model.domain[dom_t][:, None, :]
    U = model.user_vectors(Vh, torch.from_numpy(lengths).to(device))
    Vc = model.item_proj(X[cand_t]) + model.offsets[cand_t]  # (B, 256, H)
    logits = torch.einsum("bh,bnh->bn", U, Vc) + model.pop(torch.from_numpy(factors).to(device)).squeeze(-1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=device))


def batch_flops(model, batch: dict, mode: str, n_inst: int) -> float:
    """Forward FLOPs of one batch in a layout (matmuls only), times 3 for forward + backward."""
    from prerec.model import flops_per_token

    cfg = model.cfg
    H, Fd = cfg.hidden_size, cfg.text_dim
    pop = 2 * (4 * cfg.pop_hidden + cfg.pop_hidden)
    if mode == "reference":
        B, L = n_inst, cfg.max_history
        fwd = (B * L * flops_per_token(cfg, L) + 2 * Fd * H * B * (L + 256) + 2 * H * B * 256 + pop * B * 256)
    else:
        b, width = batch["hist"].shape
        tokens = b * width
        n_cand = 1 + batch["neg"].shape[1]
        scored = n_inst * n_cand
        fwd = (tokens * flops_per_token(cfg, width) + 2 * Fd * H * len(batch["x"]) + 2 * H * scored
               + pop * len(batch["pop_rows"]))
    return 3.0 * fwd


def measure(preset: str, mode: str, prepared, device: torch.device, seconds: float, rate: float) -> dict:
    from prerec.config import build_config
    from prerec.training.loop import make_optimizer
    from prerec.training.pretrain import build_training

    layout, _, extra = mode.partition("+")  # "sequence+identity": the sequence layout with item identity
    sets = [f"batch_layout={'instance' if layout == 'reference' else layout}", "progress=false"]
    cfg = build_config(preset, sets=sets + (["item_identity=true"] if extra == "identity" else []))
    _, _, model, corpus, X = build_training(prepared, cfg)
    model.to(device).train()
    X = X.to(device)
    opt = make_optimizer(model, cfg, corpus.total_instances)
    dom, unit = corpus.epoch_draws(cfg.seed, 0)
    sizes = corpus.unit_sizes(dom, unit)
    bounds = corpus.batch_bounds(sizes, cfg.batch_size)

    def step(s: int) -> tuple[int, dict | None]:
        a, b = bounds[s], bounds[s + 1]
        d, u = dom[a:b], unit[a:b]
        neg = corpus.negatives(cfg.seed, 0, s, d)
        n = int(sizes[a:b].sum())
        opt.zero_grad(set_to_none=True)
        if layout == "reference":
            loss, batch = reference_step(model, corpus, X, d, u, neg, device), None
        else:
            batch = corpus.build(d, u, neg, float(n), X, device)
            loss = model(batch)
        loss.backward()
        opt.step()
        return n, batch

    for s in range(2):  # warm-up
        step(s)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    done, s, flops = 0, 2, 0.0
    with PeakHeap() as mem:
        t0, c0 = time.perf_counter(), time.thread_time()
        while time.perf_counter() - t0 < seconds and s < len(bounds) - 1:
            n, batch = step(s)
            flops += batch_flops(model, batch, layout, n)
            done += n
            s += 1
        sync(device)
        dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else mem.growth_mb
    per_inst = flops / max(done, 1)
    return {"config": preset, "mode": mode, "hidden": cfg.model.hidden_size, "steps": s - 2, "instances": done,
            "instances_per_s": done / dt, "instances_per_cpu_s": done / max(cpu, 1e-9), "peak_mb": peak, "gflop_per_instance": per_inst / 1e9,
            "floor_instances_per_s": rate / per_inst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--seconds", type=float, default=6.0, help="measured time per (config, mode)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--configs", default="paper,cpu")
    ap.add_argument("--modes", default="reference,instance,sequence,sequence+identity",
                    help="layouts; sequence+identity: with item identity (its cost against sequence)")
    ap.add_argument("--encoder", default="hash:384")
    ap.add_argument("--data", help="Online Retail file (default: ../shared/data); 'embedded': the packaged copy")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, loading B1 sources ...", flush=True)
    prepared = load_sources(args.encoder, args.data)
    n_inter = sum(len(p.domain.interactions) for p in prepared)
    print(f"{len(prepared)} source domains, {n_inter:,} interactions, text dim {prepared[0].item_emb.shape[1]}")
    rows = []
    for preset in args.configs.split(","):
        from prerec.config import build_config

        H = build_config(preset).model.hidden_size
        rate = matmul_rate(device, H)
        print(f"\n[{preset}] H={H}; matmul rate {rate / 1e9:,.1f} GFLOP/s")
        print(f"{'mode':<10} {'inst/s':>10} {'x ref':>7} {'peak MB':>9} {'GFLOP/inst':>11} {'floor inst/s':>13}")
        ref = text_only = None
        for mode in args.modes.split(","):
            r = measure(preset, mode, prepared, device, args.seconds, rate)
            ref = r["instances_per_s"] if mode == "reference" else ref
            r["speedup_vs_reference"] = r["instances_per_s"] / ref if ref else None
            # on a CPU shared with other jobs, the main thread's CPU seconds (one torch thread) compare
            # the two layouts more steadily than wall seconds
            rate_key = "instances_per_cpu_s" if device.type == "cpu" and torch.get_num_threads() == 1 \
                else "instances_per_s"
            if mode == "sequence":
                text_only = r[rate_key]
            if mode == "sequence+identity" and text_only:
                r["vs_text_only"] = r[rate_key] / text_only
                print(f"  item identity: {r['vs_text_only']:.2f}x the text-only sequence layout's "
                      f"{'instances per CPU second' if rate_key != 'instances_per_s' else 'instances/s'}")
            rows.append(r)
            sp = f"{r['speedup_vs_reference']:.1f}" if ref else "-"
            print(f"{mode:<10} {r['instances_per_s']:>10,.0f} {sp:>7} {r['peak_mb']:>9,.0f} "
                  f"{r['gflop_per_instance']:>11.4f} {r['floor_instances_per_s']:>13,.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "threads": torch.get_num_threads(), "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
