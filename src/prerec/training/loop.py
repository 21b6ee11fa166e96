"""The training loop: Adam, MAP priors, lr decay per epoch, early stopping, the best epoch, data
parallelism.

The Gaussian priors on D (lambda_D) and on the offsets e (lambda_V) are Adam weight decay on
those parameters only, in one of two forms (docs/method.md, "The MAP objective and its two
realisations"): ``weight-decay`` (the research code: decay lambda on the per-batch *mean* loss,
a prior about N_train times stronger than the written objective) or ``map`` (decay
lambda / N_train: the stationary points of the written MAP objective, sum of log-likelihoods
over the N_train training instances minus (lambda/2)|theta|^2).

The loop owns the best epoch: it keeps the weights of the epoch with the best validation metric
(or the last one with ``keep_last``) and restores them when training ends; callers only save.

Data parallelism (``torchrun``): every process builds the same epoch draws and the same
global batches (randomness is a function of seed, epoch and step), takes a disjoint shard of
each batch (draws ``rank::world``), computes ``sum of its losses / targets in the global
batch``, and the gradients are summed over processes with one all-reduce (gloo on CPU, NCCL
on GPU). The update is therefore the single-process update of the same global batch, up to
floating-point summation order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from prerec.config import TrainConfig
from prerec.model import PreRec, prior_penalty
from prerec.training.data import Corpus

log = logging.getLogger(__name__)


@dataclass
class World:
    """This process's place among the data-parallel processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1 and dist.is_available() and dist.is_initialized()


@dataclass
class TrainState:
    """Where training stands; stored (as JSON) in every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed inside the current epoch (mid-epoch checkpoints)
    global_step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    finished: bool = False
    stop_reason: str = ""
    epoch_loss: float = 0.0  # running sums of the current epoch (for mid-epoch resume)
    epoch_targets: int = 0
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_metric"] = None if not math.isfinite(self.best_metric) else self.best_metric
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        d = dict(d)
        d["best_metric"] = -math.inf if d.get("best_metric") is None else float(d["best_metric"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class BestEpoch:
    """The weights of the best epoch so far, in memory (every process keeps its own copy)."""

    def __init__(self, weights: dict[str, torch.Tensor] | None = None) -> None:
        self.weights = weights

    def keep(self, model: torch.nn.Module) -> None:
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: torch.nn.Module) -> bool:
        """Load the kept weights into ``model``; False when none were kept."""
        if not self.weights:
            return False
        model.load_state_dict(self.weights)
        return True


def prior_decay(cfg: TrainConfig, n_train: int) -> dict[str, float]:
    """Adam weight decay per prior group that realises the priors: D and e in the configured form,
    the identity table a always as MAP (its weight against the summed likelihood is lambda_A)."""
    n = max(int(n_train), 1)
    scale = 1.0 / n if cfg.prior_form == "map" else 1.0
    return {"domain": cfg.lambda_domain * scale, "offsets": cfg.lambda_offset * scale,
            "identity": cfg.lambda_identity / n, "rest": 0.0}


def make_optimizer(model: PreRec, cfg: TrainConfig, n_train: int, lr: float | None = None) -> torch.optim.Adam:
    """Adam with weight decay (= the Gaussian priors) on D, e and a only."""
    decay, params = prior_decay(cfg, n_train), model.prior_parameters()
    groups = [{"params": params[name], "weight_decay": decay[name], "lr_scale": cfg.identity_lr_scale
               if name == "identity" else 1.0} for name in ("rest", "domain", "offsets", "identity") if params[name]]
    base = cfg.lr if lr is None else lr
    for g in groups:
        g["lr"] = base * g["lr_scale"]
    return torch.optim.Adam(groups, lr=base, fused=True)


def step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """Seed for torch's RNG (dropout) at one step of one process."""
    return int(np.random.SeedSequence([seed, epoch, step, rank, 0x70C]).generate_state(1, np.uint64)[0] >> 1)


