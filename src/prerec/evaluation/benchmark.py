"""A whole benchmark (B1, B2 of BENCHMARKS.md) end to end, from one TOML file.

For each fold (a set of zero-shot targets and the source domains they are predicted from) it
pre-trains every PreRec variant the config asks for, evaluates every model on the targets'
test users, trains the incremental curve (PreRec fine-tuned and SASRec from scratch on the
first N target training instances) and writes ``results.json``, ``table.md``,
``incremental.png`` and ``instances.parquet`` (the per-instance ranks of the main table).

Config keys (see ``src/prerec/configs/experiments/b1.toml``)::

    name, description, ratio, ks, seed, encoder
    domains = [specs]            # NAME=FORMAT:PATH; "{data}" is the shared data folder
    targets = [names]
    protocol = "fixed" | "leave-one-out"   # one fold (targets vs every other domain), or one
                                           # fold per target (it vs every other domain)
    models = [...]               # popularity text text-last prerec prerec-mc prerec-no-domain
                                 # prerec-no-pop zesrec sasrec-scratch prerec-finetuned
    incremental = [0, 10, 100, 1000, "all"];  incremental_models = ["prerec", "sasrec-scratch"]
    max_instances                # evaluation instances per target (seeded subset; quick runs)
    [pretrain] preset, set = {key = value}    # prerec pretrain's preset and --set keys
               select_from = [names], select_count = N
                                 # zero-shot model selection per fold: the first N of these
                                 # names that are sources of the fold become its select_on
    [mc] draws, source;  [finetune] lr, epochs, patience, valid_max_instances;  [sasrec] ...
    [quick] any of the above, merged over the rest with --quick

Pre-trained runs are kept under ``OUT/runs/<fold>-<variant>`` (or ``runs_dir``) and reused when the benchmark is
run again with the same output folder.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from prerec.baselines import TRAINING_FREE, make_baseline
from prerec.baselines.sasrec import SASRecConfig, SASRecScratch
from prerec.data.domain import Domain
from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.data.readers import load_domains
from prerec.data.split import split_users
from prerec.errors import PrerecError
from prerec.evaluation.evaluate import EvalConfig, Results, json_safe
from prerec.evaluation.experiment import Experiment
from prerec.evaluation.prepare import prepare_without_run

log = logging.getLogger(__name__)

VARIANT_MODELS = {"prerec": "prerec", "prerec-no-domain": "prerec-no-domain", "prerec-no-pop": "prerec-no-pop",
                  "zesrec": "zesrec"}
PRETRAINED_MODELS = (*VARIANT_MODELS, "prerec-mc", "prerec-finetuned")
KNOWN_MODELS = (*TRAINING_FREE, *PRETRAINED_MODELS, "sasrec-scratch")
INCREMENTAL_MODELS = ("prerec", "sasrec-scratch")


@dataclass
class BenchmarkConfig:
    name: str = "benchmark"
    description: str = ""
    ratio: float = 0.01
    ks: list[int] = field(default_factory=lambda: [20])
    seed: int = 2023
    encoder: str = "e5"
    domains: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    protocol: str = "fixed"
    models: list[str] = field(default_factory=lambda: ["popularity", "text", "text-last", "prerec"])
    incremental: list[int | str] = field(default_factory=list)
    incremental_models: list[str] = field(default_factory=lambda: list(INCREMENTAL_MODELS))
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
        bad = [m for m in [*self.models, *self.incremental_models] if m not in KNOWN_MODELS]
        if bad:
            raise PrerecError(f"{where}: unknown model(s) {', '.join(bad)}; known: {', '.join(KNOWN_MODELS)}")
        bad = [m for m in self.incremental_models if m not in INCREMENTAL_MODELS]
        if bad:
            raise PrerecError(f"{where}: incremental_models may only name {', '.join(INCREMENTAL_MODELS)}")
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
        unknown = set(self.pretrain) - {"preset", "set", "select_from", "select_count"}
        if unknown:
            raise PrerecError(f"{where}: [pretrain] unknown key(s) {', '.join(sorted(unknown))}; "
                              "known: preset, set, select_from, select_count")
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


def _write_json(path: Path, obj: object) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


class Benchmark:
    """Runs one :class:`BenchmarkConfig` into an output folder."""

    def __init__(self, cfg: BenchmarkConfig, out: str | Path, quick: bool = False, progress: bool = True,
                 runs_dir: str | Path | None = None) -> None:
        self.cfg, self.out, self.quick, self.progress = cfg, Path(out), quick, progress
        self.runs_dir = Path(runs_dir) if runs_dir is not None else self.out / "runs"
        self.eval_cfg = EvalConfig(ratio=cfg.ratio, ks=tuple(cfg.ks), seed=cfg.seed, progress=progress,
                                   max_instances=cfg.max_instances or None)
        self.main = Results(ratio=cfg.ratio, ks=tuple(cfg.ks))
        self.curve: dict[str, dict[str, Results]] = {m: {} for m in cfg.incremental_models}
        self.n_train: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.pretraining: dict[str, dict] = {}
        self.dropped_sources: list[str] = []
        self.folds: list[Fold] = []

    # ---- pieces --------------------------------------------------------------------------------

    def variants(self) -> list[str]:
        wanted = set(self.cfg.models) & set(VARIANT_MODELS)
        if {"prerec-mc", "prerec-finetuned"} & set(self.cfg.models) or (
                "prerec" in self.cfg.incremental_models and self.cfg.incremental):
            wanted.add("prerec")
        return [v for v in VARIANT_MODELS if v in wanted]

    def pretrained(self, fold: Fold, variant: str, domains: dict[str, Domain]):
        """The fold's run of ``variant``: loaded when done before, else pre-trained now."""
        from prerec.training.config import build_config
        from prerec.training.pretrain import pretrain
        from prerec.training.run import load_run

        run_dir = self.runs_dir / f"{fold.name}-{variant}"
        done = run_dir / "DONE"
        if done.exists():
            log.info("reusing the pre-trained run %s", run_dir)
            run = load_run(run_dir)
            self._record(fold, variant, run, json.loads(done.read_text()).get("seconds"))
            return run
        pre = dict(self.cfg.pretrain)
        sets = {**pre.get("set", {}), "variant": VARIANT_MODELS[variant], "encoder": self.cfg.encoder,
                "seed": self.cfg.seed, "progress": self.progress}
        select_on = fold_select_on(self.cfg, fold)
        if select_on is not None:
            sets["select_on"] = select_on
        tcfg = build_config(pre.get("preset", "paper"), None, None, sets)
        t0 = time.perf_counter()
        run = pretrain([domains[s] for s in fold.sources], tcfg, run_dir, specs=list(fold.sources),
                       resume=(run_dir / "config.json").exists())
        seconds = time.perf_counter() - t0
        self._record(fold, variant, run, seconds)
        done.write_text(json.dumps({"seconds": seconds}) + "\n")
        return run

    def _record(self, fold: Fold, variant: str, run, seconds: float | None) -> None:
        selection = run.selection or {}
        self.pretraining[f"{fold.name}-{variant}"] = {
            "seconds": seconds, "epochs_trained": len(run.history),
            "epoch_kept": run.epoch,  # the best validation epoch, or (refit, keep_last) the last
            "select_on": selection.get("select_on", run.config.select_on), "refit": bool(selection),
            "history": run.history, "selection": selection}

    def sasrec(self, n: int | str):
        cfg = SASRecConfig(**{**self.cfg.sasrec, "seed": self.cfg.seed, "progress": self.progress})

        def factory(target: PreparedDomain):
            train = make_instances(target.split.train)
            return SASRecScratch(cfg).fit([], target, instances=None if n == "all" else train.first(int(n)))

        return factory

    def finetuned(self, run, n: int | str):
        from prerec.intervention import finetune

        kw = {"progress": self.progress, **self.cfg.finetune}

        def factory(target: PreparedDomain):
            return finetune(run, target, None if n == "all" else int(n), **kw)

        return factory

    def prerec(self, run, mode: str = "zero-shot"):
        from prerec.intervention import PreRecRecommender

        kw = {}
        if mode == "zero-shot-mc":
            kw = {"mc_draws": int(self.cfg.mc.get("draws", 16)), "mc_source": self.cfg.mc.get("source", "empirical")}
        return PreRecRecommender(run, mode=mode, **kw)

    # ---- the run ---------------------------------------------------------------------------------

    def run_fold(self, fold: Fold, domains: dict[str, Domain]) -> None:
        cfg = self.cfg
        log.info("fold %s: targets %s; %d sources", fold.name, ", ".join(fold.targets), len(fold.sources))
        runs = {}
        for v in self.variants():
            t0 = time.perf_counter()
            runs[v] = self.pretrained(fold, v, domains)
            self.timings[f"pretrain/{fold.name}-{v}"] = time.perf_counter() - t0
        target_domains = [domains[t] for t in fold.targets]
        if runs:
            first = next(iter(runs.values()))
            for v, r in runs.items():
                if (r.encoder_identity, r.config.embedding_postprocess) != (
                        first.encoder_identity, first.config.embedding_postprocess):
                    raise PrerecError(f"variant {v!r} uses another encoder or embedding post-processing; "
                                      "all variants of a benchmark must share them")
            targets = [first.prepare(d, progress=self.progress) for d in target_domains]
        else:
            targets = prepare_without_run(target_domains, cfg.encoder, cfg.seed, progress=self.progress)
        for t in targets:
            self.n_train[t.name] = len(make_instances(t.split.train))
        source_items = {str(i) for s in fold.sources for i in domains[s].item_ids}

        models: dict = {}
        for name in cfg.models:
            if name in TRAINING_FREE:
                models[name] = make_baseline(name)
            elif name in VARIANT_MODELS:
                models[name] = self.prerec(runs[name])
            elif name == "prerec-mc":
                models[name] = self.prerec(runs["prerec"], "zero-shot-mc")
            elif name == "prerec-finetuned":
                models[name] = self.finetuned(runs["prerec"], "all")
            elif name == "sasrec-scratch":
                models[name] = self.sasrec("all")
        t0 = time.perf_counter()
        exp = Experiment(targets, models, self.eval_cfg, source_items)

        def keep(r) -> None:
            self.main.add(r)
            self.checkpoint()

        exp.run(on_result=keep)
        self.timings[f"main/{fold.name}"] = time.perf_counter() - t0

        # incremental curve; N = all and N = 0 reuse the main table's models when they are there
        reuse = {("prerec", 0): "prerec", ("prerec", "all"): "prerec-finetuned",
                 ("sasrec-scratch", "all"): "sasrec-scratch"}
        for model in cfg.incremental_models:
            for n in cfg.incremental:
                key = str(n)
                res = self.curve[model].setdefault(key, Results(ratio=cfg.ratio, ks=tuple(cfg.ks)))
                if (model, n) in reuse and reuse[(model, n)] in cfg.models:
                    for r in exp.results.ranks:
                        if r.model == reuse[(model, n)]:
                            res.add(dataclasses.replace(r, model=model))
                    continue
                if model == "prerec":
                    spec = self.prerec(runs["prerec"]) if n == 0 else self.finetuned(runs["prerec"], n)
                else:
                    spec = self.sasrec(n)
                t0 = time.perf_counter()

                def keep_point(r, res=res) -> None:
                    res.add(r)
                    self.checkpoint()

                Experiment(targets, {model: spec}, self.eval_cfg, source_items).run(on_result=keep_point)
                self.timings[f"incremental/{fold.name}/{model}/{key}"] = time.perf_counter() - t0

    def run(self) -> dict:
        t_start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        domains = {d.name: d for d in load_domains(self.cfg.domains)}
        folds = make_folds(self.cfg, list(domains))
        # a source whose training users hold no (history, next item) pair cannot be trained on
        useless = {n for f in folds for n in f.sources
                   if len(make_instances(split_users(domains[n].sequences, self.cfg.seed).train)) == 0}
        if useless:
            log.info("sources without training instances, left out: %s", ", ".join(sorted(useless)))
            self.dropped_sources = sorted(useless)
            for f in folds:
                f.sources = [n for n in f.sources if n not in useless]
        self.folds = folds
        for fold in folds:
            self.run_fold(fold, domains)
        self.timings["total"] = time.perf_counter() - t_start
        return self.write(folds)

    def checkpoint(self) -> None:
        """Write what is done so far (an interrupted benchmark still leaves its figures)."""
        try:
            self.write(self.folds, partial=True)
        except Exception as exc:  # a report problem must not kill a long run
            log.warning("could not write intermediate results: %s", exc)

    # ---- outputs -------------------------------------------------------------------------------

    def write(self, folds: list[Fold], partial: bool = False) -> dict:
        from prerec.evaluation.plots import plot_incremental
        from prerec.evaluation.report import markdown_report

        curve = {m: {n: res.summary() for n, res in per_n.items()} for m, per_n in self.curve.items()}
        unseen = self.main.summary("unseen")
        result = {
            "benchmark": self.cfg.name,
            "description": self.cfg.description,
            "quick": self.quick,
            "complete": not partial,
            "config": {k: v for k, v in vars(self.cfg).items() if k != "quick"},
            "folds": [vars(f) for f in folds],
            "sources_without_training_instances": self.dropped_sources,
            "results": self.main.summary(),
            "unseen": unseen,
            "incremental": curve,
            "n_train_instances": self.n_train,
            "pretraining": self.pretraining,
            "seconds": self.timings,
        }
        _write_json(self.out / "results.json", result)
        frame = self.main.instances_frame()
        tmp = self.out / f".instances.parquet.tmp{os.getpid()}"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.out / "instances.parquet")
        md = markdown_report(result)
        (self.out / "table.md").write_text(md)
        if any(curve.values()):  # a config without an incremental curve draws no plot
            plot_incremental(curve, self.n_train, self.main.summary(), self.out / "incremental.png",
                             title=f"{self.cfg.name}: metric vs target training instances")
        return result

