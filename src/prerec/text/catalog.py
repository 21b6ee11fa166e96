"""Embeddings of a domain's catalog, aligned with ``domain.item_ids``, through the on-disk cache.

The item text itself is built by each reader (``domain.texts``; see docs/text.md); this module
only encodes it. An item without text has ``""``, which is encoded like any other text.
"""

from __future__ import annotations

import numpy as np

from prerec.data.domain import Domain
from prerec.text.cache import CacheDir, EncodeStats, encode_cached
from prerec.text.encoders import TextEncoder


def embed_catalog_stats(
    domain: Domain, encoder: TextEncoder, *, cache_dir: CacheDir = None, progress: bool = False
) -> tuple[np.ndarray, EncodeStats]:
    """Like :func:`embed_catalog`, also returning what was encoded and what came from the cache."""
    return encode_cached(encoder, domain.texts.astype(str).tolist(), cache_dir=cache_dir, progress=progress)


def embed_catalog(
    domain: Domain, encoder: TextEncoder, *, cache_dir: CacheDir = None, progress: bool = False
) -> np.ndarray:
    """``(n_items, dim)`` float32 embeddings of the domain's item texts, rows L2-normalised.

    ``cache_dir``: ``None`` uses ``$PREREC_CACHE_DIR`` or ``~/.cache/prerec``; a path uses that
    folder; ``False`` encodes without a cache. Only texts not in the cache are encoded."""
    emb, _stats = embed_catalog_stats(domain, encoder, cache_dir=cache_dir, progress=progress)
    return emb
