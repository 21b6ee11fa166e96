"""SASRec trained from scratch on the target domain (the paper's fine-tuned baseline).

An ID-based self-attentive sequential recommender (Kang & McAuley, ICDM 2018) with the
hyper-parameters of RecBole 1.2.1's ``SASRec`` defaults, so its figures are comparable with
the RecBole runs of docs/evaluation.md: 2 post-norm transformer layers, 2 heads, hidden size 64,
feed-forward 256, GELU, dropout 0.5 (hidden and attention), layer-norm eps 1e-12, weights
N(0, 0.02), the last 50 items of the history, full-softmax cross-entropy over the catalog
with the output layer tied to the item embeddings, Adam lr 1e-3, batch 2048, early stopping
(patience 10) on validation.

It learns only from the target's training users (``fit``), one (history, next item) pair per
training instance, as RecBole does for pre-split benchmark files; ``fit(..., instances=
train.first(N))`` gives the incremental curve. Its epoch is chosen on validation r-NDCG@K%
(docs/method.md, "Evaluation"; NDCG@20 when the catalog is too small for K >= 1) over the target's
validation users (at most ``eval_instances`` of them, a seeded sample). Items never seen in training keep
their random initial embedding, which is what an ID model knows about them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from prerec.constants import SPLIT_SEED
from prerec.data.instances import Instances, make_instances
from prerec.data.prepared import PreparedDomain
from prerec.evaluation.metrics import cutoff, instance_metrics, rank_counts
from prerec.recommender import Recommender
from prerec.scoring import last_items
from prerec.training.loop import BestEpoch

log = logging.getLogger(__name__)


@dataclass
class SASRecConfig:
    """RecBole 1.2.1 defaults (SASRec.yaml + overall.yaml) unless noted."""

    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    inner_size: int = 256
    dropout: float = 0.5  # hidden_dropout_prob and attn_dropout_prob
    max_len: int = 50  # MAX_ITEM_LIST_LENGTH
    lr: float = 1e-3
    batch_size: int = 2048
    epochs: int = 300
    patience: int = 10  # stopping_step
    eval_instances: int = 3000  # validation instances used for early stopping (ours; speed)
    ratio: float = 0.01  # r-NDCG@K% cut-off for early stopping (ours; RecBole uses MRR@10)
    seed: int = SPLIT_SEED
    progress: bool = True
    device: str = "auto"  # auto: CUDA when available, else CPU


class SASRecNet(nn.Module):
    """Item ids are shifted by one: 0 is padding. Input is left-aligned (padding at the end)."""

    def __init__(self, n_items: int, cfg: SASRecConfig) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=1e-12)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(cfg.hidden_size, cfg.n_heads, cfg.inner_size, cfg.dropout,
                                           activation="gelu", layer_norm_eps=1e-12, batch_first=True,
                                           norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def user(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """User vectors ``(b, H)``: the output at the last real position of each history."""
        length = seq.shape[1]
        x = self.item_emb(seq) + self.pos_emb(torch.arange(length, device=seq.device))[None]
        x = self.drop(self.norm(x))
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), diagonal=1)
        # left alignment + causal mask: a real position never attends to padding
        h = self.encoder(x, mask=causal)
        return h[torch.arange(len(seq), device=seq.device), lengths - 1]

    def logits(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.user(seq, lengths) @ self.item_emb.weight[1:].T


def _inputs(histories: np.ndarray, lengths: np.ndarray, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``max_len`` items of left-aligned, -1-padded histories, as 1-shifted ids."""
    hist, keep = last_items(histories, lengths, max_len)
    seq = np.zeros((len(hist), max_len), dtype=np.int64)
    seq[:, : hist.shape[1]] = np.where(hist >= 0, hist + 1, 0)
    return torch.from_numpy(seq), torch.from_numpy(np.maximum(keep, 1))


