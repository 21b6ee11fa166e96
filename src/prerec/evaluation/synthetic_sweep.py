"""``prerec experiment synthetic``: zero-shot transfer against the planted bias magnitude.

For every world seed and every bias magnitude beta (``domain_bias``), a world is simulated
(:mod:`prerec.simulate`); each PreRec variant is pre-trained on its source domains (the
``select_on`` sources held out to choose the epoch zero-shot) once per prior form, and every
model is evaluated zero-shot on the target domains, each with its own planted D_k. Models:
the variants ``prerec``, ``prerec-no-domain``, ``prerec-no-pop``, ``zesrec``; ``prerec-mc-empirical``
and ``prerec-mc-prior`` (Monte Carlo over D, docs/model.md); ``oracle`` (the world's generating
scores, with the target's D_k), ``oracle-no-domain`` (the same with D_k dropped: the most a
do(D = 0) model could reach) and ``oracle-process`` (D_k and the trend dropped: the shared
process alone); ``prerec-day-one`` and ``prerec-no-domain-day-one`` (the target's popularity
factors all 0, as on its first day: its counts cannot reveal its D_k); the baselines
``popularity``, ``text``, ``text-last``.
Recovery of the planted D (:func:`prerec.evaluation.synthetic.recovery_matrix`, centred) is
measured on the ``prerec`` and ``prerec-no-pop`` runs.

Config keys (``src/prerec/configs/experiments/synthetic.toml``)::

    name, kind = "synthetic", description, ratio, ks, max_instances
    seeds = [..], biases = [..], targets = [..], select_on = [..], models = [..]
    encoder = "table" (the world's embeddings input) | any encoder spec (e.g. e5: reads the texts)
    forms = ["weight-decay"] (+ "map" where the training config has the key prior_form)
    [world] SimConfig options (domain_bias and seed come from the sweep)
    [pretrain] preset, set = {key = value};  [mc] draws;  [quick] any of the above

Writes ``results.json``, ``table.md`` and ``synthetic.png`` (metric against beta, one line per
model; recovery against beta) into the output folder; worlds and runs go under ``runs_dir``
(default ``OUT/work``) and are reused when the sweep is run again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prerec.errors import PrerecError
from prerec.evaluation.evaluate import EvalConfig, Results, json_safe

log = logging.getLogger(__name__)

VARIANTS = ("prerec", "prerec-no-domain", "prerec-no-pop", "zesrec")
MC = {"prerec-mc-empirical": "empirical", "prerec-mc-prior": "prior"}
DAY_ONE = {"prerec-day-one": "prerec", "prerec-no-domain-day-one": "prerec-no-domain"}
ORACLES = {"oracle": (True, True), "oracle-no-domain": (False, True), "oracle-process": (False, False)}
BASELINES = ("popularity", "text", "text-last")
MODELS = (*VARIANTS, *MC, *DAY_ONE, *ORACLES, *BASELINES)
FORMS = {"weight-decay": {}, "map": {"prior_form": "map"}}


@dataclass
class SweepConfig:
    name: str = "synthetic"
    kind: str = "synthetic"
    description: str = ""
    ratio: float = 0.01
    ks: list[int] = field(default_factory=lambda: [20])
    max_instances: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    biases: list[float] = field(default_factory=lambda: [0.0, 1.0])
    targets: list[str] = field(default_factory=list)
    select_on: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: list(MODELS))
    encoder: str = "table"
    forms: list[str] = field(default_factory=lambda: ["weight-decay"])
    world: dict[str, Any] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)
    mc: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path, quick: bool = False) -> SweepConfig:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise PrerecError(f"{p}: not valid TOML: {exc}") from None
        if quick:
            over = raw.get("quick", {})
            raw = {**raw, **{k: ({**raw.get(k, {}), **v} if isinstance(v, dict) else v) for k, v in over.items()}}
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise PrerecError(f"{p}: unknown key(s) {', '.join(unknown)}")
        cfg = cls(**raw)
        cfg.check(str(p))
        return cfg

    def check(self, where: str) -> None:
        from prerec.simulate import SimConfig

        bad = [m for m in self.models if m not in MODELS]
        if bad:
            raise PrerecError(f"{where}: unknown model(s) {', '.join(bad)}; known: {', '.join(MODELS)}")
        bad = [f for f in self.forms if f not in FORMS]
        if bad:
            raise PrerecError(f"{where}: unknown prior form(s) {', '.join(bad)}; known: {', '.join(FORMS)}")
        unknown = set(self.world) - {f.name for f in dataclasses.fields(SimConfig)} | (
            set(self.world) & {"domain_bias", "seed"})
        if unknown:
            raise PrerecError(f"{where}: [world] key(s) {', '.join(sorted(unknown))} not allowed "
                              "(SimConfig options; domain_bias and seed come from the sweep)")
        names = [f"d{k}" for k in range(int(self.world.get("n_domains", SimConfig.n_domains)))]
        missing = [n for n in [*self.targets, *self.select_on] if n not in names]
        if missing or not self.targets:
            raise PrerecError(f"{where}: targets and select_on must name domains of the world "
                              f"({', '.join(names)}); got {', '.join(missing) or 'no targets'}")


class Sweep:
    """Runs one :class:`SweepConfig` into an output folder."""

    def __init__(self, cfg: SweepConfig, out: str | Path, runs_dir: str | Path | None = None,
                 progress: bool = True) -> None:
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.work = Path(runs_dir) if runs_dir is not None else self.out / "work"
        self.eval_cfg = EvalConfig(ratio=cfg.ratio, ks=tuple(cfg.ks), progress=False,
                                   max_instances=cfg.max_instances or None)
        self.rows: list[dict] = []  # one per (seed, bias, form, model)
        self.recovery: list[dict] = []
        self.seconds: dict[str, float] = {}

    def world(self, seed: int, bias: float) -> Path:
        from prerec.simulate import SimConfig, simulate

        path = self.work / "worlds" / f"s{seed}-b{bias:g}"
        if not (path / "world.json").exists():
            if path.exists():  # an interrupted write: start again
                import shutil

                shutil.rmtree(path)
            simulate(path, SimConfig(**{**self.cfg.world, "domain_bias": float(bias), "seed": int(seed)}))
        return path

    def train_config(self, variant: str, form: str, encoder: str, seed: int):
        from prerec.config import build_config

        pre = self.cfg.pretrain
        sets = {**pre.get("set", {}), **FORMS[form], "variant": variant, "encoder": encoder, "seed": seed,
                "select_on": list(self.cfg.select_on), "progress": self.progress}
        return build_config(pre.get("preset", "paper"), None, None, sets)

    def pretrained(self, tag: str, variant: str, form: str, encoder: str, seed: int, sources):
        from prerec.run import load_run
        from prerec.training.pretrain import pretrain

        run_dir = self.work / "runs" / f"{tag}-{form}-{variant}"
        if (run_dir / "DONE").exists():
            return load_run(run_dir)
        t0 = time.perf_counter()
        run = pretrain(sources, self.train_config(variant, form, encoder, seed), run_dir,
                       resume=(run_dir / "config.json").exists())
        self.seconds[f"pretrain/{tag}-{form}-{variant}"] = time.perf_counter() - t0
        (run_dir / "DONE").write_text(json.dumps({"epoch": run.epoch}) + "\n")
        return run

    def models_for(self, runs: dict[str, Any], truth) -> dict[str, Any]:
        from prerec.evaluation.synthetic import DayOne, OracleRecommender
        from prerec.intervention import PreRecRecommender
        from prerec.registry import build_model

        out: dict[str, Any] = {}
        for name in self.cfg.models:
            if name in VARIANTS:
                out[name] = PreRecRecommender(runs[name], "zero-shot")
            elif name in MC:
                out[name] = PreRecRecommender(runs["prerec"], "zero-shot-mc", mc_source=MC[name],
                                              mc_draws=int(self.cfg.mc.get("draws", 16)))
            elif name in DAY_ONE:
                out[name] = DayOne(PreRecRecommender(runs[DAY_ONE[name]], "zero-shot"), name)
            elif name in ORACLES:
                bias, pop = ORACLES[name]
                out[name] = OracleRecommender(truth, with_bias=bias, with_popularity=pop)
            else:
                out[name] = build_model(name)
        return out

    def run_world(self, seed: int, bias: float) -> None:
        from prerec.data import load_domains
        from prerec.evaluation.experiment import Experiment
        from prerec.evaluation.synthetic import absorbed_fraction, domain_norms, recovery_matrix
        from prerec.simulate import load_truth

        path = self.world(seed, bias)
        truth = load_truth(path)
        meta = json.loads((path / "world.json").read_text())
        encoder = meta["encoder_for_embeddings_input"] if self.cfg.encoder == "table" else self.cfg.encoder
        domains = {d.name: d for d in load_domains([f"{n}=canonical:{path / n}" for n in truth.domain_names])}
        sources = [d for n, d in domains.items() if n not in self.cfg.targets]
        tag = f"s{seed}-b{bias:g}"
        wanted = {m for m in self.cfg.models if m in VARIANTS} | {DAY_ONE[m] for m in self.cfg.models if m in DAY_ONE}
        if set(MC) & set(self.cfg.models):
            wanted.add("prerec")
        for form in self.cfg.forms:
            runs = {v: self.pretrained(tag, v, form, encoder, seed, sources) for v in VARIANTS if v in wanted}
            first = next(iter(runs.values()), None)
            targets = [first.prepare(domains[t]) for t in self.cfg.targets] if first else None
            if targets is None:
                from prerec.evaluation.prepare import prepare_without_run

                targets = prepare_without_run([domains[t] for t in self.cfg.targets], encoder, seed)
            res = Results(ratio=self.cfg.ratio, ks=tuple(self.cfg.ks))
            Experiment(targets, self.models_for(runs, truth), self.eval_cfg).run(on_result=res.add)
            for model, metrics in res.summary()["mean"].items():
                self.rows.append({"seed": seed, "bias": bias, "form": form, "model": model, **metrics})
            for v in ("prerec", "prerec-no-pop"):
                if v in runs:
                    prepared = [runs[v].prepare(d) for d in sources]
                    _, C = recovery_matrix(runs[v], prepared, truth, centred=True)
                    off = C[~np.eye(len(C), dtype=bool)].mean() if len(C) > 1 else 0.0
                    planted = bias > 0  # at beta = 0 there is nothing to recover
                    self.recovery.append({"seed": seed, "bias": bias, "form": form, "variant": v,
                                          "diagonal": float(np.diag(C).mean()) if planted else None,
                                          "margin": float(np.diag(C).mean() - off) if planted else None,
                                          "absorbed": float(np.mean(list(absorbed_fraction(
                                              runs[v], prepared, truth).values()))) if planted else None,
                                          "d_rms": float(np.mean(list(domain_norms(runs[v]).values()))),
                                          "epoch": runs[v].epoch})
        self.write(partial=True)

    def run(self) -> dict:
        t0 = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        for seed in self.cfg.seeds:
            for bias in self.cfg.biases:
                log.info("world seed %d, domain bias %g", seed, bias)
                self.run_world(int(seed), float(bias))
        self.seconds["total"] = time.perf_counter() - t0
        return self.write()

    def write(self, partial: bool = False) -> dict:
        from prerec.evaluation.synthetic_report import plot_sweep, sweep_markdown

        result = {"experiment": self.cfg.name, "description": self.cfg.description, "complete": not partial,
                  "config": {k: v for k, v in vars(self.cfg).items() if k != "quick"},
                  "rows": self.rows, "recovery": self.recovery, "seconds": self.seconds}
        (self.out / "results.json").write_text(json.dumps(json_safe(result), indent=1) + "\n")
        (self.out / "table.md").write_text(sweep_markdown(result))
        if self.rows:
            plot_sweep(result, self.out / "synthetic.png")
        return result
