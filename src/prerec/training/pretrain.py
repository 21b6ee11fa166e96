"""Pre-training on source domains (docs/method.md, "Training"), optionally into a run directory.

``pretrain(domains, cfg, out=RUN)`` encodes the source catalogs, builds the model and the
training corpus, trains with early stopping and writes the run directory (see
:mod:`prerec.run`). With ``resume=True`` an interrupted run continues from its last
checkpoint and ends with the same weights as an uninterrupted run.

Model selection: by default the mean r-NDCG@K% of the sources' validation users, in-domain.
With ``select_on = [names]`` those source domains are held out of training as zero-shot
pseudo-targets (leave-one-source-out) and selection uses their zero-shot validation r-NDCG;
``refit = true`` then trains again on every source (those included) for the chosen number of
epochs, so that choosing costs no training data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from prerec.checkpoint import (
    load_checkpoint,
    load_tensors,
    model_tensors,
    save_checkpoint,
    save_tensors_atomic,
    write_json_atomic,
    write_text_atomic,
)
from prerec.config import TrainConfig
from prerec.data.domain import Domain
from prerec.data.identity import build_identity
from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain, prepare_domain, require_text
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.model import PreRec
from prerec.run import RUN_FORMAT, Run, SourceInfo, identity_json, read_json, resolve_device, run_identity
from prerec.text import embed_catalog, get_encoder
from prerec.text.postprocess import EmbeddingTransform
from prerec.text.taste import taste_signal
from prerec.training.data import Corpus, Part
from prerec.training.loop import BestEpoch, Hooks, TrainState, World, make_optimizer, train
from prerec.training.transitions import fit_transition_head
from prerec.training.validation import ScoreFunction, ValidationSet, validate

log = logging.getLogger(__name__)


def check_run_dir(out: Path, resume: bool) -> bool:
    """Whether ``out`` already holds a run to resume; refuses to overwrite anything."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise PrerecError(f"--out {out}: exists and is not a directory")
    if (out / "config.json").exists():
        if not resume:
            raise PrerecError(f"--out {out}: already holds a run; use --resume to continue it, "
                              "or choose another directory")
        return True
    if any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise PrerecError(f"--out {out}: directory is not empty and holds no PreRec run; refusing to write into it")
    return False