def _trim(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Drop padding columns no row of the batch uses (causal attention makes this exact)."""
    return seq[:, : max(int(lengths.max()), 1)] if len(lengths) else seq


def resolve_device(cfg: SASRecConfig) -> torch.device:
    """``cfg.device``, where ``auto`` is CUDA when available, else CPU."""
    return torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available()
                        else ("cpu" if cfg.device == "auto" else cfg.device))


def validation_metric(scores: np.ndarray, targets: np.ndarray, n_items: int, ratio: float) -> float:
    """Mean r-NDCG@K% of ``scores`` for ``targets`` over ``n_items`` (NDCG@20 when the catalog
    is too small for K = floor(ratio N) >= 1, docs/method.md): what early stopping maximises."""
    higher, tied = rank_counts(scores, targets)
    values = instance_metrics(higher, tied, n_items, ratio=ratio, ks=(20,))
    key = "rndcg@k%" if cutoff(n_items, ratio) >= 1 else "ndcg@20"
    return float(values[key].mean())


@torch.no_grad()
def net_scores(net: SASRecNet, histories: np.ndarray, lengths: np.ndarray, max_len: int, device: torch.device,
               items: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(b, n)`` float32 of left-aligned histories (in the net's item space) against every
    item of the net (``items`` None) or against the given items only, 1024 rows at a time."""
    net.eval()
    seq, lens = (t.to(device) for t in _inputs(histories, lengths, max_len))
    chosen = None if items is None else net.item_emb.weight[torch.from_numpy(items + 1).to(device)]
    out = np.empty((len(seq), net.item_emb.num_embeddings - 1 if items is None else len(items)), dtype=np.float32)
    for a in range(0, len(seq), 1024):
        s, n = _trim(seq[a : a + 1024], lens[a : a + 1024]), lens[a : a + 1024]
        logits = net.logits(s, n) if chosen is None else net.user(s, n) @ chosen.T
        out[a : a + 1024] = logits.float().cpu().numpy()
    return out


def train_net(net: SASRecNet, train: Instances, validate: Callable[[], float] | None, cfg: SASRecConfig,
              rng: np.random.Generator, device: torch.device, desc: str) -> tuple[list[dict[str, float]], float]:
    """The epoch loop shared by the SASRec baselines: full-softmax cross-entropy of each
    instance's next item (Adam, ``cfg.batch_size``), ``validate()`` after each epoch (higher is
    better; None: minus the epoch's summed loss), early stopping after ``cfg.patience`` epochs
    without improvement, and the best epoch's weights restored into ``net``.

    Returns the per-epoch history and the best validation score."""
    hist, lens = train.histories(cfg.max_len)
    seq_all, len_all = (t.to(device) for t in _inputs(hist, lens, cfg.max_len))
    tgt_all = torch.from_numpy(train.targets.astype(np.int64)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    best_epoch = BestEpoch()
    best_epoch.keep(net)
    best, bad, history = -1.0, 0, []
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", disable=not cfg.progress, leave=False)
    for epoch in bar:
        net.train()
        perm = torch.from_numpy(rng.permutation(len(train))).to(device)
        total = 0.0
        for a in range(0, len(train), cfg.batch_size):
            rows = perm[a : a + cfg.batch_size]
            lens = len_all[rows]
            logits = net.logits(_trim(seq_all[rows], lens), lens)
            loss = nn.functional.cross_entropy(logits, tgt_all[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(rows)
        score = validate() if validate is not None else -float(total)
        history.append({"epoch": epoch + 1, "loss": total / len(train), "valid": score})
        bar.set_postfix(loss=f"{total / len(train):.3f}", valid=f"{score:.4f}")
        if score > best:
            best, bad = score, 0
            best_epoch.keep(net)
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    bar.close()
    best_epoch.restore(net)
    return history, best


class SASRecScratch(Recommender):
    """``sasrec-scratch``: ID-based SASRec trained on the target's own training users only."""

    name = "sasrec-scratch"

    def __init__(self, config: SASRecConfig | None = None) -> None:
        self.config = config or SASRecConfig()
        self.net: SASRecNet | None = None
        self.device = torch.device("cpu")
        self.domain: str | None = None
        self.history: list[dict[str, float]] = []

    def fit(self, sources: list[PreparedDomain], target: PreparedDomain | None = None,
            instances: Instances | None = None) -> SASRecScratch:
        """Train on ``instances`` (default: every instance of the target's training users)."""
        if target is None:
            raise ValueError("sasrec-scratch trains on the target domain: pass target=")
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.device = resolve_device(cfg)
        self.net = SASRecNet(target.n_items, cfg).to(self.device)
        self.domain = target.name
        self.history = []
        train = make_instances(target.split.train) if instances is None else instances
        if len(train) == 0:
            log.info("sasrec-scratch on %s: no training instances, the model stays at its initialisation",
                     target.name)
            return self
        valid = make_instances(target.split.valid)
        if len(valid) > cfg.eval_instances:
            valid = valid.take(np.sort(rng.choice(len(valid), cfg.eval_instances, replace=False)))
        self.history, best = train_net(self.net, train, (lambda: self._validate(target, valid)) if len(valid) else None,
                                       cfg, rng, self.device, f"sasrec {target.name} ({len(train):,} inst.)")
        log.info("sasrec-scratch on %s: %d instances, %d epochs, best validation score %.4f",
                 target.name, len(train), len(self.history), best)
        return self

    def _validate(self, target: PreparedDomain, valid: Instances) -> float:
        hist, lens = valid.histories(self.config.max_len)
        return validation_metric(self.score(target, hist, lens, valid.days), valid.targets, target.n_items,
                                 self.config.ratio)

    def score(self, target: PreparedDomain, histories: np.ndarray, lengths: np.ndarray,
              days: np.ndarray) -> np.ndarray:
        if self.net is None or self.domain != target.name:
            raise ValueError(f"sasrec-scratch was not trained on domain {target.name!r}; call fit first")
        return net_scores(self.net, histories, lengths, self.config.max_len, self.device)
