"""The configuration tree: training (with the model's configuration nested in it) and fine-tuning.

Defaults are the paper's recipe (docs/method.md, "Training"). A training configuration is built
in layers: the dataclass defaults, a named preset (``src/prerec/configs/<name>.toml``), a TOML
file (``--config FILE``) and ``--set key=value`` overrides. Keys are either top-level training
keys (``epochs``), nested model keys (``model.hidden_size``) or, for convenience and for the
command-line contract, a model key without its prefix (``hidden_size``). ``variant`` names a
combination of the model's two confounder switches. Every layer is checked against the
dataclasses: an unknown key or a value of the wrong type is a :class:`~prerec.errors.PrerecError`
naming the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from prerec.constants import SPLIT_SEED
from prerec.errors import PrerecError
from prerec.model import TEXT_ONLY_VARIANTS, VARIANTS, ModelConfig
from prerec.popularity_factors import FACTOR_SETS

BATCH_LAYOUTS = ("sequence", "instance")
PRIOR_FORMS = ("weight-decay", "map")
SOURCE_USERS = ("train", "all")
ALIASES = {"mode": "batch_layout"}  # older run files and presets


@dataclass
class TrainConfig:
    """Everything that decides a pre-training run. Defaults: the paper's recipe."""

    model: ModelConfig = field(default_factory=ModelConfig)
    # priors (docs/method.md, "The MAP objective and its two realisations")
    lambda_domain: float = 0.3  # prior precision of D_k
    lambda_offset: float = 100.0  # prior precision of e_j
    prior_form: str = "weight-decay"  # weight-decay: the research code's; map: the written objective
    lambda_identity: float = 100.0  # prior precision of a_v (item identity), always as MAP
    identity_lr_scale: float = 1.0  # the identity table's learning rate is lr x this (sparse rows learn slowly)
    transition_head: bool = True  # with item identity: + beta log(1 + source transitions), beta fitted held out
    # text
    encoder: str = "e5"
    embedding_postprocess: str = "none"  # none | center | whiten (prerec.text.postprocess)
    # training
    batch_layout: str = "sequence"  # sequence: one causal pass per chunk of <= 65 items; instance: the paper's
    n_negatives: int = 255
    train_repeats: bool = True  # false: an instance whose target is in its history is left out of the loss
    batch_size: int = 256  # training instances per optimiser step (over all processes)
    lr: float = 3e-4
    lr_decay: float = 0.65  # learning rate x this after every epoch (1.0: no schedule)
    epochs: int = 15
    patience: int = 3  # early stopping on validation r-NDCG@K%
    metric_ratio: float = 0.01  # K = floor(ratio * N); the paper's ratio is 0.0004
    seed: int = SPLIT_SEED  # training randomness: initial weights, draws, negatives, dropout
    split_seed: int = SPLIT_SEED  # the user split (kept fixed so that test users stay the same)
    domain_balanced: bool = True  # sample weight 1 / (n_k * n_domains)
    source_users: str = "train"  # train: the sources' training users; all: every user (needs select_on)
    max_instances_per_epoch: int = 0  # 0: an epoch = as many draws as training instances
    valid_max_instances: int = 0  # per validation domain; 0: all its validation instances
    select_on: list[str] = field(default_factory=list)  # source domains held out as zero-shot pseudo-targets
    refit: bool = False  # with select_on: then train again on every source for the chosen number of epochs
    keep_last: bool = False  # keep the last epoch's weights (validation is still recorded, chooses nothing)
    eval_batch_size: int = 256
    checkpoint_steps: int = 0  # also checkpoint every this many steps inside an epoch (0: epoch ends only)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool = True

    @property
    def variant(self) -> str:
        return self.model.variant

    def validate(self) -> TrainConfig:
        m = self.model
        checks = [
            (self.batch_layout in BATCH_LAYOUTS, "batch_layout", f"is not one of {', '.join(BATCH_LAYOUTS)}"),
            (self.prior_form in PRIOR_FORMS, "prior_form", f"is not one of {', '.join(PRIOR_FORMS)}"),
            (self.source_users in SOURCE_USERS, "source_users", f"is not one of {', '.join(SOURCE_USERS)}"),
            (self.lambda_identity > 0, "lambda_identity", "must be > 0"),
            (0 <= m.dropout < 1, "model.dropout", "must be in [0, 1)"),
            (m.history_shrinkage >= 0, "model.history_shrinkage", "must be >= 0"),
            (m.taste_calibration >= 0, "model.taste_calibration", "must be >= 0"),
            (0 < self.metric_ratio <= 1, "metric_ratio", "must be in (0, 1]"),
            (self.lr > 0 and self.lr_decay > 0, "lr", "and lr_decay must be > 0"),
        ]
        for key in ("hidden_size", "n_layers", "n_heads", "max_history", "pop_hidden"):
            checks.append((getattr(m, key) >= 1, f"model.{key}", "must be >= 1"))
        for key in ("n_negatives", "batch_size", "epochs", "eval_batch_size"):
            checks.append((getattr(self, key) >= 1, key, "must be >= 1"))
        checks.append((m.hidden_size % m.n_heads == 0, "model.n_heads", f"does not divide hidden_size {m.hidden_size}"))
        checks.append((m.popularity_factors in FACTOR_SETS, "model.popularity_factors",
                       f"is not one of {', '.join(FACTOR_SETS)}"))
        for ok, key, what in checks:
            if not ok:
                raise PrerecError(f"config key {key!r} {what} (got {_get(self, key)!r})")
        if self.refit and not self.select_on:
            raise PrerecError("config key 'refit': needs 'select_on' (the held-out sources that choose the epochs)")
        if self.source_users == "all" and not self.select_on:
            raise PrerecError("config key 'source_users' = all trains on the sources' validation users too, so "
                              "the epoch must be chosen on held-out sources: set 'select_on'")
        if self.refit and self.keep_last:
            raise PrerecError("config keys 'refit' and 'keep_last' exclude each other: refit selects on "
                              "held-out sources, keep_last selects nothing")
        return self

    def model_config(self, text_dim: int, domain_items: list[int], identity_items: int = 0) -> ModelConfig:
        """The model's configuration completed with what the data decides."""
        return dataclasses.replace(self.model, text_dim=int(text_dim), domain_items=list(domain_items),
                                   identity_items=int(identity_items))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ModelConfig.DATA_FIELDS:
            d["model"].pop(key, None)
        d["model"]["n_factors"] = self.model.n_factors  # for the record (derived, ignored when read)
        return d

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "config") -> TrainConfig:
        """From a (nested or flat) dict, e.g. a run's ``config.json``; older flat files load too."""
        d = dict(d)
        if "split_seed" not in d and "seed" in d:  # runs from before the two seeds split
            d["split_seed"] = d["seed"]
        cfg = cls()
        apply(cfg, d, where=where)
        return cfg


