"""Incremental training and fine-tuning on a target domain (docs/method.md, "Incremental training").

The pre-trained model grows by one domain: a fresh confounder D_target (starting at 0, prior
lambda_D) and new offsets e_j for the target's items (starting at 0, prior lambda_V); every
other weight starts from the run. Training uses the first N target training instances
(:meth:`Instances.first`, the log as it stood when it had N), Adam at lr 1e-4 without a
schedule, at most 25 epochs (an epoch = N draws), early stopping (patience 3) on the target's
validation r-NDCG@K% in in-domain mode. The research code reused the first source's D for the
target; that was an accident, not the method.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from prerec.checkpoint import model_tensors, save_tensors_atomic, write_json_atomic, write_text_atomic
from prerec.config import FinetuneConfig, TrainConfig
from prerec.data.identity import Identity, own_space
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.intervention import PreRecRecommender
from prerec.model import PreRec
from prerec.run import RUN_FORMAT, Run, SourceInfo
from prerec.training.data import Corpus, Part
from prerec.training.loop import BestEpoch, Hooks, TrainState, make_optimizer, train
from prerec.training.pretrain import score_function, write_run_files
from prerec.training.transitions import refit_beta
from prerec.training.validation import ValidationSet, validate
from prerec.transitions import TransitionHead

log = logging.getLogger(__name__)


def grow_model(model: PreRec, n_new_items: int, n_new_identities: int = 0) -> PreRec:
    """A copy of ``model`` with one more domain: D row and offsets of ``n_new_items`` items, and
    ``n_new_identities`` more identity rows, all 0 (a model without an identity table gets one)."""
    cfg = copy.deepcopy(model.cfg)
    cfg.domain_items = [*cfg.domain_items, int(n_new_items)]
    had_identity = model.identity is not None
    cfg.identity_items = (cfg.identity_items if had_identity else 0) + int(n_new_identities)
    cfg.item_identity = cfg.identity_items > 0
    new = PreRec(cfg).to(next(model.parameters()).device)
    state = model.state_dict()
    with torch.no_grad():
        for name, p in new.state_dict().items():
            old = state.get(name)
            if old is None or (name in ("identity", "identity_weight") and not had_identity):
                p.zero_()
            elif name in ("offsets", "domain", "identity", "identity_weight"):
                p.zero_()
                p[: old.shape[0]] = old
            else:
                p.copy_(old)
    return new


def grow_identity(run: Run, target: PreparedDomain, inst: Instances,
                  target_identity: bool = True) -> tuple[Identity | None, np.ndarray | None]:
    """The run's identity vocabulary grown by the target's items it does not know, and the
    identity row of every target item: target items learn identity from the target's log (with
    the same prior), those the sources knew start from what the sources said. The support of
    each row grows by the target items' interactions in the fine-tuning instances. A run without
    identity (its sources share no ids) gets a vocabulary of the target's items alone when
    ``target_identity``: the target's log is then learned as an ID model would learn it."""
    rows = run.identity_rows(target.domain)
    if rows is None and not target_identity:
        return None, None
    if rows is None:
        rows = np.full(target.n_items, -1, dtype=np.int64)
    new = rows < 0
    space = target.domain.id_space or own_space(target.name)
    rows = rows.copy()
    old = run.identity if run.identity is not None else Identity(np.empty(0, dtype=object), np.empty(0, dtype=object),
                                                                np.empty(0, dtype=np.int64))
    rows[new] = len(old) + np.arange(int(new.sum()))
    grown = Identity(np.r_[old.spaces, np.full(int(new.sum()), space, dtype=object)],
                     np.r_[old.item_ids, np.asarray(target.domain.item_ids, dtype=object)[new]],
                     np.r_[old.support, np.zeros(int(new.sum()), np.int64)])
    grown.support += np.bincount(rows[inst.targets], minlength=len(grown))
    return grown, rows


def _finetune_config(run: Run, ft: FinetuneConfig) -> TrainConfig:
    cfg = copy.deepcopy(run.config)
    cfg.lr, cfg.lr_decay, cfg.epochs, cfg.patience = ft.lr, 1.0, ft.epochs, ft.patience
    cfg.max_instances_per_epoch = 0
    cfg.progress = ft.progress
    cfg.keep_last = False
    if ft.batch_size is not None:
        cfg.batch_size = ft.batch_size
    if ft.batch_layout is not None:
        cfg.batch_layout = ft.batch_layout
    if ft.valid_max_instances is not None:
        cfg.valid_max_instances = ft.valid_max_instances
    if ft.n_negatives is not None:
        cfg.n_negatives = ft.n_negatives
    if ft.seed is not None:
        cfg.seed = int(ft.seed)
    if ft.identity_shrinkage is not None:
        if not ft.identity_shrinkage > 0:
            raise PrerecError(f"[finetune] identity_shrinkage: must be > 0, got {ft.identity_shrinkage}")
        cfg.model.identity_shrinkage = float(ft.identity_shrinkage)
    return cfg.validate()