def _compare_identity(out: Path, identity: dict) -> None:
    old = read_json(out / "config.json")
    if not isinstance(old, dict) or old.get("format") != RUN_FORMAT:
        raise PrerecError(f"--out {out}: config.json is not a PreRec run")
    old_id = old.get("identity", {})
    if old_id == identity:
        return
    diffs = []
    for key in ("sources", "encoder"):
        if old_id.get(key) != identity.get(key):
            diffs.append(f"{key}: {old_id.get(key)!r} -> {identity.get(key)!r}")
    a, b = old_id.get("train", {}), identity["train"]
    diffs += [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    raise PrerecError(f"--out {out}: holds a different run; cannot resume it with this configuration "
                      f"({'; '.join(diffs[:6])})")


def embed_domains(domains: list[Domain], encoder, world: World, progress: bool) -> list[np.ndarray]:
    """Catalog embeddings of every domain through the shared on-disk cache (main process first)."""

    def run() -> list[np.ndarray]:
        return [embed_catalog(d, encoder, progress=progress) for d in domains]

    if world.distributed:
        out = run() if world.main else None
        dist.barrier()
        return out if out is not None else run()
    return run()


def prepare_sources(domains: list[Domain], cfg: TrainConfig, encoder, world: World | None = None,
                    progress: bool = False) -> tuple[list[PreparedDomain], dict[str, np.ndarray]]:
    """Encode, post-process (fitted on the training sources) and split every source domain."""
    world = world or World()
    embs = embed_domains(domains, encoder, world, progress)
    train_embs = [e for d, e in zip(domains, embs) if d.name not in cfg.select_on]
    transform = EmbeddingTransform(cfg.embedding_postprocess).fit(train_embs)
    prepared = [prepare_domain(d, transform.apply(e), cfg.split_seed) for d, e in zip(domains, embs)]
    return prepared, {k: np.asarray(v) for k, v in transform.state_dict().items()}


def _parts(prepared: list[PreparedDomain], cfg: TrainConfig, specs: list[str]) -> tuple[list[SourceInfo], list[Part]]:
    """Each source's role (trained on, held out to select on, skipped) and the training parts."""
    sources, parts = [], []
    k = 0
    for p, spec in zip(prepared, specs, strict=True):
        inst = make_instances(p.split.train if cfg.source_users == "train" else p.domain.sequences)
        if p.name in cfg.select_on:
            sources.append(SourceInfo(p.name, spec, "select", p.n_items, -1, 0))
            continue
        if len(inst) == 0:
            log.warning("source %s: domain %r has no training instances (its training users have fewer "
                        "than 2 interactions); it is left out of training", spec, p.name)
            sources.append(SourceInfo(p.name, spec, "skipped", p.n_items, -1, 0))
            continue
        taste = p.taste if cfg.source_users == "train" else taste_signal(p.item_emb, p.domain.sequences)
        sources.append(SourceInfo(p.name, spec, "train", p.n_items, k, len(inst), taste.value if taste else None,
                                  taste.users if taste else 0))
        parts.append(Part(p, inst, k))
        k += 1
    if not parts:
        raise PrerecError("no source domain has a training instance (users with at least 2 interactions)")
    log.info("text taste signal of the sources (prerec.text.taste; over users with two distinct items): %s",
             ", ".join(f"{s.name} {s.taste_signal:.3f} ({s.taste_users})" if s.taste_signal is not None
                       else f"{s.name} n/a" for s in sources if s.role == "train"))
    return sources, parts


def build_training(prepared: list[PreparedDomain], cfg: TrainConfig, specs: list[str] | None = None):
    """Sources, parts, model and corpus for pre-training on ``prepared`` (``corpus.identity``: the
    identity vocabulary over the trained sources when ``item_identity`` is on)."""
    names = [p.name for p in prepared]
    unknown = [n for n in cfg.select_on if n not in names]
    if unknown:
        raise PrerecError(f"config key 'select_on': {', '.join(unknown)} not among the sources ({', '.join(names)})")
    specs = specs or names
    if not [p for p in prepared if p.name not in cfg.select_on]:
        raise PrerecError("every source domain is held out by 'select_on': nothing left to train on")
    sources, parts = _parts(prepared, cfg, specs)
    train_prepared = [p.prepared for p in parts]
    identity = build_identity(train_prepared, required=True) if cfg.model.item_identity else None
    dim = int(prepared[0].item_emb.shape[1])
    torch.manual_seed(cfg.seed)  # the initial weights are a function of the seed
    model = PreRec(cfg.model_config(dim, [p.n_items for p in train_prepared], len(identity) if identity else 0))
    if identity is not None:
        model.set_identity_support(identity.support)
    base = model.offset_base.numpy()
    identity_of = None if identity is None else np.concatenate([identity.maps[p.name] for p in train_prepared])
    corpus = Corpus(parts, base[: len(parts)], cfg.n_negatives, cfg.model.max_history, layout=cfg.batch_layout,
                    domain_balanced=cfg.domain_balanced, identity_of=identity_of,
                    popularity_factors=cfg.model.popularity_factors, skip_repeats=not cfg.train_repeats)
    corpus.identity = identity
    X = torch.from_numpy(np.concatenate([p.item_emb for p in train_prepared]).astype(np.float32))
    return sources, parts, model, corpus, X


def validation_sets(prepared: list[PreparedDomain], cfg: TrainConfig, sources: list[SourceInfo]) -> list[ValidationSet]:
    if cfg.select_on:
        chosen = [(p, "zero-shot") for p in prepared if p.name in cfg.select_on]
    else:
        trained = {s.name for s in sources if s.role == "train"}
        chosen = [(p, "in-domain") for p in prepared if p.name in trained]
    return [ValidationSet.build(p, inference, cfg.valid_max_instances, cfg.seed, cfg.model.max_history)
            for p, inference in chosen]


def score_function(run: Run, batch_size: int) -> ScoreFunction:
    """Scores of the run's current weights in each inference mode (fresh caches per call)."""
    recs: dict[str, PreRecRecommender] = {}

    def score(inference, prepared, histories, lengths, days):
        if inference not in recs:
            recs[inference] = PreRecRecommender(run, inference, batch_size=batch_size)
        return recs[inference].score_tensor(prepared, histories, lengths, days)

    return score


def pretrain(domains: list[Domain], cfg: TrainConfig, out: str | Path | None = None, *,
             specs: list[str] | None = None, resume: bool = False, world: World | None = None) -> Run:
    """Pre-train on ``domains`` and return the run (best epoch's weights); writes ``out`` if given.

    With ``refit`` (and ``select_on``) it trains twice: first without the ``select_on`` sources,
    choosing the epoch by their zero-shot validation; then on every source for that many epochs,
    keeping the last. The second run is the result; ``run.selection`` (and ``selection.json``)
    tells how its length was chosen.
    """
    cfg.validate()
    if not cfg.refit:
        return _pretrain_once(domains, cfg, out, specs=specs, resume=resume, world=world)
    world = world or World()
    out_path = Path(out) if out is not None else None
    log_main = log.info if world.main else log.debug
    selection = None
    if out_path is not None:
        check_run_dir(out_path, resume)  # refuse a bad --out before the first training, not after
    if out_path is not None and resume and (out_path / "selection.json").exists():
        selection = read_json(out_path / "selection.json")
        if selection.get("select_on") != list(cfg.select_on):
            raise PrerecError(f"--out {out_path}: its epochs were chosen on {', '.join(selection.get('select_on', []))}, "
                              f"not on {', '.join(cfg.select_on)}; cannot resume it with this configuration")
        log_main("refit: reusing the epoch chosen before (%d)", selection["epochs"])
    if selection is None:
        log_main("refit: choosing the number of epochs zero-shot on %s (held out of training)",
                 ", ".join(cfg.select_on))
        chooser = _pretrain_once(domains, dataclasses.replace(cfg, refit=False), None, specs=specs, world=world)
        selection = {"select_on": list(cfg.select_on), "epochs": max(chooser.epoch, 1),
                     "history": chooser.history}
        del chooser
    final_cfg = dataclasses.replace(cfg, select_on=[], refit=False, keep_last=True, epochs=int(selection["epochs"]))
    log_main("refit: training on every source for %d epoch(s)", final_cfg.epochs)
    run = _pretrain_once(domains, final_cfg, out_path, specs=specs, resume=resume, world=world)
    run.selection = selection
    if out_path is not None and world.main:
        write_json_atomic(out_path / "selection.json", selection)
    return run


def _start(cfg: TrainConfig, specs: list[str], out_path: Path | None, resume: bool, world: World):
    """(encoder, run identity, resuming?, device), after refusing a bad ``--out``."""
    resuming = check_run_dir(out_path, resume) if out_path is not None else False
    encoder = get_encoder(cfg.encoder)
    identity = run_identity(cfg, specs, encoder.identity)
    if resuming:
        _compare_identity(out_path, identity)
        if world.main:
            log.info("resuming the run in %s", out_path)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    return encoder, identity, resuming, device


def _saver(run: Run, optimizer: torch.optim.Optimizer, out_path: Path | None):
    """The checkpoint hook: the best epoch's weights, the resumable state and the metrics, on disk."""

    def on_checkpoint(st: TrainState, improved: bool) -> None:
        if out_path is None:
            return
        if improved and st.step == 0:
            save_tensors_atomic(out_path / "model.safetensors", model_tensors(run.model),
                                {"epoch": st.best_epoch, "valid_metric": st.best_metric, "format": RUN_FORMAT})
        save_checkpoint(out_path / "checkpoint.safetensors", run.model, optimizer, st.to_dict())
        write_text_atomic(out_path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in st.history))

    return on_checkpoint


