"""Incremental training and fine-tuning on a target domain (SPEC.md section 4).

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
import logging
from collections.abc import Callable

import numpy as np
import torch

from prerec.data.instances import make_instances
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError
from prerec.model import PreRec
from prerec.training.data import Corpus, Part
from prerec.training.loop import TrainState, make_optimizer, train
from prerec.training.run import Run, SourceInfo
from prerec.training.validation import ValidationSet, validate

log = logging.getLogger(__name__)


def grow_model(model: PreRec, n_new_items: int) -> PreRec:
    """A copy of ``model`` with one more domain: D row and offsets of ``n_new_items`` items, all 0."""
    cfg = copy.deepcopy(model.cfg)
    cfg.domain_items = [*cfg.domain_items, int(n_new_items)]
    new = PreRec(cfg).to(next(model.parameters()).device)
    state = model.state_dict()
    with torch.no_grad():
        for name, p in new.state_dict().items():
            old = state[name]
            if name in ("offsets", "domain"):
                p.zero_()
                p[: old.shape[0]] = old
            else:
                p.copy_(old)
    return new


def finetune_run(run: Run, target: PreparedDomain, n_instances: int | None = None, *, lr: float = 1e-4,
                 epochs: int = 25, patience: int = 3, batch_size: int | None = None, mode: str | None = None,
                 valid_max_instances: int | None = None, progress: bool = False,
                 log: Callable[[dict], None] | None = None) -> Run:
    """Fine-tune ``run`` on ``target``; returns a new in-memory run that knows the target in-domain."""
    if target.name in [s.name for s in run.sources if s.domain_index >= 0]:
        raise PrerecError(f"fine-tuning target {target.name!r} has the name of a domain the run already knows")
    if target.item_emb.shape[1] != run.model.cfg.text_dim:
        raise PrerecError(f"target {target.name!r}: embeddings of dim {target.item_emb.shape[1]}, "
                          f"the run expects {run.model.cfg.text_dim} (prepare it with run.prepare)")
    cfg = copy.deepcopy(run.config)
    cfg.lr, cfg.lr_decay, cfg.epochs, cfg.patience = lr, 1.0, epochs, patience
    cfg.max_instances_per_epoch = 0
    cfg.progress = progress
    if batch_size is not None:
        cfg.batch_size = batch_size
    if mode is not None:
        cfg.mode = mode
    if valid_max_instances is not None:
        cfg.valid_max_instances = valid_max_instances
    cfg.validate()

    inst = make_instances(target.split.train)
    if n_instances is not None:
        inst = inst.first(int(n_instances))
    if len(inst) == 0:
        raise PrerecError(f"fine-tuning on {target.name!r}: no training instances (N = {n_instances})")
    model = grow_model(run.model, target.n_items)
    k = model.cfg.n_domains - 1
    base = int(model.offset_base[k])
    device = next(model.parameters()).device
    part = Part(target, inst, k)
    corpus = Corpus([part], np.array([base]), cfg.n_negatives, cfg.max_history, mode=cfg.mode, x_base=base)
    X = torch.from_numpy(np.ascontiguousarray(target.item_emb, dtype=np.float32)).to(device)
    optimizer = make_optimizer(model, lr, cfg.lambda_domain, cfg.lambda_offset)
    sources = [*run.sources, SourceInfo(target.name, target.domain.source or target.name, "finetune",
                                        target.n_items, k, len(inst))]
    item_ids = {**run.item_ids, target.name: target.domain.item_ids}
    new_run = Run(cfg, model, run.encoder_spec, run.encoder_identity, sources, item_ids,
                  run.postprocess_state, None, [])

    from prerec.intervention import PreRecRecommender

    rec = {"in-domain": PreRecRecommender(new_run, mode="in-domain", batch_size=cfg.eval_batch_size)}
    vset = [ValidationSet.build(target, "in-domain", cfg.valid_max_instances, cfg.seed, cfg.max_history)]
    has_valid = len(vset[0]) > 0
    best: dict[str, torch.Tensor] = {}

    def do_validate(epoch: int) -> tuple[float, dict]:
        metric, details = validate(rec, vset, cfg.metric_ratio, cfg.eval_batch_size)
        model.train()
        return (metric if has_valid else float(epoch)), details

    def on_checkpoint(st: TrainState, improved: bool) -> None:
        if improved and st.step == 0:
            best.clear()
            best.update({name: v.detach().clone() for name, v in model.state_dict().items()})
        if log is not None and st.history:
            log(st.history[-1])

    state = train(model, corpus, X, cfg, optimizer=optimizer, state=TrainState(), device=device,
                  validate=do_validate, on_checkpoint=on_checkpoint, lr_schedule=False, desc=f"finetune {target.name}")
    if best:
        model.load_state_dict(best)
    model.eval()
    new_run.history = list(state.history)
    return new_run
