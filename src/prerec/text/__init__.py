"""Item text encoding: frozen sentence encoders behind one interface, with an on-disk cache.

``get_encoder(spec)`` accepts ``e5`` (default, offline), ``sentence-transformers:<name or path>``
and ``hash[:DIM]`` (a fast lexical hashing encoder for tests and smoke runs).
``embed_catalog(domain, encoder)`` returns the catalog's embeddings aligned with
``domain.item_ids``.
"""

from prerec.text.catalog import embed_catalog
from prerec.text.encoders import DEFAULT_ENCODER, HashEncoder, TextEncoder, get_encoder

__all__ = ["DEFAULT_ENCODER", "HashEncoder", "TextEncoder", "embed_catalog", "get_encoder"]