@dataclass
class FinetuneConfig:
    """Incremental training and fine-tuning on a target (docs/method.md, "Incremental training")."""

    lr: float = 1e-4
    epochs: int = 25
    patience: int = 3
    lr_grid: list[float] = field(default_factory=list)  # several: each tried, chosen on target validation
    lambda_identity_grid: list[float] = field(default_factory=list)  # likewise for the identity prior
    target_identity: bool = True  # target items get identity rows even when the run has none (no shared ids)
    batch_size: int | None = None  # None: the run's
    batch_layout: str | None = None  # None: the run's
    valid_max_instances: int | None = None  # None: the run's
    n_negatives: int | None = None  # None: the run's (sampled softmax negatives per instance)
    identity_shrinkage: float | None = None  # None: the run's kappa (an item seen kappa times carries half its identity)
    seed: int | None = None  # None: the run's; the training's randomness only (not the validation subset)
    # several whole settings, each tried (with the grids above) and chosen on target validation
    # users: a table of FinetuneConfig keys (and lambda_identity) that replace this config's
    variants: list[dict] = field(default_factory=list)
    progress: bool = False

    VARIANT_KEYS = ("lr", "epochs", "patience", "lr_grid", "lambda_identity_grid", "lambda_identity",
                    "batch_size", "n_negatives", "identity_shrinkage")

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "[finetune]") -> FinetuneConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PrerecError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        variants = d.get("variants", [])
        if not isinstance(variants, list):
            raise PrerecError(f"{where}: variants: expected a list of tables, got {type(variants).__name__}")
        for i, v in enumerate(variants):
            if not isinstance(v, dict):
                raise PrerecError(f"{where}: variants[{i}]: expected a table of settings, got {type(v).__name__}")
            bad = sorted(set(v) - set(cls.VARIANT_KEYS))
            if bad:
                raise PrerecError(f"{where}: variants[{i}]: unknown key(s) {', '.join(bad)}; "
                                  f"a variant may set {', '.join(cls.VARIANT_KEYS)}")
        return cls(**d)

    def expanded(self) -> list[tuple[dict, FinetuneConfig]]:
        """The settings to try: (the variant's own keys, the config it gives); one when no variants.
        A variant's ``lambda_identity`` is a grid of one."""
        out = []
        for v in self.variants or [{}]:
            keys = {k: val for k, val in v.items() if k != "lambda_identity"}
            if "lambda_identity" in v:
                keys["lambda_identity_grid"] = [float(v["lambda_identity"])]
            out.append((dict(v), dataclasses.replace(self, variants=[], **keys)))
        return out


# ---- typed updates -------------------------------------------------------------------------

def _get(cfg: TrainConfig, key: str) -> object:
    obj: object = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _field_types() -> dict[str, object]:
    """Every settable key: training keys and ``model.<key>`` (data-derived model keys excluded)."""
    hints = typing.get_type_hints(TrainConfig)
    out = {f.name: hints[f.name] for f in fields(TrainConfig) if f.name != "model"}
    model_hints = typing.get_type_hints(ModelConfig)
    for f in fields(ModelConfig):
        if f.name not in ModelConfig.DATA_FIELDS:
            out[f"model.{f.name}"] = model_hints[f.name]
    return out


