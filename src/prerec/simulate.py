"""A synthetic world with planted biases, written in the ``canonical`` format (docs/synthetic.md).

It follows the paper's causal graph: items carry latents tied to their text; users of every
domain move through items by one shared sequential process; a domain confounder D_k shifts
what the users of domain k prefer (cross-domain bias, must not transfer); a popularity trend
of each domain's items moves the choices day by day (in-domain bias, should be used).
H = ``latent_dim``; every other symbol is an option of :class:`SimConfig`.

Items (one universe of N items shared by the domains). A = 5 attribute slots (colour,
material, kind, style, pattern) of 10 English words each. Item j draws one word per slot,
w_{j,a} ~ U{1..10}, and its text is those words ("red wool jacket vintage striped"). Each
word has a latent E_{a,w} ~ N(0, I_H / (A H)), and

    q_j = sum_a E_{a, w_{j,a}} + item_noise * eps_j,      eps_j ~ N(0, I_H / H)

so the text decides the latent (up to ``item_noise``, the part no text encoder can see).
The *embeddings input* (for fast tests, no text encoder): x_j = m_j / sqrt(A), m_j the
multi-hot of item j's words, stored in ``embeddings.safetensors`` and read by the encoder
``table:DIR/embeddings.safetensors`` (keyed by the item text).

Domains k = 0..K-1. Catalog C_k: each item of the universe independently with probability
``catalog_fraction``. Confounder D_k ~ N(0, domain_bias^2 I_H / H), so |D_k| ~ domain_bias.
Popularity trend of item j in domain k, an AR(1) over days d = 0..T-1 (stationary N(0, 1)):

    b_kj(0) ~ N(0, 1),   b_kj(d) = phi b_kj(d-1) + sqrt(1 - phi^2) eta_kjd,   eta ~ N(0, 1)

Users i = 1..U of domain k: arrival day a_i ~ U{0..T-1}; n_i = 1 + Poisson(mean_length - 1)
interactions, the t-th on day d_it = a_i + sum_{s<=t} g_is, g_is ~ Poisson(mean_gap)
(interactions after day T-1 are cut); taste p_i ~ N(0, taste^2 I_H / H). The user state
follows the last items (a moving average with ``memory`` alpha) through one transition R, a
random rotation of R^H shared by all domains ("after a jacket, gloves"; without it the most
likely next item would be the last one again):

    s_i0 = p_i,    s_i(t+1) = alpha s_it + (1 - alpha) R q_{j_it}

and the next item is drawn from the catalog by the softmax of the *generating score*

    l_it(j) = sharpness * <s_it + D_k, q_j> + popularity_effect * b_kj(d_it),   j in C_k.

D_k enters on the user side only: on the item side it would add the same amount to every
candidate of a user. With domain_bias = 0 every domain runs the same process (up to its
catalog and trends). The ground truth is saved beside the data (``truth.safetensors``: q, E,
R, the words of each item, x, D, each domain's catalog and trend b; ``world.json``: the options
and this story's parameters), and :func:`oracle_scores` recomputes l from a history.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.errors import PrerecError

WORDS = (
    ("red", "blue", "green", "black", "white", "yellow", "pink", "grey", "brown", "orange"),
    ("cotton", "wool", "leather", "silk", "denim", "linen", "nylon", "velvet", "suede", "canvas"),
    ("shirt", "jacket", "shoes", "hat", "scarf", "dress", "bag", "belt", "gloves", "socks"),
    ("casual", "formal", "vintage", "sporty", "elegant", "rustic", "modern", "classic", "punk", "minimal"),
    ("striped", "plain", "floral", "checked", "dotted", "embroidered", "printed", "quilted", "knitted", "woven"),
)
DAY0 = 18500  # day number (unix seconds / 86400) of the first day: 2020-08-26
FORMAT = "prerec-synthetic-1"


@dataclass
class SimConfig:
    """Options of the world; the names are the symbols of the module docstring."""

    n_domains: int = 5  # K
    n_users: int = 400  # U, per domain
    n_items: int = 1000  # N, the universe
    catalog_fraction: float = 0.6  # each item is in a domain's catalog with this probability
    n_days: int = 60  # T
    latent_dim: int = 16  # H
    mean_length: float = 12.0  # mean interactions per user (before the cut at day T-1)
    mean_gap: float = 0.5  # mean days between a user's interactions
    domain_bias: float = 0.5  # |D_k|: strength of the cross-domain confounder
    popularity_effect: float = 1.0  # gamma: weight of the popularity trend in the choice
    popularity_persistence: float = 0.95  # phi: day-to-day correlation of the trend
    sharpness: float = 8.0  # kappa: how deterministic the choice is
    memory: float = 0.5  # alpha: weight of the older state when the user moves on
    taste: float = 0.5  # |p_i|: a user's own taste before the first item
    item_noise: float = 0.0  # sigma_item: latent not carried by the text
    seed: int = 0

    def validate(self) -> SimConfig:
        for key in ("n_domains", "n_users", "n_items", "n_days", "latent_dim"):
            if getattr(self, key) < 1:
                raise PrerecError(f"simulate option {key!r}: must be >= 1, got {getattr(self, key)}")
        if not 0 < self.catalog_fraction <= 1:
            raise PrerecError(f"simulate option 'catalog_fraction': must be in (0, 1], got {self.catalog_fraction}")
        if self.mean_length < 1:
            raise PrerecError(f"simulate option 'mean_length': must be >= 1, got {self.mean_length}")
        for key in ("popularity_persistence", "memory"):
            if not 0 <= getattr(self, key) < 1:
                raise PrerecError(f"simulate option {key!r}: must be in [0, 1), got {getattr(self, key)}")
        for key in ("mean_gap", "domain_bias", "popularity_effect", "sharpness", "taste", "item_noise"):
            if getattr(self, key) < 0:
                raise PrerecError(f"simulate option {key!r}: must be >= 0, got {getattr(self, key)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Truth:
    """The ground truth of a world (everything the story drew except users' tastes and draws)."""

    config: SimConfig
    words: np.ndarray  # (N, A) word index of each item's slot
    word_latents: np.ndarray  # (A, 10, H) E
    item_latents: np.ndarray  # (N, H) q
    transition: np.ndarray  # (H, H) R
    embeddings: np.ndarray  # (N, A * 10) x, the embeddings input
    domain_bias: np.ndarray  # (K, H) D
    catalogs: list[np.ndarray]  # per domain: sorted universe indices of C_k
    trends: list[np.ndarray]  # per domain: (T, |C_k|) b_k

    @property
    def domain_names(self) -> list[str]:
        return [f"d{k}" for k in range(self.config.n_domains)]

    def item_ids(self, items: np.ndarray) -> np.ndarray:
        return np.array([f"i{j:07d}" for j in items], dtype=object)

    def texts(self, items: np.ndarray) -> list[str]:
        return [" ".join(WORDS[a][w] for a, w in enumerate(self.words[j])) for j in items]


def draw_items(cfg: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Words, word latents E, item latents q and the embeddings input x of the universe."""
    A, W, H = len(WORDS), len(WORDS[0]), cfg.latent_dim
    words = rng.integers(0, W, size=(cfg.n_items, A))
    E = rng.normal(0.0, 1.0 / np.sqrt(A * H), size=(A, W, H))
    q = E[np.arange(A), words].sum(axis=1) + cfg.item_noise * rng.normal(0.0, 1.0 / np.sqrt(H), (cfg.n_items, H))
    x = np.zeros((cfg.n_items, A * W), dtype=np.float32)
    x[np.arange(cfg.n_items)[:, None], np.arange(A) * W + words] = 1.0 / np.sqrt(A)
    return words, E, q, x


def draw_trend(cfg: SimConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """b_k: (T, n) AR(1) trends, stationary N(0, 1)."""
    phi = cfg.popularity_persistence
    b = np.empty((cfg.n_days, n))
    b[0] = rng.normal(size=n)
    for d in range(1, cfg.n_days):
        b[d] = phi * b[d - 1] + np.sqrt(1.0 - phi * phi) * rng.normal(size=n)
    return b


def draw_days(cfg: SimConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """The days of each user's interactions (arrival + Poisson gaps, cut at day T-1)."""
    n = 1 + rng.poisson(cfg.mean_length - 1, size=cfg.n_users)
    arrive = rng.integers(0, cfg.n_days, size=cfg.n_users)
    out = []
    for i in range(cfg.n_users):
        gaps = rng.poisson(cfg.mean_gap, size=n[i])
        gaps[0] = 0
        days = arrive[i] + np.cumsum(gaps)
        out.append(days[days < cfg.n_days])
    return out


def draw_sequences(cfg: SimConfig, q: np.ndarray, R: np.ndarray, D: np.ndarray, b: np.ndarray,
                   days: list[np.ndarray], rng: np.random.Generator, block: int = 512) -> list[np.ndarray]:
    """Each user's items (catalog positions), drawn step by step from softmax(l) by Gumbel-max.

    ``q``: latents of the catalog (n, H); ``b``: its trends (T, n); users are processed in
    blocks, every step of a block at once."""
    H = q.shape[1]
    out: list[np.ndarray] = []
    for lo in range(0, len(days), block):
        part = days[lo:lo + block]
        L = max((len(d) for d in part), default=0)
        s = rng.normal(0.0, cfg.taste / np.sqrt(H), size=(len(part), H))  # s_i0 = p_i
        day = np.zeros((len(part), L), dtype=np.int64)
        for r, d in enumerate(part):
            day[r, :len(d)] = d
        chosen = np.zeros((len(part), L), dtype=np.int64)
        for t in range(L):
            logits = cfg.sharpness * (s + D) @ q.T + cfg.popularity_effect * b[day[:, t]]
            j = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
            chosen[:, t] = j
            s = cfg.memory * s + (1.0 - cfg.memory) * q[j] @ R.T
        out += [chosen[r, :len(d)] for r, d in enumerate(part)]
    return out


def generate(cfg: SimConfig) -> tuple[Truth, list[pd.DataFrame]]:
    """Draw a world: its ground truth and each domain's interactions (user_id, item_id, timestamp)."""
    cfg.validate()
    rng = np.random.default_rng([cfg.seed, 0x5EED])
    words, E, q, x = draw_items(cfg, rng)
    H = cfg.latent_dim
    R = np.linalg.qr(rng.normal(size=(H, H)))[0]  # a random rotation: the shared transition
    D = rng.normal(0.0, cfg.domain_bias / np.sqrt(H), size=(cfg.n_domains, H))
    catalogs, trends, logs = [], [], []
    for k in range(cfg.n_domains):
        drng = np.random.default_rng([cfg.seed, k, 0xD0])  # a domain's draws do not depend on K
        catalog = np.flatnonzero(drng.random(cfg.n_items) < cfg.catalog_fraction)
        if not len(catalog):
            catalog = np.array([drng.integers(cfg.n_items)])
        b = draw_trend(cfg, len(catalog), drng)
        days = draw_days(cfg, drng)
        seqs = draw_sequences(cfg, q[catalog], R, D[k], b, days, drng)
        catalogs.append(catalog)
        trends.append(b)
        logs.append((days, seqs))
    truth = Truth(cfg, words, E, q, R, x, D, catalogs, trends)
    frames = []
    for k, (days, seqs) in enumerate(logs):
        lengths = np.array([len(s) for s in seqs])
        users = np.repeat([f"d{k}-u{i:06d}" for i in range(cfg.n_users)], lengths)
        step = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
        all_days = np.concatenate(days).astype(np.int64)
        items = truth.catalogs[k][np.concatenate(seqs).astype(np.int64)]
        frames.append(pd.DataFrame({
            "user_id": users, "item_id": truth.item_ids(items),
            "timestamp": (DAY0 + all_days) * 86400 + 60 * step,  # same-day interactions keep their order
        }))
    return truth, frames


def write_world(out: str | os.PathLike, truth: Truth, frames: list[pd.DataFrame]) -> Path:
    """Domains in the canonical format, the ground truth and the embeddings input, under ``out``."""
    from safetensors.numpy import save_file

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PrerecError(f"--out {out}: exists and is not an empty directory; choose another")
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    for name, catalog, frame in zip(truth.domain_names, truth.catalogs, frames):
        (out / name).mkdir()
        frame.to_parquet(out / name / "interactions.parquet", index=False)
        pd.DataFrame({"item_id": truth.item_ids(catalog), "text": truth.texts(catalog)}).to_parquet(
            out / name / "items.parquet", index=False)
        stats[name] = {"users": int(frame["user_id"].nunique()), "catalog": len(catalog),
                       "items_in_log": int(frame["item_id"].nunique()), "interactions": len(frame)}
    tensors = {"item_latents": truth.item_latents, "transition": truth.transition, "word_latents": truth.word_latents,
               "words": truth.words, "domain_bias": truth.domain_bias, "embeddings": truth.embeddings}
    for name, catalog, b in zip(truth.domain_names, truth.catalogs, truth.trends):
        tensors[f"catalog.{name}"] = catalog.astype(np.int64)
        tensors[f"trend.{name}"] = b.astype(np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "truth.safetensors"))
    write_embeddings_table(out / "embeddings.safetensors", truth.texts(np.arange(len(truth.words))),
                           truth.embeddings)
    norms = np.linalg.norm(truth.domain_bias, axis=1)
    (out / "world.json").write_text(json.dumps({
        "format": FORMAT, "config": truth.config.to_dict(), "domains": truth.domain_names,
        "item_id": "i%07d (index into the universe)", "day0": DAY0, "words": [list(w) for w in WORDS],
        "domain_bias_norms": [round(float(v), 4) for v in norms], "stats": stats,
        "encoder_for_embeddings_input": "table:" + str((out / "embeddings.safetensors").resolve()),
    }, indent=2) + "\n")
    return out


def simulate(out: str | os.PathLike, cfg: SimConfig) -> Path:
    """Generate a world with ``cfg`` and write it to ``out``."""
    truth, frames = generate(cfg)
    return write_world(out, truth, frames)


# ---- reading the ground truth back ----------------------------------------------------------

def write_embeddings_table(path: Path, texts: list[str], emb: np.ndarray) -> None:
    """An embeddings table (``keys`` (n, 32) uint8, ``embeddings`` (n, F)) of distinct texts."""
    from safetensors.numpy import save_file

    from prerec.text.table import text_key

    first: dict[str, int] = {}
    for row, t in enumerate(texts):
        first.setdefault(t, row)  # equal texts have equal embeddings (x is a function of the words)
    rows = np.fromiter(first.values(), dtype=np.int64)
    keys = np.frombuffer(b"".join(text_key(t) for t in first), dtype=np.uint8).reshape(-1, 32)
    save_file({"keys": keys.copy(), "embeddings": np.ascontiguousarray(emb[rows], dtype=np.float32)}, str(path))


def load_truth(world: str | os.PathLike) -> Truth:
    """The ground truth of a world written by :func:`write_world`."""
    from safetensors.numpy import load_file

    world = Path(world)
    try:
        meta = json.loads((world / "world.json").read_text())
        t = load_file(str(world / "truth.safetensors"))
    except FileNotFoundError as exc:
        raise PrerecError(f"{world}: not a synthetic world ({exc.filename} is missing)") from None
    if meta.get("format") != FORMAT:
        raise PrerecError(f"{world / 'world.json'}: format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = SimConfig(**meta["config"])
    names = meta["domains"]
    return Truth(cfg, t["words"], t["word_latents"], t["item_latents"], t["transition"], t["embeddings"], t["domain_bias"],
                 [t[f"catalog.{n}"] for n in names], [t[f"trend.{n}"] for n in names])


def oracle_scores(truth: Truth, domain: str, item_ids: np.ndarray, histories: np.ndarray,
                  lengths: np.ndarray, days: np.ndarray, *, with_bias: bool = True,
                  with_popularity: bool = True) -> np.ndarray:
    """The generating scores l(j) ``(b, n)`` of ``item_ids`` after each history (catalog rows
    into ``item_ids``, -1 padding), on unix day ``days``. The unknown taste p_i is set to its
    mean 0 (its weight after t items is alpha^t); ``with_bias=False`` drops D_k,
    ``with_popularity=False`` the trend term."""
    cfg = truth.config
    k = truth.domain_names.index(domain)
    universe = np.array([int(str(i)[1:]) for i in item_ids], dtype=np.int64)
    q = truth.item_latents[universe]
    pos = np.searchsorted(truth.catalogs[k], universe)
    s = np.zeros((len(histories), q.shape[1]))
    for t in range(histories.shape[1]):
        live = t < np.asarray(lengths)
        s[live] = cfg.memory * s[live] + (1.0 - cfg.memory) * q[histories[live, t]] @ truth.transition.T
    D = truth.domain_bias[k] if with_bias else 0.0
    day = np.clip(np.asarray(days, dtype=np.int64) - DAY0, 0, cfg.n_days - 1)
    gamma = cfg.popularity_effect if with_popularity else 0.0
    return (cfg.sharpness * (s + D) @ q.T + gamma * truth.trends[k][day][:, pos]).astype(np.float32)
