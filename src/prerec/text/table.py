"""``table:PATH``: an encoder that looks each text up in a table of given embeddings.

The table is a safetensors file with ``keys`` (n, 32) uint8, the sha256 of each text's UTF-8
bytes, and ``embeddings`` (n, F) float32. It is how a synthetic world (docs/synthetic.md)
hands the model item embeddings directly, so tests need no neural text encoder. The identity
names the table's content, so a cache or a run never mixes two tables.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from prerec.errors import PrerecError
from prerec.text.base import TextEncoder, l2_normalise


def text_key(text: str) -> bytes:
    """The key of a text in a table: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class TableEncoder(TextEncoder):
    """Embeddings looked up by text; a text missing from the table is an error."""

    def __init__(self, path: str) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        p = Path(path).expanduser()
        try:
            raw = p.read_bytes()
            t = load_file(str(p))
        except FileNotFoundError:
            raise PrerecError(f"encoder table:{path}: no such file") from None
        except (OSError, SafetensorError) as exc:
            raise PrerecError(f"encoder table:{path}: not a readable safetensors file ({exc})") from None
        keys, emb = t.get("keys"), t.get("embeddings")
        if keys is None or emb is None or keys.shape != (len(emb), 32) or emb.ndim != 2:
            raise PrerecError(f"encoder table:{path}: expected tensors 'keys' (n, 32) and 'embeddings' (n, F)")
        self.path = p
        self.dim = int(emb.shape[1])
        self.identity = f"table:{hashlib.sha256(raw).hexdigest()[:16]}"
        self._emb = l2_normalise(emb)
        self._row = {bytes(k): r for r, k in enumerate(keys)}

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        rows = np.empty(len(texts), dtype=np.int64)
        for n, text in enumerate(texts):
            r = self._row.get(text_key(text))
            if r is None:
                raise PrerecError(f"encoder table:{self.path}: no embedding for the text {text[:60]!r}")
            rows[n] = r
        return self._emb[rows].copy()