def _canonical(key: str, types_: dict[str, object]) -> str:
    key = ALIASES.get(key, key)
    if key not in types_ and f"model.{key}" in types_:
        return f"model.{key}"
    return key


def _type_name(tp: object) -> str:
    if tp is bool:
        return "bool (true/false)"
    if typing.get_origin(tp) is list:
        return "list of str (comma separated)"
    return getattr(tp, "__name__", str(tp))


def _parse(text: str, tp: object, bad: PrerecError) -> object:
    """A ``--set`` string as a value of type ``tp``."""
    text = text.strip()
    try:
        if tp is bool:
            return {"true": True, "1": True, "yes": True, "on": True,
                    "false": False, "0": False, "no": False, "off": False}[text.lower()]
        if tp is int:
            return int(text.replace("_", ""))
        if tp is float:
            return float(text)
    except (KeyError, ValueError):
        raise bad from None
    if typing.get_origin(tp) is list:
        return [s.strip() for s in text.split(",") if s.strip()]
    raise bad


def coerce(key: str, value: object, *, where: str, parse: bool = True) -> tuple[str, object]:
    """``(canonical key, checked value)``; with ``parse`` a string is parsed (``--set``), without
    it (TOML, JSON) it must already have the key's type."""
    types_ = _field_types()
    key = _canonical(key, types_)
    if key not in types_:
        known = sorted({k.removeprefix("model.") for k in types_} | {"variant"})
        raise PrerecError(f"{where}: unknown config key {key!r}; known keys: {', '.join(known)}")
    tp = types_[key]
    bad = PrerecError(f"{where}: config key {key!r} expects {_type_name(tp)}, got {value!r}")
    if isinstance(value, str) and tp is not str and parse:
        return key, _parse(value, tp, bad)
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}
    if tp in ok:
        if not ok[tp](value):
            raise bad
        return key, float(value) if tp is float else value
    if typing.get_origin(tp) is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return key, list(value)
    raise bad


def _flatten(values: dict) -> dict:
    """``{"model": {"a": 1}}`` -> ``{"model.a": 1}``; other keys as they are."""
    out = {}
    for key, value in values.items():
        if key == "model" and isinstance(value, dict):
            skip = (*ModelConfig.DATA_FIELDS, *ModelConfig.DERIVED_FIELDS)
            out.update({f"model.{k}": v for k, v in value.items() if k not in skip})
        else:
            out[key] = value
    return out


def apply(cfg: TrainConfig, values: dict, *, where: str, parse: bool = False) -> TrainConfig:
    """Set each key of ``values`` on ``cfg`` after checking it (``parse``: values are strings to parse)."""
    for key, value in _flatten(values).items():
        if key == "variant":
            names = [*VARIANTS, *TEXT_ONLY_VARIANTS]
            if value not in names:
                raise PrerecError(f"{where}: config key 'variant': {value!r} is not one of {', '.join(names)}")
            if value in TEXT_ONLY_VARIANTS:
                cfg.model.item_identity = False
            cfg.model.domain_confounder, cfg.model.popularity_head = VARIANTS[TEXT_ONLY_VARIANTS.get(value, value)]
            continue
        key, checked = coerce(key, value, where=where, parse=parse)
        target = cfg.model if key.startswith("model.") else cfg
        setattr(target, key.removeprefix("model."), checked)
    return cfg


def parse_sets(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise PrerecError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value
    return out


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("prerec.configs").iterdir() if p.name.endswith(".toml"))


def read_toml(path: Path | str, *, where: str | None = None) -> dict:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PrerecError(f"--config {p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PrerecError(f"{where or p}: not valid TOML: {exc}") from None
    # allow an optional [train] table
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return data


def load_preset(name: str) -> dict:
    names = preset_names()
    if name not in names:
        raise PrerecError(f"--preset {name!r}: unknown preset; known: {', '.join(names)}")
    res = resources.files("prerec.configs") / f"{name}.toml"
    return tomllib.loads(res.read_text())


def build_config(preset: str | None = "paper", config_file: str | Path | None = None,
                 sets: list[str] | None = None, extra: dict | None = None) -> TrainConfig:
    """Defaults, then the preset, then ``config_file``, then ``extra`` (e.g. CLI flags), then ``--set``s."""
    cfg = TrainConfig()
    if preset:
        apply(cfg, load_preset(preset), where=f"preset {preset!r}")
    if config_file:
        apply(cfg, read_toml(config_file), where=str(config_file))
    if extra:
        apply(cfg, extra, where="command line")
    apply(cfg, parse_sets(sets), where="--set", parse=True)
    return cfg.validate()


def train_config(**values: object) -> TrainConfig:
    """A checked configuration from keyword values (flat model keys allowed), over the defaults."""
    return apply(TrainConfig(), values, where="train_config").validate()


__all__ = ["BATCH_LAYOUTS", "PRIOR_FORMS", "FinetuneConfig", "TrainConfig", "apply", "build_config", "coerce",
           "load_preset", "parse_sets", "preset_names", "train_config"]