def _grown_run(run: Run, target: PreparedDomain, inst: Instances, cfg: TrainConfig,
               target_identity: bool = True) -> tuple[Run, Corpus]:
    """A new in-memory run that knows the target: one more domain (D and offsets at 0) and identity
    rows for the target items the run did not know; and the corpus of the target's instances."""
    identity, rows = grow_identity(run, target, inst, target_identity)
    n_new = 0 if identity is None else len(identity) - (len(run.identity) if run.identity is not None else 0)
    model = grow_model(run.model, target.n_items, n_new)
    model.cfg.identity_shrinkage = cfg.model.identity_shrinkage  # kappa of the fine-tuning (FinetuneConfig)
    if identity is not None:
        model.set_identity_support(identity.support)
    k = model.cfg.n_domains - 1
    base = int(model.offset_base[k])
    identity_of = None if rows is None else np.r_[np.full(base, -1, np.int64), rows]
    corpus = Corpus([Part(target, inst, k)], np.array([base]), cfg.n_negatives, cfg.model.max_history,
                    layout=cfg.batch_layout, x_base=base, identity_of=identity_of,
                    popularity_factors=model.cfg.popularity_factors,
                    skip_repeats=not run.config.train_repeats)
    sources = [*run.sources, SourceInfo(target.name, target.domain.source or target.name, "finetune",
                                        target.n_items, k, len(inst))]
    item_ids = {**run.item_ids, target.name: target.domain.item_ids}
    transitions = None
    if rows is not None and (run.transitions is not None or cfg.transition_head):
        # + the target's own transitions, in the grown vocabulary; a run without a head (no shared
        # ids among its sources) starts one from the target's log alone, beta 0 until refitted
        head = run.transitions or TransitionHead(np.empty(0, np.int64), np.empty(0), 0)
        transitions = head.with_pairs(len(identity), rows[inst.sequences.items[inst.flat - 1]], rows[inst.targets])
    return Run(cfg, model, run.encoder_spec, run.encoder_identity, sources, item_ids, run.postprocess_state,
               None, [], identity=identity, transitions=transitions), corpus


def _train_once(run: Run, target: PreparedDomain, inst: Instances, cfg: TrainConfig,
                log: Callable[[dict], None] | None, target_identity: bool = True) -> tuple[Run, float]:
    """One fine-tuning under ``cfg``; the validation metric of the weights it keeps. The
    pre-trained weights are validated first and kept unless an epoch beats them, so fine-tuning
    never ends below where it started (on the target's validation users)."""
    new_run, corpus = _grown_run(run, target, inst, cfg, target_identity)
    model, device = new_run.model, new_run.device
    X = torch.from_numpy(np.ascontiguousarray(target.item_emb, dtype=np.float32)).to(device)
    # the run's seed: a fine-tuning seed changes the training, not which validation users choose
    vset = [ValidationSet.build(target, "in-domain", cfg.valid_max_instances, run.config.seed, cfg.model.max_history)]
    has_valid = len(vset[0]) > 0

    def do_validate(epoch: int) -> tuple[float, dict]:
        metric, details = validate(score_function(new_run, cfg.eval_batch_size), vset, cfg.metric_ratio,
                                   cfg.eval_batch_size)
        model.train()
        return (metric if has_valid else float(epoch)), details

    def report(st: TrainState, improved: bool) -> None:
        if log is not None and st.history:
            log(st.history[-1])

    start, best = TrainState(), BestEpoch()
    if has_valid:  # epoch 0: the pre-trained weights themselves
        start.best_metric, start.best_epoch = do_validate(-1)[0], 0
        best.keep(model)
    state = train(model, corpus, X, cfg, optimizer=make_optimizer(model, cfg, len(inst)), state=start,
                  device=device, hooks=Hooks(do_validate, report), best=best, lr_schedule=False,
                  desc=f"finetune {target.name}")
    new_run.history, new_run.epoch = list(state.history), state.best_epoch
    metric = state.best_metric
    if new_run.transitions is not None and has_valid:
        # beta fitted again for the fine-tuned scores; kept only if it ranks the target's validation
        # users better than the pre-trained beta (the metric that chose the epoch)
        kept = new_run.transitions
        table = kept.table(new_run.identity_rows(target.domain))
        new_run.transitions = refit_beta(new_run, kept, [(target, table)], "in-domain",
                                         "the sources and the target's fine-tuning instances")
        refit_metric = do_validate(-1)[0]
        new_run.transitions.fitted.update(valid_metric=refit_metric, valid_metric_pretrained_beta=metric,
                                          pretrained_beta=kept.beta)
        logging.getLogger(__name__).info("transition head on %s: validation r-NDCG@K%% %.4f with the refit beta (%.3f), %.4f with the "
                 "pre-trained one (%.3f); keeping the %s", target.name, refit_metric, new_run.transitions.beta,
                 metric, kept.beta, "refit" if refit_metric > metric else "pre-trained")
        if refit_metric > metric:
            metric = refit_metric
        else:
            new_run.transitions = replace(kept, fitted={**new_run.transitions.fitted, "kept": "pre-trained beta"})
    model.eval()
    return new_run, metric


