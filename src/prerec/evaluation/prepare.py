"""Target domains made ready for evaluation, with or without a pre-trained run.

With a run, the run prepares the domain (its own text encoder and split seed), so PreRec and
the text baselines see the very same embeddings. Without one (baselines only), the domain is
encoded with the named encoder. Embeddings can be cached on disk (safetensors, keyed by the
encoder's identity and the exact texts) because the default encoder needs minutes per catalog
on two CPU cores.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain, prepare_domain
from prerec.data.split import DEFAULT_SEED
from prerec.text import TextEncoder, embed_catalog, get_encoder

log = logging.getLogger(__name__)


def cached_embeddings(domain: Domain, encoder: TextEncoder, cache_dir: Path | None,
                      progress: bool = True) -> np.ndarray:
    """The catalog's embeddings, read from ``cache_dir`` when the same encoder saw the same texts."""
    if cache_dir is None:
        return embed_catalog(domain, encoder, progress=progress)
    h = hashlib.sha256(encoder.identity.encode())
    for text in domain.texts.tolist():
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    path = Path(cache_dir) / f"emb-{h.hexdigest()[:24]}.safetensors"
    if path.exists():
        emb = load_file(str(path))["emb"]
        if emb.shape[0] == domain.n_items:
            return emb
    emb = embed_catalog(domain, encoder, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({"emb": np.ascontiguousarray(emb, dtype=np.float32)}, str(tmp),
              metadata={"encoder": encoder.identity, "domain": domain.name})
    os.replace(tmp, path)
    return emb


def prepare_without_run(domains: list[Domain], encoder: str | TextEncoder | None = None,
                        seed: int = DEFAULT_SEED, cache_dir: Path | None = None,
                        progress: bool = True) -> list[PreparedDomain]:
    """Split, popularity index and text embeddings of each domain, for run-free baselines."""
    enc = encoder if isinstance(encoder, TextEncoder) else get_encoder(encoder)
    out = []
    for d in domains:
        log.info("preparing %s (%d items) with encoder %s", d.name, d.n_items, enc.identity)
        out.append(prepare_domain(d, cached_embeddings(d, enc, cache_dir, progress), seed))
    return out
