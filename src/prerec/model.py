"""The PreRec model (docs/method.md, "The model"), in one readable module.

    item tower        V_j = W x_j + w_v a_v + e_j       (W: F -> H, no bias; a_v: per shared item v = id(j),
                                                         w_v = n_v / (n_v + kappa); e: per (domain, item))
    domain confounder h_t = V_{j_t} + D_k                (history items only)
    user tower        U_i = causal transformer(h + positions)[length - 1]
    popularity head   Z_j = g(F_j(day))                  (g: k -> 512 -> 1, GELU; k = 4 factors by default)
    score             s(i, j) = U_i . V_j + Z_j

Histories are left-aligned with padding at the end, so with the causal mask the output at
position ``length - 1`` depends only on real items: padding cannot change U (tested).

Switches turn parts off so the ablations are the same code: ``domain_confounder`` (no D),
``popularity_head`` (no Z), ``item_offsets`` (no e), ``item_identity`` (no a: items known by
their text only, the paper's PreRec). ``variant`` names the combinations the benchmarks use:
``prerec``, ``prerec-text`` (no identity), ``prerec-no-domain``, ``prerec-no-pop``, ``zesrec``
(neither confounder).

``popularity_factors`` names the factor set g reads (:mod:`prerec.popularity_factors`; default
the paper's four); the head's input width ``n_factors`` follows from it.

Item identity (docs/method.md, "Item identity"): a_v is one vector per item of the run's identity
vocabulary, shared by every domain that declares the item's key space, so what the sources' logs
say about an item travels with it to a new domain (zero-shot included); items never seen
anywhere are text only. Its prior N(0, 1/lambda_A) is honoured as MAP, and its effect is
weighted by w_v = n_v / (n_v + kappa), n_v the item's support (its interactions in the logs the
run learned from): a rarely seen item stays near its text, a frequent one carries what its log
says, whatever the optimiser does with the rare rows.

The transformer follows the research code's ``nn.TransformerEncoderLayer`` (post-norm, ReLU
feed-forward of size ``ff_size`` (= H), dropout on attention weights, after the feed-forward
activation and on both residual branches), written out nanoGPT-style so it can be read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from prerec.constants import DEFAULT_FACTORS, MAX_HISTORY
from prerec.popularity_factors import factor_width

VARIANTS = {
    # name: (domain_confounder, popularity_head)
    "prerec": (True, True),
    "prerec-no-domain": (False, True),
    "prerec-no-pop": (True, False),
    "zesrec": (False, False),
}
TEXT_ONLY_VARIANTS = {"prerec-text": "prerec"}  # the same switches with item identity off


@dataclass
class ModelConfig:
    """Shape and switches of a :class:`PreRec` model. Defaults: the paper's, except the repeat
    mixture (on: it won on held-out sources and on both benchmarks, results/repeat-transfer;
    ``repeat_mixture = False`` is the paper's score)."""

    text_dim: int = 768  # F: dimension of the frozen text embeddings
    hidden_size: int = 256  # H
    n_layers: int = 2
    n_heads: int = 1
    ff_size: int = 0  # 0 means H
    dropout: float = 0.1
    max_history: int = MAX_HISTORY
    pop_hidden: int = 512
    popularity_factors: str = DEFAULT_FACTORS  # the factor set g reads (prerec.popularity_factors)
    repeat_mixture: bool = True  # rank by the repeat/explore mixture read from the history (prerec.repeats)
    # k: at inference U is scaled by n / (n + k), n the history's length, so that popularity carries
    # short histories (0: off; prerec.scoring.Scorer.user_vectors)
    history_shrinkage: float = 0.0
    # tau: zero-shot, U.V is scaled by min(1, (d + 2 se)_target / (tau d_sources)), d the text's taste signal
    # (prerec.text.taste), so a target whose texts say little of taste leans on popularity (0: off;
    # prerec.intervention.Intervention.observe; results/taste-calibration)
    taste_calibration: float = 0.5
    domain_confounder: bool = True
    popularity_head: bool = True
    item_offsets: bool = True
    item_identity: bool = False  # needs domains that declare a shared item key space
    identity_shrinkage: float = 10.0  # kappa: an item seen kappa times carries half of its identity
    init_std: float = 0.02
    domain_items: list[int] = field(default_factory=list)  # catalog size of each source domain
    identity_items: int = 0  # rows of the identity table (the run's identity vocabulary)

    DATA_FIELDS = ("text_dim", "domain_items", "identity_items")  # set from the data, not configured
    DERIVED_FIELDS = ("n_factors",)  # follow from other keys; older run files still carry them

    @property
    def n_factors(self) -> int:
        """The popularity head's input width: the factors of ``popularity_factors``."""
        return factor_width(self.popularity_factors)

    @property
    def variant(self) -> str:
        """The benchmark name of the switches (``prerec``, ``prerec-no-domain``, ...)."""
        return next(n for n, sw in VARIANTS.items() if sw == (self.domain_confounder, self.popularity_head))

    @property
    def n_domains(self) -> int:
        return len(self.domain_items)

    @property
    def ff(self) -> int:
        return self.ff_size or self.hidden_size

    def to_dict(self) -> dict:
        return {**asdict(self), "n_factors": self.n_factors}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def for_variant(cls, variant: str, **kw) -> ModelConfig:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        dom, pop = VARIANTS[variant]
        return cls(domain_confounder=dom, popularity_head=pop, **kw)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.hidden_size % cfg.n_heads == 0
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).split(h, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, h // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, h))


class Block(nn.Module):
    """Post-norm transformer layer: x = LN(x + drop(attn(x))); x = LN(x + drop(ff(x)))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.ln1 = nn.LayerNorm(cfg.hidden_size)
        self.ff1 = nn.Linear(cfg.hidden_size, cfg.ff)
        self.ff2 = nn.Linear(cfg.ff, cfg.hidden_size)
        self.ln2 = nn.LayerNorm(cfg.hidden_size)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.ff2(self.drop(F.relu(self.ff1(x))))))


class PreRec(nn.Module):
    """Item tower, domain confounder, causal user tower and popularity head.

    Item indices handed to the model are *global*: item j of source domain k is row
    ``offset_base[k] + j`` of the offset table (``-1`` means "no offset", e.g. a zero-shot
    target's items).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden_size
        self.item_proj = nn.Linear(cfg.text_dim, H, bias=False)  # W
        n_items = sum(cfg.domain_items)
        self.offsets = nn.Parameter(torch.zeros(n_items, H)) if cfg.item_offsets else None  # e
        self.domain = nn.Parameter(torch.zeros(cfg.n_domains, H)) if cfg.domain_confounder else None  # D
        self.identity = (nn.Parameter(torch.zeros(cfg.identity_items, H))  # a
                         if cfg.item_identity and cfg.identity_items else None)
        # w_v = n_v / (n_v + kappa), from the items' support (set_identity_support); a buffer, saved
        self.register_buffer("identity_weight", torch.zeros(cfg.identity_items if self.identity is not None else 0))
        self.positions = nn.Parameter(torch.zeros(cfg.max_history, H))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.pop = (nn.Sequential(nn.Linear(cfg.n_factors, cfg.pop_hidden), nn.GELU(), nn.Linear(cfg.pop_hidden, 1))
                    if cfg.popularity_head else None)  # g
        base = torch.zeros(max(cfg.n_domains, 1), dtype=torch.long)
        if cfg.n_domains > 1:
            base[1:] = torch.cumsum(torch.tensor(cfg.domain_items[:-1]), 0)
        self.register_buffer("offset_base", base, persistent=False)
        for module in self.modules():  # linear weights N(0, 0.02), biases 0; D, e, positions start at 0
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, cfg.init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    # ---- the parts -------------------------------------------------------------------------

    def item_vectors(self, x: torch.Tensor, rows: torch.Tensor | None = None,
                     identity: torch.Tensor | None = None) -> torch.Tensor:
        """V = W x + a + e. ``rows``: global offset rows, ``identity``: identity rows (-1: none)."""
        v = self.item_proj(x)
        if self.offsets is not None and rows is not None:
            has = rows >= 0
            v = v + self.offsets[rows.clamp(min=0)] * has.unsqueeze(-1).to(v.dtype)
        if self.identity is not None and identity is not None:
            rows = identity.clamp(min=0)
            w = self.identity_weight[rows] * (identity >= 0).to(v.dtype)
            v = v + self.identity[rows] * w.unsqueeze(-1)
        return v

    @torch.no_grad()
    def set_identity_support(self, support) -> None:
        """w_v = n_v / (n_v + kappa) from each identity row's support n_v (interactions in the log)."""
        if self.identity is not None:
            n = torch.as_tensor(support, dtype=torch.float32, device=self.identity_weight.device)
            self.identity_weight.copy_(n / (n + self.cfg.identity_shrinkage))

    def domain_vectors(self, domains: torch.Tensor | None) -> torch.Tensor | None:
        """D_k per row (``None`` when the confounder is off or ``domains`` is None: D = 0)."""
        if self.domain is None or domains is None:
            return None
        return self.domain[domains]

    def encode(self, hist: torch.Tensor, dvec: torch.Tensor | None = None) -> torch.Tensor:
        """Causal pass over history vectors ``(b, L, H)``; ``dvec`` ``(b, H)`` is added to every item.

        Returns the output at every position ``(b, L, H)``: position t has seen items 0..t only.
        """
        x = hist if dvec is None else hist + dvec.unsqueeze(1)
        x = x + self.positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return x

    def user_vectors(self, hist: torch.Tensor, lengths: torch.Tensor, dvec: torch.Tensor | None = None) -> torch.Tensor:
        """U ``(b, H)``: output at position ``length - 1`` of left-aligned histories.

        A zero-length history is treated as length 1 over a zero item vector.
        """
        out = self.encode(hist, dvec)
        last = (lengths.clamp(min=1) - 1).to(torch.long)
        return out[torch.arange(len(out), device=out.device), last]

    def popularity(self, factors: torch.Tensor) -> torch.Tensor:
        """Z = g(F) for factor rows ``(..., n_factors)`` -> ``(...)``; zeros when the head is off."""
        if self.pop is None:
            return factors.new_zeros(factors.shape[:-1])
        return self.pop(factors).squeeze(-1)

    # ---- the training objective --------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sampled-softmax loss of one batch (sum over its targets divided by ``batch["norm"]``).

        Every item of the batch is projected once (``x``: the batch's distinct items, ``rows``:
        their offset rows); every distinct popularity factor row is run through g once
        (``pop_rows``). Index tensors point into these. Two layouts:

        - instance: ``hist`` (b, L), ``lengths`` (b,), ``target`` (b,), ``neg`` (b, n),
          ``target_pop`` (b,), ``neg_pop`` (b, n);
        - sequence: ``hist`` (b, L) = a chunk's items but the last, ``target`` (b, L) the next
          item at each position (-1: not a training target), ``neg`` (b, n) shared by the
          chunk's positions, ``target_pop`` (b, L), ``neg_pop`` (r, n): the negatives' factor
          rows once per run of equal days in a chunk, ``neg_pop_index`` (b, L): each position's run.
        """
        V = self.item_vectors(batch["x"], batch["rows"], batch.get("identity"))
        V = torch.cat([V, V.new_zeros(1, V.shape[1])])  # index -1: a zero vector (padding)
        dvec = self.domain_vectors(batch["domain"])
        hist = V[batch["hist"]]
        Z = self.popularity(batch["pop_rows"]) if self.pop is not None else None
        target, neg = batch["target"], batch["neg"]
        if "lengths" in batch:  # instance layout
            U = self.user_vectors(hist, batch["lengths"], dvec)  # (b, H)
            pos = (U * V[target]).sum(-1)  # (b,)
            negs = torch.einsum("bh,bnh->bn", U, V[neg])  # (b, n)
            valid = batch.get("valid")
        else:  # sequence layout: every position predicts its next item
            U = self.encode(hist, dvec)  # (b, L, H)
            valid = target >= 0
            pos = (U * V[target]).sum(-1)  # (b, L)
            negs = torch.einsum("blh,bnh->bln", U, V[neg])  # (b, L, n)
        if Z is not None:
            pos = pos + Z[batch["target_pop"]]
            zneg = Z[batch["neg_pop"]]
            if "neg_pop_index" in batch:  # sequence layout: one row per run of equal days in a chunk
                zneg = zneg[batch["neg_pop_index"]]
            negs = negs + zneg
        logits = torch.cat([pos.unsqueeze(-1), negs], dim=-1)
        nll = torch.logsumexp(logits, dim=-1) - pos
        if valid is not None:
            nll = torch.where(valid, nll, torch.zeros_like(nll))
        return nll.sum() / batch["norm"]

    # ---- bookkeeping -------------------------------------------------------------------------

    def prior_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters under each Gaussian prior (``domain``: D, ``offsets``: e, ``identity``: a)
        and the ``rest`` (no prior)."""
        groups = {name: [p] if p is not None else [] for name, p in
                  (("domain", self.domain), ("offsets", self.offsets), ("identity", self.identity))}
        special = {id(p) for ps in groups.values() for p in ps}
        groups["rest"] = [p for p in self.parameters() if id(p) not in special]
        return groups

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def prior_penalty(model: PreRec, lambda_domain: float, lambda_offset: float,
                  lambda_identity: float = 0.0) -> torch.Tensor:
    """(lambda_D/2)|D|^2 + (lambda_V/2)|e|^2 + (lambda_A/2)|a|^2: the negative log priors (for reporting)."""
    total = torch.zeros(())
    for p, lam in ((model.domain, lambda_domain), (model.offsets, lambda_offset), (model.identity, lambda_identity)):
        if p is not None:
            total = total + 0.5 * lam * p.detach().float().pow(2).sum().cpu()
    return total


def flops_per_token(cfg: ModelConfig, context: int) -> float:
    """Forward FLOPs of the user tower per token at attention context ``context``."""
    H, ff = cfg.hidden_size, cfg.ff
    per_layer = 2 * (3 * H * H + H * H + 2 * H * ff) + 4 * context * H
    return float(cfg.n_layers * per_layer)
