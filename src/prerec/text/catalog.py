"""Embeddings of a domain's catalog, aligned with ``domain.item_ids``."""

from __future__ import annotations

import numpy as np

from prerec.data.domain import Domain
from prerec.text.encoders import TextEncoder


def embed_catalog(domain: Domain, encoder: TextEncoder, *, progress: bool = False) -> np.ndarray:
    """``(n_items, dim)`` float32 embeddings of the domain's item texts."""
    return encoder.encode(domain.texts.tolist(), progress=progress)
