"""A probe, not a feature: each domain's text centred by its own catalog mean before whitening.

    python benchmarks/domain_centring_probe.py run --work W --benchmarks b2,b1 --sets "paper+repeat_mixture=true" --seeds 2023
    python benchmarks/domain_centring_probe.py report --work W --out DIR

Runs ``benchmarks/factor_transfer.py`` with ``EmbeddingTransform.fit``/``apply`` patched so that
every catalog is centred by its own mean (the sources' when fitting, the target's when scoring:
known zero-shot) before the whitening fitted on the sources. Valid only where ``apply`` sees a
whole catalog at once (pre-training and ``run.prepare``; not the service's raw texts), which is
why it is a probe. Measured in docs/popularity.md ("The repeat mixture").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from prerec.text import postprocess
from prerec.text.encoders import l2_normalise

_fit = postprocess.EmbeddingTransform.fit


def fit(self, arrays, kind=None):
    """The sources' transform fitted on each source centred by its own mean."""
    _fit(self, [np.asarray(a, np.float64) - np.asarray(a, np.float64).mean(0) for a in arrays if len(a)], kind)
    if self.mean is not None:
        self.mean = np.zeros_like(self.mean)
    return self


def apply(self, x):
    """A whole catalog centred by its own mean, then whitened as fitted."""
    x = np.asarray(x, dtype=np.float32)
    if self.kind != "none" and len(x) > 1:
        x = x - x.mean(0)
    if self.matrix is not None:
        x = x @ self.matrix
    return l2_normalise(x)


def main() -> int:
    postprocess.EmbeddingTransform.fit = fit
    postprocess.EmbeddingTransform.apply = apply
    postprocess.EmbeddingTransform.__call__ = apply
    sys.path.insert(0, str(Path(__file__).parent))
    import factor_transfer

    return factor_transfer.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
