"""Target domains made ready for evaluation, with or without a pre-trained run.

With a run, the run prepares the domain (its own text encoder and split seed), so PreRec and
the text baselines see the very same embeddings. Without one (baselines only), the domain is
encoded with the named encoder through the text package's on-disk cache
(:mod:`prerec.text.cache`; ``$PREREC_CACHE_DIR`` or ``~/.cache/prerec``).
"""

from __future__ import annotations

import logging

from prerec.constants import SPLIT_SEED
from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain, prepare_domain
from prerec.text import TextEncoder, embed_catalog, get_encoder
from prerec.text.cache import CacheDir

log = logging.getLogger(__name__)


def prepare_without_run(domains: list[Domain], encoder: str | TextEncoder | None = None,
                        seed: int = SPLIT_SEED, cache_dir: CacheDir = None,
                        progress: bool = True) -> list[PreparedDomain]:
    """Split, popularity index and text embeddings of each domain, for run-free baselines."""
    enc = encoder if isinstance(encoder, TextEncoder) else get_encoder(encoder)
    out = []
    for d in domains:
        log.info("preparing %s (%d items) with encoder %s", d.name, d.n_items, enc.identity)
        out.append(prepare_domain(d, embed_catalog(d, enc, cache_dir=cache_dir, progress=progress), seed))
    return out
