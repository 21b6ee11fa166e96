"""A run directory and the loaded run.

Layout of ``prerec pretrain --out RUN``::

    RUN/config.json          format, training config, model config, sources, encoder (identifies the run)
    RUN/domains.json         per source domain: name, spec, role, catalog size, D row, offset rows
    RUN/item_ids.json        per source domain: its item ids in catalog order (the id maps)
    RUN/identity.json        the identity vocabulary (key space and item id of each identity row, support)
    RUN/encoder.json         encoder spec, identity and dimension; embedding post-processing kind
    RUN/postprocess.safetensors   the fitted embedding post-processing state
    RUN/transitions.safetensors   item identity's transition head: source transition counts, beta (JSON)
    RUN/metrics.jsonl        one JSON line per finished epoch (loss, lr, instances/s, validation)
    RUN/model.safetensors    weights of the best epoch so far (what load_run uses)
    RUN/checkpoint.safetensors    last state for --resume: weights, Adam state, RNG, trainer state

Every file is written atomically (temporary file + rename); nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from prerec.checkpoint import load_model_tensors, load_tensors
from prerec.config import TrainConfig
from prerec.constants import DEFAULT_FACTORS
from prerec.data.domain import Domain
from prerec.data.identity import Identity
from prerec.data.prepared import PreparedDomain, prepare_domain, require_text
from prerec.errors import PrerecError
from prerec.model import ModelConfig, PreRec
from prerec.transitions import TransitionHead, load_transition_head

RUN_FORMAT = "prerec-run/1"


@dataclass
class SourceInfo:
    """One domain of a run: a trained source (``role="train"``), a zero-shot model-selection
    domain held out of training (``"select"``) or a fine-tuned target (``"finetune"``)."""

    name: str
    spec: str
    role: str
    n_items: int
    domain_index: int  # row of D and offset block in the model; -1 for "select" domains
    n_train_instances: int = 0
    taste_signal: float | None = None  # prerec.text.taste, on its training users (None: runs before it)
    taste_users: int = 0  # the users it was read from (below prerec.text.taste.MIN_USERS: not used)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Run:
    """A trained model with everything needed to use it on a new domain."""

    config: TrainConfig
    model: PreRec
    encoder_spec: str
    encoder_identity: str
    sources: list[SourceInfo]
    item_ids: dict[str, np.ndarray]
    postprocess_state: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None
    history: list[dict] = field(default_factory=list)
    selection: dict = field(default_factory=dict)  # a refit run: how its number of epochs was chosen
    epoch: int = 0  # the epoch whose weights the run holds (the trainer's choice)
    identity: Identity | None = None  # the vocabulary of the model's identity table (item_identity on)
    transitions: TransitionHead | None = None  # the transition head (prerec.transitions), fitted after training

    # ---- domains ------------------------------------------------------------------------------

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.sources if s.role == "train"]

    def source(self, name: str) -> SourceInfo | None:
        return next((s for s in self.sources if s.name == name and s.domain_index >= 0), None)

    def domain_index(self, name: str) -> int:
        """Row of D for an in-domain target; a clear error when the run has not learned it."""
        s = self.source(name)
        if s is None:
            known = ", ".join(x.name for x in self.sources if x.domain_index >= 0)
            raise PrerecError(f"in-domain mode: {name!r} is not a domain this run was trained on (known: {known}); "
                              "use zero-shot mode for a new domain")
        return s.domain_index

    def source_taste_signal(self) -> float | None:
        """The trained sources' taste signal (:mod:`prerec.text.taste`), averaged with the weights
        training drew the sources with (``domain_balanced``: each the same; otherwise by instances)
        over the sources it could be read from (``MIN_USERS``); ``None`` when there is none (or the
        run was saved before the signal was recorded)."""
        from prerec.text.taste import MIN_USERS

        trained = [s for s in self.sources if s.role == "train" and s.taste_signal is not None
                   and s.taste_users >= MIN_USERS]
        if not trained:
            return None
        w = np.ones(len(trained)) if self.config.domain_balanced else np.array([s.n_train_instances for s in trained], float)
        return float(np.average([s.taste_signal for s in trained], weights=w))

    def trained_domain_indices(self) -> list[int]:
        return [s.domain_index for s in self.sources if s.role == "train"]

    def offset_rows(self, name: str, item_ids: np.ndarray) -> np.ndarray:
        """Global offset row of each item (matched by id to the domain's catalog; -1 if unknown)."""
        k = self.domain_index(name)
        base = int(self.model.offset_base[k]) if self.model.cfg.n_domains else 0
        index = {str(i): j for j, i in enumerate(self.item_ids[name])}
        return np.array([base + index[str(i)] if str(i) in index else -1 for i in item_ids], dtype=np.int64)

    def identity_rows(self, domain: Domain) -> np.ndarray | None:
        """Identity row of each item of ``domain``'s catalog (-1: text only), matched only within the
        domain's declared key space; ``None`` when the model has no identity table."""
        if self.model.identity is None or self.identity is None:
            return None
        return self.identity.lookup(domain)

    def source_item_ids(self) -> dict[str, np.ndarray]:
        """Item ids of every trained source domain (evaluation's ``unseen`` subset)."""
        return {s.name: self.item_ids[s.name] for s in self.sources if s.role == "train"}

    # ---- text ---------------------------------------------------------------------------------

    @cached_property
    def encoder(self):
        from prerec.text import get_encoder

        enc = get_encoder(self.encoder_spec)
        if enc.identity != self.encoder_identity:
            raise PrerecError(f"run {self.path}: trained with encoder {self.encoder_identity!r}, but "
                              f"{self.encoder_spec!r} now gives {enc.identity!r}")
        return enc

    @cached_property
    def transform(self):
        from prerec.text.postprocess import EmbeddingTransform

        if not self.postprocess_state:
            return EmbeddingTransform("none")
        return EmbeddingTransform.from_state_dict(self.postprocess_state)

    def embed(self, domain: Domain, progress: bool = False) -> np.ndarray:
        """The domain's item embeddings as the model sees them (encoder, then post-processing)."""
        from prerec.text import embed_catalog

        emb = embed_catalog(domain, self.encoder, progress=progress)
        return self.transform.apply(emb)

    def prepare(self, domain: Domain, progress: bool = False) -> PreparedDomain:
        """Encode the catalog with the run's encoder (+ post-processing), split with the run's seed."""
        require_text(domain)
        return prepare_domain(domain, self.embed(domain, progress), self.config.split_seed)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> Run:
        self.model.to(device)
        return self


def run_identity(cfg: TrainConfig, specs: list[str], encoder_identity: str) -> dict:
    """What makes two runs the same run (compared on --resume). Cosmetic keys are left out."""
    train = cfg.to_dict()
    for key in ("progress", "device", "eval_batch_size", "checkpoint_steps"):
        train.pop(key, None)
    if train["model"].get("popularity_factors") == DEFAULT_FACTORS:  # runs from before the key: the same run
        train["model"].pop("popularity_factors")
    if train["model"].get("repeat_mixture") is False:  # runs from before the key: the same run
        train["model"].pop("repeat_mixture")
    if not train["model"].get("history_shrinkage", 0.0):  # runs from before the key: the same run
        train["model"].pop("history_shrinkage", None)
    if not train["model"].get("taste_calibration", 0.0):  # likewise
        train["model"].pop("taste_calibration", None)
    if train.get("train_repeats", True):  # runs from before the key: the same run
        train.pop("train_repeats", None)
    if train.get("transition_head", True):  # likewise: fitted after training, the weights are the same
        train.pop("transition_head", None)
    return {"train": train, "sources": list(specs), "encoder": encoder_identity}


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PrerecError(f"{path}: missing (not a complete PreRec run directory)") from None
    except json.JSONDecodeError as exc:
        raise PrerecError(f"{path}: not valid JSON ({exc})") from None


def identity_json(identity: Identity) -> dict:
    """The identity vocabulary as JSON: row v is (spaces[v], item_ids[v]), with its support."""
    return {"spaces": [str(s) for s in identity.spaces], "item_ids": [str(i) for i in identity.item_ids],
            "support": [int(n) for n in identity.support]}


def read_identity(path: Path) -> Identity:
    data = read_json(path)
    try:
        return Identity(np.asarray(data["spaces"], dtype=object), np.asarray(data["item_ids"], dtype=object),
                        np.asarray(data["support"], dtype=np.int64))
    except (KeyError, TypeError) as exc:
        raise PrerecError(f"{path}: not an identity vocabulary ({exc})") from None


def upgrade_run_config(config: dict) -> dict:
    """A run's config.json as this version reads it: keys whose default changed since the run was
    written get the value the run was trained and chosen with (in place; returned)."""
    for model_cfg in (config.get("train", {}).get("model"), config.get("model")):
        if isinstance(model_cfg, dict):  # written before the keys: scored by the paper's formula
            model_cfg.setdefault("repeat_mixture", False)
            model_cfg.setdefault("taste_calibration", 0.0)
    return config


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> Run:
    """Load a run directory written by ``prerec pretrain`` (the best epoch's weights)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise PrerecError(f"{run_dir}: no such run directory")
    config = read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise PrerecError(f"{path / 'config.json'}: not a PreRec run (expected format {RUN_FORMAT!r})")
    weights = path / "model.safetensors"
    if not weights.exists():
        raise PrerecError(f"{path}: no model.safetensors yet (the run has not finished an epoch)")
    upgrade_run_config(config)
    cfg = TrainConfig.from_dict(config["train"], where=str(path / "config.json"))
    mcfg = ModelConfig.from_dict(config["model"])
    model = PreRec(mcfg)
    tensors, meta = load_tensors(weights)
    load_model_tensors(model, tensors)
    model.eval()
    sources = [SourceInfo(**s) for s in read_json(path / "domains.json")]
    ids = read_json(path / "item_ids.json")
    item_ids = {name: np.asarray(v, dtype=object) for name, v in ids.items()}
    enc = read_json(path / "encoder.json")
    post: dict[str, np.ndarray] = {}
    if (path / "postprocess.safetensors").exists():
        from safetensors.numpy import load_file

        post = dict(load_file(str(path / "postprocess.safetensors")))
    history = []
    if (path / "metrics.jsonl").exists():
        history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    selection = read_json(path / "selection.json") if (path / "selection.json").exists() else {}
    identity = read_identity(path / "identity.json") if (path / "identity.json").exists() else None
    run = Run(cfg, model, enc["spec"], enc["identity"], sources, item_ids, post, path, history, selection,
              int(meta.get("epoch", 0)), identity, load_transition_head(path) if identity is not None else None)
    if device is not None:
        run.to(device)
    return run


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise PrerecError(f"config key 'device': {name!r} is not a device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PrerecError(f"config key 'device': {name!r} asked for, but CUDA is not available here")
    return dev
