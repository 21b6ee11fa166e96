"""The typed training configuration: defaults are the paper's (SPEC.md section 5).

A configuration is built in layers: the dataclass defaults, a named preset
(``src/prerec/configs/<name>.toml``), a TOML file (``--config FILE``) and ``--set key=value``
overrides. Every layer is checked against the dataclass: an unknown key or a value of the
wrong type is a :class:`~prerec.errors.PrerecError` naming the key and the expected type.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from prerec.errors import PrerecError
from prerec.model import VARIANTS, ModelConfig

MODES = ("sequence", "instance")


@dataclass
class TrainConfig:
    """Everything that decides a pre-training run. Defaults: the paper's recipe."""

    # model (SPEC.md section 2)
    hidden_size: int = 256
    n_layers: int = 2
    n_heads: int = 1
    ff_size: int = 0  # 0: the hidden size
    dropout: float = 0.1
    max_history: int = 64
    pop_hidden: int = 512
    variant: str = "prerec"  # prerec | prerec-no-domain | prerec-no-pop | zesrec
    item_offsets: bool = True
    lambda_domain: float = 0.3  # prior precision of D_k
    lambda_offset: float = 100.0  # prior precision of e_j
    init_std: float = 0.02
    # text
    encoder: str = "e5"
    embedding_postprocess: str = "none"  # handed to prerec.text.postprocess when it exists
    # training (SPEC.md section 5)
    mode: str = "sequence"  # sequence: one causal pass per chunk of <= 65 items; instance: the paper's
    n_negatives: int = 255
    batch_size: int = 256  # training instances per optimiser step (over all processes)
    lr: float = 3e-4
    lr_decay: float = 0.65  # learning rate x this after every epoch (1.0: no schedule)
    epochs: int = 15
    patience: int = 3  # early stopping on validation r-NDCG@K%
    metric_ratio: float = 0.01  # K = floor(ratio * N); the paper's ratio is 0.0004
    seed: int = 2023
    domain_balanced: bool = True  # sample weight 1 / (n_k * n_domains)
    max_instances_per_epoch: int = 0  # 0: an epoch = as many draws as training instances
    valid_max_instances: int = 0  # per validation domain; 0: all its validation instances
    select_on: list[str] = field(default_factory=list)  # source domains held out as zero-shot pseudo-targets
    refit: bool = False  # with select_on: then train again on every source for the chosen number of epochs
    keep_last: bool = False  # keep the last epoch's weights (validation is still recorded, chooses nothing)
    eval_batch_size: int = 256
    checkpoint_steps: int = 0  # also checkpoint every this many steps inside an epoch (0: epoch ends only)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool = True

    def validate(self) -> TrainConfig:
        if self.variant not in VARIANTS:
            raise PrerecError(f"config key 'variant': {self.variant!r} is not one of {', '.join(VARIANTS)}")
        if self.mode not in MODES:
            raise PrerecError(f"config key 'mode': {self.mode!r} is not one of {', '.join(MODES)}")
        for key in ("hidden_size", "n_layers", "n_heads", "max_history", "n_negatives", "batch_size",
                    "epochs", "eval_batch_size", "pop_hidden"):
            if getattr(self, key) < 1:
                raise PrerecError(f"config key {key!r}: must be >= 1, got {getattr(self, key)}")
        if self.hidden_size % self.n_heads:
            raise PrerecError(f"config key 'n_heads': {self.n_heads} does not divide hidden_size {self.hidden_size}")
        if not 0 <= self.dropout < 1:
            raise PrerecError(f"config key 'dropout': must be in [0, 1), got {self.dropout}")
        if not 0 < self.metric_ratio <= 1:
            raise PrerecError(f"config key 'metric_ratio': must be in (0, 1], got {self.metric_ratio}")
        if self.lr <= 0 or self.lr_decay <= 0:
            raise PrerecError("config keys 'lr' and 'lr_decay' must be > 0")
        if self.refit and not self.select_on:
            raise PrerecError("config key 'refit': needs 'select_on' (the held-out sources that choose the epochs)")
        if self.refit and self.keep_last:
            raise PrerecError("config keys 'refit' and 'keep_last' exclude each other: refit selects on "
                              "held-out sources, keep_last selects nothing")
        return self

    def model_config(self, text_dim: int, domain_items: list[int]) -> ModelConfig:
        return ModelConfig.for_variant(
            self.variant, text_dim=text_dim, hidden_size=self.hidden_size, n_layers=self.n_layers,
            n_heads=self.n_heads, ff_size=self.ff_size, dropout=self.dropout, max_history=self.max_history,
            pop_hidden=self.pop_hidden, item_offsets=self.item_offsets, init_std=self.init_std,
            domain_items=list(domain_items),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "config") -> TrainConfig:
        cfg = cls()
        apply(cfg, d, where=where)
        return cfg


# ---- typed updates -------------------------------------------------------------------------

def _type_name(tp: object) -> str:
    if tp is bool:
        return "bool (true/false)"
    if typing.get_origin(tp) is list:
        return "list of str (comma separated)"
    return getattr(tp, "__name__", str(tp))


def _field_types() -> dict[str, object]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def coerce(key: str, value: object, *, where: str, parse: bool = True) -> object:
    """Check ``value`` for config key ``key``; with ``parse`` a string is parsed (``--set``),
    without it (TOML, JSON) it must already have the key's type."""
    types_ = _field_types()
    if key not in types_:
        raise PrerecError(f"{where}: unknown config key {key!r}; known keys: {', '.join(sorted(types_))}")
    tp = types_[key]
    bad = PrerecError(f"{where}: config key {key!r} expects {_type_name(tp)}, got {value!r}")
    if isinstance(value, str) and tp is not str and parse:
        text = value.strip()
        if tp is bool:
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise bad
        if tp is int:
            try:
                return int(text.replace("_", ""))
            except ValueError:
                raise bad from None
        if tp is float:
            try:
                return float(text)
            except ValueError:
                raise bad from None
        if typing.get_origin(tp) is list:
            return [s.strip() for s in text.split(",") if s.strip()]
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if typing.get_origin(tp) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad
    raise bad  # pragma: no cover


def apply(cfg: TrainConfig, values: dict, *, where: str, parse: bool = False) -> TrainConfig:
    """Set each key of ``values`` on ``cfg`` after checking it (``parse``: values are strings to parse)."""
    for key, value in values.items():
        setattr(cfg, key, coerce(key, value, where=where, parse=parse))
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


__all__ = ["MODES", "TrainConfig", "apply", "build_config", "coerce", "load_preset", "parse_sets", "preset_names"]