def _validator(run: Run, sets: list[ValidationSet], cfg: TrainConfig):
    has_valid = any(len(s) for s in sets)

    def do_validate(epoch: int) -> tuple[float, dict]:
        metric, details = validate(score_function(run, cfg.eval_batch_size), sets, cfg.metric_ratio,
                                   cfg.eval_batch_size)
        run.model.train()
        return (metric if has_valid else float(epoch)), details  # no validation users: keep the last

    return do_validate


def _pretrain_once(domains: list[Domain], cfg: TrainConfig, out: str | Path | None = None, *,
                   specs: list[str] | None = None, resume: bool = False, world: World | None = None) -> Run:
    world = world or World()
    specs = list(specs or [d.name for d in domains])
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise PrerecError(f"source domain names must be unique: {', '.join(names)}")
    for d in domains:
        require_text(d)
    out_path = Path(out) if out is not None else None
    encoder, identity, resuming, device = _start(cfg, specs, out_path, resume, world)
    prepared, post_state = prepare_sources(domains, cfg, encoder, world, cfg.progress)
    sources, _parts, model, corpus, X = build_training(prepared, cfg, specs)
    model.to(device)
    X = X.to(device)
    optimizer = make_optimizer(model, cfg, corpus.total_instances)
    state, best = TrainState(), BestEpoch()
    run = Run(cfg, model, cfg.encoder, encoder.identity, sources, {p.name: p.domain.item_ids for p in prepared},
              post_state, out_path, identity=corpus.identity)
    created = False
    if out_path is not None and world.main:
        ckpt = out_path / "checkpoint.safetensors"
        if resuming and ckpt.exists():
            if (out_path / "model.safetensors").exists():  # the best epoch before the interruption
                tensors = load_tensors(out_path / "model.safetensors")[0]
                best = BestEpoch({k.removeprefix("model."): v for k, v in tensors.items()})
            state = TrainState.from_dict(load_checkpoint(ckpt, model, optimizer))
            log.info("resumed at epoch %d step %d", state.epoch, state.step)
        elif not resuming:
            created = not out_path.exists()
            out_path.mkdir(parents=True, exist_ok=True)
            write_run_files(out_path, run, identity)
    if world.distributed:  # every process starts from the main process's state
        state = _broadcast_state(model, optimizer, state, world)
    hooks = Hooks(_validator(run, validation_sets(prepared, cfg, sources), cfg), _saver(run, optimizer, out_path))
    try:
        state = train(model, corpus, X, cfg, optimizer=optimizer, state=state, device=device, hooks=hooks,
                      best=best, world=world, desc="pretrain")
    except PrerecError:
        if created and out_path is not None and state.epoch == 0:
            shutil.rmtree(out_path, ignore_errors=True)
        raise
    run.history, run.epoch = list(state.history), state.best_epoch
    run.transitions = fit_transition_head(run, prepared)
    if run.transitions is not None and out_path is not None and world.main:
        run.transitions.save(out_path)
    if world.main:
        log.info("pre-training finished (%s); best epoch %d, validation r-NDCG@K%% %.4f",
                 state.stop_reason or "done", state.best_epoch, state.best_metric)
    return run


