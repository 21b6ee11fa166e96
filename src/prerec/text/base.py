"""The text encoder interface: float32 rows, L2-normalised, one per input text."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class TextEncoder(ABC):
    """A frozen text encoder. ``identity`` names the model and its input convention exactly, so
    a cache written by one encoder is never served to another."""

    identity: str
    dim: int

    @abstractmethod
    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embeddings ``(len(texts), dim)``, float32, rows L2-normalised."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r}, dim={self.dim})"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
