"""``prerec finetune``: incremental training / fine-tuning of a run on a target's own log.

    prerec finetune --run RUN --target NAME=FORMAT:PATH --out NEW_RUN [--instances N]
                    [--config FILE] [--set key=value ...]

Starts from RUN's weights, gives the target a fresh domain confounder and its items offsets (and
identity rows), trains on the first N training instances of the target's training users (all by
default) and keeps the epoch, and the setting of ``[finetune] variants`` or the grids, that ranks
the target's *validation* users best. NEW_RUN is a complete run directory: ``prerec evaluate
--mode in-domain``, ``prerec recommend`` and ``prerec serve`` use it for the target (in-domain)
and still zero-shot for any other new domain. As the target's log grows, fine-tune again from the
pre-trained RUN (not from NEW_RUN) with the larger log.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import tomllib
from pathlib import Path

from prerec.errors import PrerecError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a run on a target's own log (writes a new run directory)",
                       description="Incremental training / fine-tuning on a target (docs/method.md, "
                                   "\"Incremental training\"); settings chosen on the target's validation users.")
    p.add_argument("--run", required=True, type=Path, metavar="RUN_DIR", help="pre-trained run directory")
    p.add_argument("--target", required=True, metavar="NAME=FORMAT:PATH", help="the target domain, with its log")
    p.add_argument("--out", required=True, type=Path, metavar="NEW_RUN", help="run directory to write")
    p.add_argument("--instances", type=int, metavar="N",
                   help="train on the first N training instances only (default: all)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="TOML file of [finetune] keys (FinetuneConfig: lr, epochs, variants, ...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one FinetuneConfig key (a TOML value), e.g. --set epochs=10 --set lr_grid=[1e-4,1e-3]")
    p.add_argument("--force", action="store_true", help="replace NEW_RUN if it is already a run directory")
    p.set_defaults(handler=run_finetune)


def finetune_settings(config: Path | None, sets: list[str]) -> dict:
    """The [finetune] table: the file's (its ``[finetune]`` table, or the whole file), then --set."""
    from prerec.config import read_toml

    out: dict = {}
    if config is not None:
        data = read_toml(config)
        out.update(data.get("finetune", data))
    for text in sets:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise PrerecError(f"--set {text!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()  # a bare word: a string
    return out


def run_finetune(args: argparse.Namespace) -> int:
    from prerec.config import FinetuneConfig
    from prerec.data import load_domains
    from prerec.run import load_run
    from prerec.training.finetune import finetune_run, save_finetuned_run

    ft = FinetuneConfig.from_dict({"progress": True, **finetune_settings(args.config, args.set)},
                                  where="--config/--set")
    if args.instances is not None and args.instances < 1:
        raise PrerecError(f"--instances: expected a positive number, got {args.instances}")
    out = args.out
    if out.exists() and not out.is_dir():
        raise PrerecError(f"--out {out}: exists and is not a directory")
    if out.exists() and not args.force:  # said before training, not after it
        what = "a run directory" if (out / "config.json").exists() else "exists"
        raise PrerecError(f"--out {out}: already {what} (use --force to replace it)")
    if out.resolve() == args.run.resolve():
        raise PrerecError("--out: must not be the pre-trained run itself")
    run = load_run(args.run)
    domains = load_domains([args.target])
    if len(domains) != 1:
        raise PrerecError(f"--target {args.target!r}: gives {len(domains)} domains; name one (e.g. with #NAME)")
    t0 = time.perf_counter()
    target = run.prepare(domains[0], progress=True)
    new = finetune_run(run, target, args.instances, ft)
    if out.exists():  # --force: replaced only once the new run is trained
        shutil.rmtree(out)
    save_finetuned_run(new, out, args.run, args.target)
    tried = new.selection["tried"]
    best = max(t["valid_metric"] for t in tried)
    print(f"fine-tuned on {target.name} ({target.n_items} items): kept epoch {new.epoch}, validation "
          f"r-NDCG@K% {best:.4f}" + (f" (best of {len(tried)} settings)" if len(tried) > 1 else "")
          + f", {time.perf_counter() - t0:.1f} s; run written to {out}")
    if len(tried) > 1:
        print(json.dumps(tried))
    return 0
