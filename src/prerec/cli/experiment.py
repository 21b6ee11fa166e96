"""``prerec experiment CONFIG.toml``: a whole benchmark (B1, B2) end to end.

Writes ``table.md``, ``results.json``, ``incremental.png`` and ``instances.parquet`` into
``--out`` (default ``experiments/<name>``). CONFIG is a TOML file or the name of a packaged one
(``b1``, ``b2``). ``--quick`` merges the config's ``[quick]`` table over it (a smoke run).
"""

from __future__ import annotations

import argparse
import logging
from importlib import resources
from pathlib import Path

from rich.console import Console

from prerec.errors import PrerecError
from prerec.evaluation.benchmark import Benchmark, BenchmarkConfig
from prerec.evaluation.experiment import comparison_table

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a benchmark (B1, B2) end to end: table.md, results.json, plot")
    p.add_argument("config", help="experiment TOML file, or a packaged one: b1, b2")
    p.add_argument("--out", type=Path, help="output folder (default experiments/<name>[-quick])")
    p.add_argument("--quick", action="store_true", help="apply the config's [quick] settings (smoke run)")
    p.add_argument("--data", type=Path, help="shared data folder for {data} (default $PREREC_SHARED_DATA "
                                             "or ../shared/data)")
    p.add_argument("--runs-dir", type=Path, help="where pre-trained runs are kept and reused (default OUT/runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_experiment)


def resolve_config(text: str) -> Path:
    p = Path(text)
    if p.exists():
        return p
    packaged = resources.files("prerec.configs") / "experiments" / f"{text.lower().removesuffix('.toml')}.toml"
    if packaged.is_file():
        return Path(str(packaged))
    raise PrerecError(f"{text}: no such experiment config (a TOML file, or one of b1, b2, synthetic)")


def run_experiment(args: argparse.Namespace) -> int:
    path = resolve_config(args.config)
    if is_synthetic(path):
        return run_synthetic(args, path)
    cfg = BenchmarkConfig.from_toml(path, quick=args.quick, data_dir=args.data)
    out = args.out or Path("experiments") / (cfg.name.lower() + ("-quick" if args.quick else ""))
    result = Benchmark(cfg, out, quick=args.quick, progress=not args.no_progress,
                       runs_dir=args.runs_dir).run()
    console = Console(width=max(Console().width, 140))
    console.print(comparison_table(result["results"], title=f"{cfg.name}: Recall@K% (K = floor({cfg.ratio} N))"))
    print(f"wrote {out / 'table.md'}, {out / 'results.json'}"
          + (f", {out / 'incremental.png'}" if any(result["incremental"].values()) else "") + f" ({result['seconds']['total']:.0f} s)")
    return 0


def is_synthetic(path: Path) -> bool:
    """A config with ``kind = "synthetic"``: the planted-bias sweep (docs/synthetic.md)."""
    import tomllib

    try:
        return tomllib.loads(path.read_text()).get("kind") == "synthetic"
    except (OSError, tomllib.TOMLDecodeError):
        return False  # the benchmark reader reports it


def run_synthetic(args: argparse.Namespace, path: Path) -> int:
    from prerec.evaluation.synthetic_sweep import Sweep, SweepConfig

    cfg = SweepConfig.from_toml(path, quick=args.quick)
    out = args.out or Path("experiments") / (cfg.name.lower() + ("-quick" if args.quick else ""))
    result = Sweep(cfg, out, runs_dir=args.runs_dir, progress=not args.no_progress).run()
    print((out / "table.md").read_text())
    print(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'synthetic.png'} "
          f"({result['seconds']['total']:.0f} s)")
    return 0
