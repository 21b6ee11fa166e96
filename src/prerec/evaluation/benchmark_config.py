"""The configuration of a benchmark (``prerec experiment``): one TOML file, checked on load.

Keys (see ``src/prerec/configs/experiments/b1.toml``)::

    name, description, ratio, ks, seed, encoder
    train_seeds = [2023, 2024, 2025]   # pre-train the zero-shot PreRec rows once per training seed
                                       # (the split keeps ``seed``); the first seed's run also serves
                                       # fine-tuning and the curve
    domains = [specs]            # NAME=FORMAT:PATH; "{data}" is the shared data folder
    targets = [names]
    protocol = "fixed" | "leave-one-out"   # one fold (targets vs every other domain), or one
                                           # fold per target (it vs every other domain)
    models = [...]               # names of prerec.registry.MODELS
    incremental = [0, 10, 100, 1000, "all"];  incremental_models = ["prerec", "sasrec-scratch"]
    max_instances                # evaluation instances per target (seeded subset; quick runs)
    [pretrain] preset, set = {key = value}    # prerec pretrain's preset and --set keys
               variant_set = {variant = {key = value}}   # keys for one variant only (over set)
               select_from = [names], select_count = N
                                 # zero-shot model selection per fold: the first N of these
                                 # names that are sources of the fold become its select_on
    [mc] draws, source;  [finetune] FinetuneConfig keys;  [sasrec] SASRecConfig keys
    [quick] any of the above, merged over the rest with --quick
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from prerec.baselines.sasrec import SASRecConfig
from prerec.config import FinetuneConfig
from prerec.constants import SPLIT_SEED
from prerec.errors import PrerecError
from prerec.registry import MODELS


@dataclass
class BenchmarkConfig:
    name: str = "benchmark"
    description: str = ""
    ratio: float = 0.01
    ks: list[int] = field(default_factory=lambda: [20])
    seed: int = SPLIT_SEED  # the user split (fixed: the test users stay the same) and the first training seed
    train_seeds: list[int] = field(default_factory=list)  # training seeds of the zero-shot PreRec rows
    seed_models: list[str] = field(default_factory=list)  # the rows repeated over them (default: every
                                                          # zero-shot PreRec row of ``models``)
    encoder: str = "e5"
    domains: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    protocol: str = "fixed"
    models: list[str] = field(default_factory=lambda: ["popularity", "text", "text-last", "prerec"])
    incremental: list[int | str] = field(default_factory=list)
    incremental_models: list[str] = field(default_factory=lambda: ["prerec", "sasrec-scratch"])
    max_instances: int = 0
    pretrain: dict[str, Any] = field(default_factory=dict)
    mc: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    sasrec: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path, quick: bool = False, data_dir: str | Path | None = None) -> BenchmarkConfig:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise PrerecError(f"{p}: no such experiment config") from None
        except tomllib.TOMLDecodeError as exc:
            raise PrerecError(f"{p}: not valid TOML: {exc}") from None
        if quick:
            raw = _merge(raw, raw.get("quick", {}))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise PrerecError(f"{p}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        cfg = cls(**raw)
        data = str(Path(data_dir) if data_dir else default_data_dir())
        cfg.domains = [s.replace("{data}", data) for s in cfg.domains]
        cfg.check(str(p))
        return cfg

    def check(self, where: str) -> None:
        bad = [m for m in [*self.models, *self.incremental_models] if m not in MODELS]
        if bad:
            raise PrerecError(f"{where}: unknown model(s) {', '.join(bad)}; known: {', '.join(MODELS)}")
        curves = [n for n, e in MODELS.items() if e.curve is not None]
        bad = [m for m in self.incremental_models if m not in curves]
        if bad:
            raise PrerecError(f"{where}: incremental_models may only name {', '.join(curves)}")
        if self.protocol not in ("fixed", "leave-one-out"):
            raise PrerecError(f"{where}: protocol {self.protocol!r}: expected fixed or leave-one-out")
        for n in self.incremental:
            if not (n == "all" or (isinstance(n, int) and n >= 0)):
                raise PrerecError(f"{where}: incremental entry {n!r}: expected a count >= 0 or \"all\"")
        if not self.domains or not self.targets:
            raise PrerecError(f"{where}: needs domains = [...] and targets = [...]")
        unknown = set(self.sasrec) - {f.name for f in fields(SASRecConfig)}
        if unknown:
            raise PrerecError(f"{where}: [sasrec] unknown key(s) {', '.join(sorted(unknown))}")
        FinetuneConfig.from_dict(self.finetune, where=f"{where}: [finetune]")
        unknown = set(self.pretrain) - {"preset", "set", "variant_set", "select_from", "select_count"}
        if unknown:
            raise PrerecError(f"{where}: [pretrain] unknown key(s) {', '.join(sorted(unknown))}; "
                              "known: preset, set, variant_set, select_from, select_count")
        per_variant = self.pretrain.get("variant_set", {})
        bad = sorted(set(per_variant) - {e.variant for e in MODELS.values() if e.variant})
        if not isinstance(per_variant, dict) or bad:
            raise PrerecError(f"{where}: [pretrain] variant_set: expected a table per pre-trained variant; "
                              f"unknown: {', '.join(bad)}")
        chooser = self.pretrain.get("select_from")
        if chooser is not None and not (isinstance(chooser, list) and all(isinstance(n, str) for n in chooser)):
            raise PrerecError(f"{where}: [pretrain] select_from: expected a list of domain names")
        count = self.pretrain.get("select_count", 1)
        if not (isinstance(count, int) and count >= 1):
            raise PrerecError(f"{where}: [pretrain] select_count: expected an integer >= 1, got {count!r}")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy({k: v for k, v in base.items() if k != "quick"})
    for k, v in over.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_data_dir() -> Path:
    """``$PREREC_SHARED_DATA``, else ``../shared/data`` seen from the working directory."""
    env = os.environ.get("PREREC_SHARED_DATA")
    return Path(env) if env else Path.cwd().parent / "shared" / "data"


@dataclass
class Fold:
    name: str
    targets: list[str]
    sources: list[str]


def make_folds(cfg: BenchmarkConfig, names: list[str]) -> list[Fold]:
    missing = [t for t in cfg.targets if t not in names]
    if missing:
        raise PrerecError(f"targets not found among the loaded domains: {', '.join(missing)} "
                          f"(loaded: {', '.join(names)})")
    if cfg.protocol == "fixed":
        return [Fold("all", list(cfg.targets), [n for n in names if n not in cfg.targets])]
    return [Fold(t, [t], [n for n in names if n != t]) for t in cfg.targets]


def fold_select_on(cfg: BenchmarkConfig, fold: Fold) -> list[str] | None:
    """The fold's held-out selection sources from ``[pretrain] select_from`` (None: not asked for)."""
    names = cfg.pretrain.get("select_from")
    if names is None:
        return None
    chosen = [n for n in names if n in fold.sources][: int(cfg.pretrain.get("select_count", 1))]
    if not chosen:
        raise PrerecError(f"fold {fold.name}: none of [pretrain] select_from ({', '.join(names)}) is a source "
                          f"of it (sources: {', '.join(fold.sources)})")
    return chosen
