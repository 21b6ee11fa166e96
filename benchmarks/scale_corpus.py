"""A fast synthetic corpus for the scale curve (benchmarks/scale.py), numpy only.

``write_corpus(out, n_interactions)`` writes a few domains in the ``canonical`` format
(``DOMAIN/interactions.parquet``: user_id, item_id, timestamp in unix seconds;
``DOMAIN/items.parquet``: item_id, text) and ``embeddings.safetensors``, the table read by the
``table:`` encoder, so no neural text encoder runs (its cost is benchmarks/encode.py's, linear
in the number of items).

Unlike prerec.simulate (a softmax over the whole catalog per interaction, far too slow at 10^7
interactions), everything here is drawn in vectorised passes:

- domains ``a``, ``b``, ``c`` take 80/15/5% of the interactions; domain k's catalog has
  ``n_k / 8`` items (10^6 items in ``a`` at 10^7 interactions);
- users have 2 + Geometric(1/18) interactions (mean ~20), spread from a start day uniform in
  180 days by exponential gaps of one day on average (clipped to the 180 days);
- sequential structure: a user's sequence is cut into segments (a new one with probability
  0.4 at each step); a segment starts at a Zipf(0.9) draw over the catalog (through a fixed
  random rank -> item permutation) and walks by steps in [-8, 8] through item ids;
- an item's embedding (``--dim``) is its block's centre (64 consecutive ids, the walk's
  neighbourhood) plus noise, so neighbouring items look alike to the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

DOMAINS = (("a", 0.80), ("b", 0.15), ("c", 0.05))
ITEMS_PER_INTERACTION = 1 / 8
DAYS = 180
DAY0 = 19_000  # 2022-01-08, in days since 1970
ZIPF = 0.9
NEW_SEGMENT = 0.4
STEP = 8
BLOCK = 64


def draw_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """User sequence lengths (>= 2) summing to exactly ``n``."""
    lengths = 2 + rng.geometric(1 / 18, size=n // 10 + 2)
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), n)) + 1]
    lengths[-1] -= int(lengths.sum()) - n
    if lengths[-1] < 2 and len(lengths) > 1:  # fold a too-short last user into the one before
        lengths[-2] += lengths[-1]
        lengths = lengths[:-1]
    return lengths.astype(np.int64)


def within_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarting at each True of ``starts`` (``starts[0]`` is True)."""
    total = np.cumsum(values)
    seg = np.cumsum(starts) - 1
    before = (total - values)[starts]
    return total - before[seg]


def draw_domain(n: int, n_items: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user of each interaction, item index, seconds since day 0), users grouped, time-ordered."""
    lengths = draw_lengths(n, rng)
    user = np.repeat(np.arange(len(lengths)), lengths)
    first = np.zeros(n, dtype=bool)
    first[np.cumsum(lengths) - lengths] = True
    # time: a start per user, then exponential gaps (mean one day), clipped to the period
    gaps = rng.exponential(86400.0, n)
    gaps[first] = rng.uniform(0, DAYS * 86400.0, len(lengths))
    seconds = np.minimum(within_cumsum(gaps, first), DAYS * 86400 - 1).astype(np.int64)
    # items: Zipf anchors at segment starts, small steps through item ids inside a segment
    seg_start = first | (rng.random(n) < NEW_SEGMENT)
    cdf = np.cumsum(np.arange(1, n_items + 1, dtype=np.float64) ** -ZIPF)
    ranks = np.searchsorted(cdf, rng.random(int(seg_start.sum())) * cdf[-1])
    anchors = rng.permutation(n_items)[np.minimum(ranks, n_items - 1)]
    steps = rng.integers(-STEP, STEP + 1, n)
    steps[seg_start] = 0
    item = (anchors[np.cumsum(seg_start) - 1] + within_cumsum(steps, seg_start)) % n_items
    return user, item.astype(np.int64), seconds


def item_embeddings(n_items: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((n_items // BLOCK + 1, dim)).astype(np.float32)
    emb = centres[np.arange(n_items) // BLOCK]
    emb += 0.5 * rng.standard_normal((n_items, dim), dtype=np.float32)
    return emb


def write_corpus(out: str | Path, n_interactions: int, *, dim: int = 64, seed: int = 0) -> dict:
    """Write the corpus under ``out`` (created) and return its description (also ``corpus.json``)."""
    from prerec.simulate import write_embeddings_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, n_interactions])
    texts, embs, stats = [], [], {}
    for name, share in DOMAINS:
        n = max(20, round(share * n_interactions))
        n_items = max(10, round(n * ITEMS_PER_INTERACTION))
        user, item, seconds = draw_domain(n, n_items, rng)
        ids = pd.Series(np.arange(n_items)).astype(str).radd(f"{name}")
        frame = pd.DataFrame({"user_id": pd.Series(user).astype(str).radd(f"{name}u").to_numpy(),
                              "item_id": ids.to_numpy()[item], "timestamp": DAY0 * 86400 + seconds})
        text = ids.radd("item ") + pd.Series(np.arange(n_items) // BLOCK).astype(str).radd(" shelf ")
        (out / name).mkdir(exist_ok=True)
        frame.to_parquet(out / name / "interactions.parquet", index=False)
        pd.DataFrame({"item_id": ids, "text": text}).to_parquet(out / name / "items.parquet", index=False)
        texts.extend(text.tolist())
        embs.append(item_embeddings(n_items, dim, rng))
        stats[name] = {"interactions": n, "users": int(user[-1]) + 1, "catalog": n_items,
                       "items_in_log": len(np.unique(item))}
    write_embeddings_table(out / "embeddings.safetensors", texts, np.concatenate(embs))
    info = {"interactions": int(sum(s["interactions"] for s in stats.values())), "dim": dim, "seed": seed,
            "days": DAYS, "domains": stats}
    (out / "corpus.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def domain_specs(corpus: str | Path) -> list[str]:
    """The ``NAME=canonical:PATH`` specs of a corpus written by :func:`write_corpus`."""
    return [f"{name}=canonical:{Path(corpus) / name}" for name, _ in DOMAINS]


def encoder_spec(corpus: str | Path) -> str:
    return f"table:{(Path(corpus) / 'embeddings.safetensors').resolve()}"