def _all_reduce_grads(model: PreRec, extra: torch.Tensor) -> torch.Tensor:
    """Sum gradients (and ``extra``) over processes in one flat buffer."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [extra.reshape(-1).to(grads[0].dtype)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    at = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[at:at + n].view_as(g).clone()
        at += n
    return flat[at:]


def _make_batch(corpus: Corpus, seed: int, epoch: int, dom: np.ndarray, unit: np.ndarray, sizes: np.ndarray,
                bounds: np.ndarray, world: World, X: torch.Tensor, device: torch.device,
                step: int) -> tuple[float, dict | None]:
    """(targets in the global batch, this process's shard of it as model input) for one step."""
    a, b = bounds[step], bounds[step + 1]
    d, u = dom[a:b], unit[a:b]
    neg = corpus.negatives(seed, epoch, step, d)  # for the whole global batch: the same on every process
    norm = float(sizes[a:b].sum())
    shard = np.arange(len(d))[world.rank::world.size]
    return norm, (corpus.build(d[shard], u[shard], neg[shard], norm, X, device) if len(shard) else None)


@dataclass
class Hooks:
    """What the caller plugs into :func:`train`.

    ``validate(epoch)`` -> (metric to maximise, details) runs on the main process after each
    epoch; ``on_checkpoint(state, improved)`` is called (main process) after each epoch and every
    ``cfg.checkpoint_steps`` steps, to save what the caller wants saved.
    """

    validate: Callable[[int], tuple[float, dict]] | None = None
    on_checkpoint: Callable[[TrainState, bool], None] | None = None


def _step(model: PreRec, optimizer: torch.optim.Optimizer, batch: dict | None, world: World,
          device: torch.device) -> torch.Tensor:
    """One optimiser step on this process's shard; returns the global batch's mean loss."""
    optimizer.zero_grad(set_to_none=True)
    if batch is not None:
        loss = model(batch)
        loss.backward()
        loss_value = loss.detach()
    else:  # more processes than draws in this batch: contribute nothing
        loss_value = torch.zeros((), device=device)
    if world.distributed:
        loss_value = _all_reduce_grads(model, loss_value.reshape(1))[0]
    optimizer.step()
    return loss_value


def _run_epoch(model: PreRec, corpus: Corpus, X: torch.Tensor, cfg: TrainConfig, optimizer: torch.optim.Optimizer,
               state: TrainState, device: torch.device, hooks: Hooks, world: World, desc: str) -> tuple[int, float]:
    """The steps of epoch ``state.epoch`` from ``state.step`` on; returns (instances, seconds)."""
    epoch = state.epoch
    dom, unit = corpus.epoch_draws(cfg.seed, epoch, cfg.max_instances_per_epoch)
    sizes = corpus.unit_sizes(dom, unit)
    bounds = corpus.batch_bounds(sizes, cfg.batch_size)
    n_steps = len(bounds) - 1
    model.train()
    bar = tqdm(total=int(sizes.sum()), initial=int(sizes[: bounds[state.step]].sum()), unit="inst",
               desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", disable=not (cfg.progress and world.main),
               dynamic_ncols=True, leave=False)
    t0, done = time.perf_counter(), 0
    loss_acc = torch.tensor(state.epoch_loss, dtype=torch.float64, device=device)  # no sync per step
    make_batch = partial(_make_batch, corpus, cfg.seed, epoch, dom, unit, sizes, bounds, world, X, device)
    # on a GPU the next batch is built on a second thread while this one computes
    pool = ThreadPoolExecutor(1) if device.type == "cuda" else None
    pending = pool.submit(make_batch, state.step) if pool and state.step < n_steps else None
    for step in range(state.step, n_steps):
        if pool is not None:
            norm, batch = pending.result()
            pending = pool.submit(make_batch, step + 1) if step + 1 < n_steps else None
        else:
            norm, batch = make_batch(step)
        torch.manual_seed(step_seed(cfg.seed, epoch, step, world.rank))
        loss_value = _step(model, optimizer, batch, world, device)
        state.step, state.global_step = step + 1, state.global_step + 1
        loss_acc += loss_value.detach().double() * norm
        state.epoch_targets += int(norm)
        done += int(norm)
        bar.update(int(norm))
        if bar.disable is False and (step % 10 == 0 or step == n_steps - 1):
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{float(loss_acc) / max(state.epoch_targets, 1):.4f}", inst_s=f"{rate:,.0f}")
        if (cfg.checkpoint_steps and state.step % cfg.checkpoint_steps == 0 and state.step < n_steps
                and hooks.on_checkpoint and world.main):
            state.epoch_loss = float(loss_acc)
            hooks.on_checkpoint(state, False)
    if pool is not None:
        pool.shutdown()
    state.epoch_loss = float(loss_acc)
    bar.close()
    return done, time.perf_counter() - t0


def _validate(hooks: Hooks, epoch: int, world: World, device: torch.device) -> tuple[float, dict]:
    """The validation metric on the main process, broadcast to every process."""
    metric, details = math.nan, {}
    if hooks.validate is not None:
        if world.main:
            metric, details = hooks.validate(epoch)
        if world.distributed:
            t = torch.tensor([metric], dtype=torch.float64, device=device)
            dist.broadcast(t, 0)
            metric = float(t[0])
    return metric, details


def _end_epoch(model: PreRec, cfg: TrainConfig, state: TrainState, record: dict, hooks: Hooks,
               best: BestEpoch, world: World, device: torch.device) -> None:
    """Validate, keep the best weights, decide on early stopping, tell the caller."""
    epoch = state.epoch
    metric, details = _validate(hooks, epoch, world, device)
    record["valid"], record["valid_metric"] = details, metric
    improved = hooks.validate is None or cfg.keep_last or (math.isfinite(metric) and metric > state.best_metric)
    if improved:
        state.best_metric = metric if hooks.validate is not None else state.best_metric
        state.best_epoch, state.bad_epochs = epoch + 1, 0
        best.keep(model)
    else:
        state.bad_epochs += 1
    state.history.append(record)
    state.epoch, state.step = state.epoch + 1, 0
    state.epoch_loss, state.epoch_targets = 0.0, 0
    if state.bad_epochs >= cfg.patience:
        state.finished, state.stop_reason = True, f"early stopping: no improvement in {cfg.patience} epochs"
    elif state.epoch >= cfg.epochs:
        state.finished, state.stop_reason = True, f"reached {cfg.epochs} epochs"
    if world.main:
        log.info("epoch %d: loss %.4f, valid %.4f%s, %.0f inst/s", epoch + 1, record["loss"], metric,
                 " (best)" if improved else "", record["instances_per_s"])
        if hooks.on_checkpoint:
            hooks.on_checkpoint(state, improved)


def train(model: PreRec, corpus: Corpus, X: torch.Tensor, cfg: TrainConfig, *,
          optimizer: torch.optim.Optimizer, state: TrainState, device: torch.device, hooks: Hooks | None = None,
          best: BestEpoch | None = None, world: World | None = None, lr_schedule: bool = True,
          desc: str = "train") -> TrainState:
    """Train from ``state`` until ``cfg.epochs`` or early stopping; the model ends with the best
    epoch's weights (``best`` may hold those of a run being resumed). Returns the final state."""
    world, hooks, best = world or World(), hooks or Hooks(), best or BestEpoch()
    while not state.finished and state.epoch < cfg.epochs:
        epoch = state.epoch
        lr = cfg.lr * (cfg.lr_decay ** epoch if lr_schedule else 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        done, seconds = _run_epoch(model, corpus, X, cfg, optimizer, state, device, hooks, world, desc)
        record = {
            "epoch": epoch + 1, "lr": lr, "loss": state.epoch_loss / max(state.epoch_targets, 1),
            "instances": state.epoch_targets, "steps": state.step, "seconds": round(seconds, 3),
            "instances_per_s": round(done / max(seconds, 1e-9), 1),
            "prior_penalty": float(prior_penalty(model, cfg.lambda_domain, cfg.lambda_offset, cfg.lambda_identity)),
            "domain_rms": None if model.domain is None else float(model.domain.detach().float().pow(2).mean().sqrt()),
        }
        _end_epoch(model, cfg, state, record, hooks, best, world, device)
    best.restore(model)
    model.eval()
    return state
