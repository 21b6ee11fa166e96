"""A whole benchmark (B1, B2 of docs/evaluation.md) end to end, from one TOML file.

For each fold (a set of zero-shot targets and the source domains they are predicted from) it
pre-trains every PreRec variant the models ask for, evaluates every model on the targets'
test users, trains the incremental curve (PreRec fine-tuned and SASRec from scratch on the
first N target training instances) and writes ``results.json``, ``table.md``,
``incremental.png`` and ``instances.parquet`` (the per-instance ranks of the main table).
The configuration is :class:`prerec.evaluation.benchmark_config.BenchmarkConfig`; models come
from :mod:`prerec.registry`.

Pre-trained runs are kept under ``OUT/runs/<fold>-<variant>`` (or ``runs_dir``) and reused when
the benchmark is run again with the same output folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from prerec.baselines.sasrec import SASRecConfig
from prerec.config import FinetuneConfig, build_config
from prerec.data.domain import Domain
from prerec.data.identity import build_identity
from prerec.data.instances import make_instances
from prerec.data.readers import load_domains
from prerec.data.split import split_users
from prerec.errors import PrerecError
from prerec.evaluation.benchmark_config import BenchmarkConfig, Fold, fold_select_on, make_folds
from prerec.evaluation.evaluate import EvalConfig, Results, json_safe
from prerec.evaluation.experiment import Experiment
from prerec.evaluation.prepare import prepare_without_run
from prerec.registry import MODELS, ModelContext
from prerec.run import Run, load_run
from prerec.training.pretrain import pretrain

log = logging.getLogger(__name__)


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
        self.not_applicable: dict[str, str] = {}  # model -> why it does not apply (e.g. ids not shared)
        self.seeds = list(cfg.train_seeds) or [cfg.seed]
        self.by_seed: dict[int, Results] = {s: Results(ratio=cfg.ratio, ks=tuple(cfg.ks)) for s in self.seeds[1:]}
        self.folds: list[Fold] = []

    # ---- pieces --------------------------------------------------------------------------------

    def variants(self) -> list[str]:
        """The pre-trained variants the main table and the curve need, in registry order."""
        names = [*self.cfg.models, *(self.cfg.incremental_models if self.cfg.incremental else [])]
        wanted = {MODELS[n].variant for n in names} - {None}
        return list(dict.fromkeys(e.variant for e in MODELS.values() if e.variant in wanted))

    def pretrained(self, fold: Fold, variant: str, domains: dict[str, Domain], seed: int | None = None) -> Run:
        """The fold's run of ``variant`` (training seed ``seed``, default the first): loaded when
        done before, else pre-trained now. The user split always keeps the config's ``seed``."""
        seed = self.seeds[0] if seed is None else seed
        run_dir = self.runs_dir / (f"{fold.name}-{variant}" + ("" if seed == self.seeds[0] else f"-seed{seed}"))
        done = run_dir / "DONE"
        if done.exists():
            log.info("reusing the pre-trained run %s", run_dir)
            run = load_run(run_dir)
            self._record(fold, variant, run, json.loads(done.read_text()).get("seconds"), seed)
            return run
        pre = dict(self.cfg.pretrain)
        sets = {**pre.get("set", {}), **pre.get("variant_set", {}).get(variant, {}), "variant": variant,
                "encoder": self.cfg.encoder,
                "seed": seed, "split_seed": self.cfg.seed, "progress": self.progress}
        select_on = fold_select_on(self.cfg, fold)
        if select_on is not None:
            sets["select_on"] = select_on
        tcfg = build_config(pre.get("preset", "paper"), None, None, sets)
        t0 = time.perf_counter()
        run = pretrain([domains[s] for s in fold.sources], tcfg, run_dir, specs=list(fold.sources),
                       resume=(run_dir / "config.json").exists())
        seconds = time.perf_counter() - t0
        self._record(fold, variant, run, seconds, seed)
        done.write_text(json.dumps({"seconds": seconds}) + "\n")
        return run

    def _record(self, fold: Fold, variant: str, run: Run, seconds: float | None, seed: int) -> None:
        selection = run.selection or {}
        key = f"{fold.name}-{variant}" + ("" if seed == self.seeds[0] else f"-seed{seed}")
        self.pretraining[key] = {"train_seed": seed,
            "seconds": seconds, "epochs_trained": len(run.history),
            "epoch_kept": run.epoch,  # the best validation epoch, or (refit, keep_last) the last
            "select_on": selection.get("select_on", run.config.select_on), "refit": bool(selection),
            "history": run.history, "selection": selection}

    def prepare_sources(self, fold: Fold, runs: dict[str, Run], domains: dict[str, Domain]) -> list:
        """The fold's sources, prepared as the targets are (only for models built from their logs)."""
        wanted = [*self.cfg.models, *(self.cfg.incremental_models if self.cfg.incremental else [])]
        if not any(MODELS[n].needs_sources for n in wanted):
            return []
        return self.prepare_targets(Fold(fold.name, fold.sources, []), runs, domains)

    def applicable(self, name: str, sources: list, targets: list) -> bool:
        """Whether ``name`` applies to this fold: an id-based model needs ids the sources share with
        every target of the fold (a declared key space on both sides); records why not."""
        if not MODELS[name].needs_sources:
            return True
        try:
            for target in targets or [None]:
                build_identity(sources, target, required=True)
        except PrerecError as exc:
            self.not_applicable[name] = str(exc)
            log.info("%s: n/a (%s)", name, exc)
            return False
        return True

    def context(self, run: Run | None, n: int | str | None = None, sources: list | None = None) -> ModelContext:
        """What the registry builds a model from (``n``: target training instances, None/"all": all)."""
        sasrec = SASRecConfig(**{**self.cfg.sasrec, "seed": self.cfg.seed, "progress": self.progress})
        finetune = FinetuneConfig.from_dict({"progress": self.progress, **self.cfg.finetune})
        return ModelContext(run=run, mc=dict(self.cfg.mc), finetune=finetune, sasrec=sasrec,
                            n=None if n in (None, "all") else int(n), sources=list(sources or []))

    # ---- the run ---------------------------------------------------------------------------------

    def prepare_targets(self, fold: Fold, runs: dict[str, Run], domains: dict[str, Domain]) -> list:
        """The fold's targets, prepared by its runs (one encoder and post-processing for all)."""
        target_domains = [domains[t] for t in fold.targets]
        if not runs:
            return prepare_without_run(target_domains, self.cfg.encoder, self.cfg.seed, progress=self.progress)
        first = next(iter(runs.values()))
        for v, r in runs.items():
            if (r.encoder_identity, r.config.embedding_postprocess) != (
                    first.encoder_identity, first.config.embedding_postprocess):
                raise PrerecError(f"variant {v!r} uses another encoder or embedding post-processing; "
                                  "all variants of a benchmark must share them")
        return [first.prepare(d, progress=self.progress) for d in target_domains]

    def run_fold(self, fold: Fold, domains: dict[str, Domain]) -> None:
        log.info("fold %s: targets %s; %d sources", fold.name, ", ".join(fold.targets), len(fold.sources))
        runs = {}
        for v in self.variants():
            t0 = time.perf_counter()
            runs[v] = self.pretrained(fold, v, domains)
            self.timings[f"pretrain/{fold.name}-{v}"] = time.perf_counter() - t0
        targets = self.prepare_targets(fold, runs, domains)
        for t in targets:
            self.n_train[t.name] = len(make_instances(t.split.train))
        source_items = {str(i) for s in fold.sources for i in domains[s].item_ids}
        sources = self.prepare_sources(fold, runs, domains)
        models = {name: MODELS[name].build(self.context(runs.get(MODELS[name].variant), sources=sources))
                  for name in self.cfg.models if self.applicable(name, sources, targets)}
        t0 = time.perf_counter()
        exp = Experiment(targets, models, self.eval_cfg, source_items)

        def keep(r) -> None:
            self.main.add(r)
            self.checkpoint()

        exp.run(on_result=keep)
        self.timings[f"main/{fold.name}"] = time.perf_counter() - t0
        self.run_curve(fold, runs, targets, source_items, exp.results, sources)
        self.run_seeds(fold, domains, targets, source_items)

    def run_seeds(self, fold: Fold, domains: dict[str, Domain], targets: list, source_items: set[str]) -> None:
        """The zero-shot PreRec rows again for every further training seed (same split, same users)."""
        names = self.by_seed_models()
        for seed in self.seeds[1:]:
            runs = {v: self.pretrained(fold, v, domains, seed) for v in dict.fromkeys(MODELS[n].variant for n in names)}
            models = {n: MODELS[n].build(self.context(runs[MODELS[n].variant])) for n in names}

            def keep(r, seed=seed) -> None:
                self.by_seed[seed].add(r)
                self.checkpoint()

            Experiment(targets, models, self.eval_cfg, source_items).run(on_result=keep)

    def run_curve(self, fold: Fold, runs: dict[str, Run], targets: list, source_items: set[str],
                  main: Results, sources: list) -> None:
        """The incremental curve; points equal to a main-table model reuse its ranks."""
        cfg = self.cfg
        for model in [m for m in cfg.incremental_models if self.applicable(m, sources, targets)]:
            entry = MODELS[model]
            same_as = dict(entry.same_as)
            for n in cfg.incremental:
                res = self.curve[model].setdefault(str(n), Results(ratio=cfg.ratio, ks=tuple(cfg.ks)))
                if same_as.get(n) in cfg.models:
                    for r in main.ranks:
                        if r.model == same_as[n]:
                            res.add(replace(r, model=model))
                    continue
                spec = entry.curve(self.context(runs.get(entry.variant), n, sources))
                t0 = time.perf_counter()

                def keep_point(r, res=res) -> None:
                    res.add(r)
                    self.checkpoint()

                Experiment(targets, {model: spec}, self.eval_cfg, source_items).run(on_result=keep_point)
                self.timings[f"incremental/{fold.name}/{model}/{n}"] = time.perf_counter() - t0

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

    def by_seed_models(self) -> list[str]:
        names = [n for n in self.cfg.models if MODELS[n].needs_run and MODELS[n].zero_shot]
        return [n for n in names if n in self.cfg.seed_models] if self.cfg.seed_models else names

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
            "not_applicable": self.not_applicable,
            "train_seeds": self.seeds,
            "by_seed": {str(self.seeds[0]): {m: v for m, v in self.main.summary()["mean"].items()
                                             if m in self.by_seed_models()},
                        **{str(s): r.summary()["mean"] for s, r in self.by_seed.items() if r.ranks}},
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
        for seed, res in self.by_seed.items():  # the zero-shot rows of the further training seeds
            if res.ranks:
                tmp = self.out / f".instances-seed{seed}.parquet.tmp{os.getpid()}"
                res.instances_frame().to_parquet(tmp, index=False)
                os.replace(tmp, self.out / f"instances-seed{seed}.parquet")
        md = markdown_report(result)
        (self.out / "table.md").write_text(md)
        if any(curve.values()):  # a config without an incremental curve draws no plot
            plot_incremental(curve, self.n_train, self.main.summary(), self.out / "incremental.png",
                             title=f"{self.cfg.name}: metric vs target training instances")
        return result