def finetune_run(run: Run, target: PreparedDomain, n_instances: int | None = None,
                 config: FinetuneConfig | None = None, log: Callable[[dict], None] | None = None) -> Run:
    """Fine-tune ``run`` on ``target``; returns a new in-memory run that knows the target in-domain.

    With ``variants`` (whole settings) and ``lr_grid`` / ``lambda_identity_grid`` every combination
    is trained and the one with the best validation metric on the target's *validation* users is
    kept (its choice is in ``run.selection``)."""
    if target.name in [s.name for s in run.sources if s.domain_index >= 0]:
        raise PrerecError(f"fine-tuning target {target.name!r} has the name of a domain the run already knows")
    if target.item_emb.shape[1] != run.model.cfg.text_dim:
        raise PrerecError(f"target {target.name!r}: embeddings of dim {target.item_emb.shape[1]}, "
                          f"the run expects {run.model.cfg.text_dim} (prepare it with run.prepare)")
    ft = config or FinetuneConfig()
    inst = make_instances(target.split.train)
    if n_instances is not None:
        inst = inst.first(int(n_instances))
    if len(inst) == 0:
        raise PrerecError(f"fine-tuning on {target.name!r}: no training instances (N = {n_instances})")
    best_run, best_metric, tried = None, -np.inf, []
    for variant, ftv in ft.expanded():
        for lr in ftv.lr_grid or [ftv.lr]:
            for lam in ftv.lambda_identity_grid or [run.config.lambda_identity]:
                cfg = _finetune_config(run, ftv)
                cfg.lr, cfg.lambda_identity = float(lr), float(lam)
                new_run, metric = _train_once(run, target, inst, cfg, log, ftv.target_identity)
                tried.append({**({"variant": variant} if ft.variants else {}), "lr": lr, "lambda_identity": lam,
                              "valid_metric": metric, "epoch": new_run.epoch})
                if best_run is None or metric > best_metric:
                    best_run, best_metric = new_run, metric
    if len(tried) > 1:
        logging.getLogger(__name__).info(
            "fine-tuning on %s: %d settings tried; validation r-NDCG@K%% %s; kept %.4f", target.name, len(tried),
            ", ".join(f"{t['valid_metric']:.4f}" for t in tried), best_metric)
    best_run.selection = {"chosen_on": "target validation users", "tried": tried}
    return best_run


def finetune(run: Run, target: PreparedDomain, n_instances: int | None = None,
             config: FinetuneConfig | None = None, log: Callable[[dict], None] | None = None) -> PreRecRecommender:
    """Incremental training / fine-tuning on ``target``: an in-domain recommender for it.

    Starts from the run's weights, adds a *fresh* domain confounder for the target (starting at
    0) and new offsets for its items (same prior), trains on the first ``n_instances`` target
    training instances (``None``: all = full fine-tuning) and keeps the epoch with the best
    validation r-NDCG@K% on the target's validation users.
    """
    new_run = finetune_run(run, target, n_instances, config, log)
    return PreRecRecommender(new_run, "in-domain", batch_size=run.config.eval_batch_size)


def save_finetuned_run(run: Run, out: str | Path, pretrained: str | Path | None = None,
                       target_spec: str | None = None) -> Path:
    """Write a fine-tuned in-memory run as a complete run directory (what ``load_run`` reads).

    Everything goes to a temporary folder beside ``out`` that is renamed into place last, so a
    reader never sees half a run."""
    out = Path(out)
    if out.exists():
        raise PrerecError(f"{out}: already exists (fine-tuned runs are written to a new directory)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        identity = {"finetuned_from": None if pretrained is None else str(pretrained), "target": target_spec}
        save_tensors_atomic(tmp / "model.safetensors", model_tensors(run.model),
                            {"epoch": run.epoch, "format": RUN_FORMAT})
        if run.transitions is not None:
            run.transitions.save(tmp)
        write_json_atomic(tmp / "selection.json", run.selection)
        write_text_atomic(tmp / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in run.history))
        write_run_files(tmp, run, identity)  # config.json last
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.path = out
    return out
