"""Item text encoding: frozen sentence encoders behind one interface, with an on-disk cache.

``get_encoder(spec)`` accepts ``e5`` (default, offline), ``sentence-transformers:<name or path>``
and ``hash[:DIM]`` (a fast lexical hashing encoder for tests and smoke runs).
``embed_catalog(domain, encoder)`` returns the catalog's embeddings aligned with
``domain.item_ids``, encoding only texts missing from the cache (:mod:`prerec.text.cache`).
``EmbeddingTransform`` (:mod:`prerec.text.postprocess`) optionally centres or whitens them.
"""

from prerec.text.cache import CachedEncoder, EmbeddingCache, EncodeStats, default_cache_dir, encode_cached
from prerec.text.catalog import embed_catalog, embed_catalog_stats
from prerec.text.encoders import DEFAULT_ENCODER, HashEncoder, TextEncoder, get_encoder, l2_normalise
from prerec.text.postprocess import EmbeddingTransform

__all__ = [
    "DEFAULT_ENCODER", "CachedEncoder", "EmbeddingCache", "EmbeddingTransform", "EncodeStats", "HashEncoder",
    "TextEncoder", "default_cache_dir", "embed_catalog", "embed_catalog_stats", "encode_cached", "get_encoder",
    "l2_normalise",
]