def write_run_files(out: Path, run: Run, identity: dict) -> None:
    """config.json (last: it marks the directory as a run), domains, id maps, encoder, post-processing."""
    write_json_atomic(out / "domains.json", [s.to_dict() for s in run.sources])
    write_json_atomic(out / "item_ids.json", {k: [str(i) for i in v] for k, v in run.item_ids.items()})
    if run.identity is not None:
        write_json_atomic(out / "identity.json", identity_json(run.identity))
    write_json_atomic(out / "encoder.json", {
        "spec": run.encoder_spec, "identity": run.encoder_identity,
        "dim": run.model.cfg.text_dim, "postprocess": run.config.embedding_postprocess,
    })
    if run.postprocess_state:
        save_tensors_atomic(out / "postprocess.safetensors",
                            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in run.postprocess_state.items()},
                            {"kind": run.config.embedding_postprocess})
    write_json_atomic(out / "config.json", {
        "format": RUN_FORMAT, "identity": identity, "train": run.config.to_dict(),
        "model": run.model.cfg.to_dict(), "sources": [s.spec for s in run.sources],
        "encoder": {"spec": run.encoder_spec, "identity": run.encoder_identity},
    })


def _broadcast_state(model: PreRec, optimizer: torch.optim.Optimizer, state: TrainState, world: World) -> TrainState:
    """Send the main process's weights, Adam state and trainer state to every process."""
    for p in model.state_dict().values():
        dist.broadcast(p, 0)
    st = TrainState.from_dict(json.loads(_broadcast_text(json.dumps(state.to_dict()) if world.main else "", model)))
    if st.global_step:
        # Adam state: broadcast tensor by tensor in a fixed parameter order
        for group in optimizer.param_groups:
            for p in group["params"]:
                s = optimizer.state[p]
                if not s:  # fused Adam keeps its step count on the parameter's device, as float32
                    s.update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                             exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                for key in ("step", "exp_avg", "exp_avg_sq"):
                    t = s[key].to(p.device).contiguous()
                    dist.broadcast(t, 0)
                    s[key] = t
    return st


def _broadcast_text(text: str, model: PreRec) -> str:
    """A string from the main process to all, as bytes in a tensor (no pickling)."""
    device = next(model.parameters()).device
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=device)
    n = torch.tensor([len(data)], dtype=torch.long, device=device)
    dist.broadcast(n, 0)
    buf = data if len(data) == int(n) else torch.zeros(int(n), dtype=torch.uint8, device=device)
    dist.broadcast(buf, 0)
    return bytes(buf.cpu().tolist()).decode()


__all__ = ["build_training", "check_run_dir", "prepare_sources", "pretrain", "validation_sets", "write_run_files"]
