"""``prerec pretrain``: pre-train PreRec on source domains into a run directory.

    prerec pretrain --source NAME=FORMAT:PATH ... --out RUN [--preset paper|cpu]
                    [--config FILE] [--set key=value ...] [--encoder e5|...] [--resume]

Under ``torchrun`` every process trains on a disjoint shard of each batch (gloo on CPU, NCCL
on GPU); the main process writes the run directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from prerec.errors import PrerecError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train PreRec on source domains (writes a run directory)",
                       description="Pre-train PreRec on source domains (docs/method.md, \"Training\").")
    p.add_argument("--source", action="append", required=True, metavar="NAME=FORMAT:PATH",
                   help="a source domain (repeat for several)")
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--preset", default="paper", help="named configuration: paper (default) or cpu")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file with config keys (after the preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (type-checked), e.g. --set epochs=1")
    p.add_argument("--encoder", help="text encoder: e5 (default), sentence-transformers:<model>, hash:DIM")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR")
    p.set_defaults(handler=run_pretrain)


def _init_distributed():
    """(World, backend) from torchrun's environment; a single process otherwise."""
    import torch
    import torch.distributed as dist

    from prerec.training.loop import World

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), None
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return World(rank=rank, size=size), backend


def load_sources(texts: list[str]) -> tuple[list, list[str]]:
    """The source domains and one spec per domain: a spec that yields several domains (Online
    Retail without one country, XMarket without a market) stands as ``NAME=FORMAT:PATH#NAME``
    for each of them."""
    from prerec.data import load_domains, parse_spec

    domains, specs = [], []
    for text in texts:
        found = load_domains([text])
        spec = parse_spec(text)
        domains += found
        specs += [text] if len(found) == 1 else [spec.for_domain(d.name) for d in found]
    names = [d.name for d in domains]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PrerecError(f"--source: domain names must be unique; repeated: {', '.join(repeated)}")
    return domains, specs


def run_pretrain(args: argparse.Namespace) -> int:
    from prerec.config import build_config
    from prerec.training.pretrain import pretrain

    extra = {"encoder": args.encoder} if args.encoder else None
    cfg = build_config(args.preset, args.config, args.set, extra)
    domains, specs = load_sources(args.source)
    if not domains:
        raise PrerecError("--source: no domains given")
    world, backend = _init_distributed()
    if not world.main:
        logging.getLogger().setLevel(logging.WARNING)
    t0 = time.perf_counter()
    finished = False
    try:
        run = pretrain(domains, cfg, args.out, specs=specs, resume=args.resume, world=world)
        finished = True
    finally:
        if backend is not None:
            import torch.distributed as dist

            if finished:
                # leave together: a rank that tears the group down while its peer still talks
                # to it aborts the peer ("terminate called without an active exception")
                dist.barrier()
            dist.destroy_process_group()
    if world.main:
        last = run.history[-1] if run.history else {}
        print(f"pre-trained on {', '.join(run.source_names)}: {len(run.history)} epoch(s), "
              f"last loss {last.get('loss', float('nan')):.4f}, "
              f"{time.perf_counter() - t0:.1f} s; run written to {args.out}")
    return 0
