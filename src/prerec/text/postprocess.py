"""Optional post-processing of item embeddings: mean-centring or whitening, fitted on source domains.

Why: e5's cosines sit in a narrow high band (unrelated products ~0.75-0.85), because all its
vectors share a large common component. Removing the mean (and, with whitening, equalising the
variance of every direction) spreads them out. The transform is fitted on the *source* domains'
item embeddings only, each domain weighing the same whatever its catalog size, and applied
unchanged to every domain, the zero-shot targets included.

- ``center``: ``y = normalise(x - mu)``, ``mu`` = mean over domains of each domain's mean row;
- ``whiten`` (ZCA): ``y = normalise((x - mu) U diag((lam + eps)^-1/2) U^T)`` where ``U, lam``
  are the eigenvectors and eigenvalues of ``C`` = mean over domains of each domain's second
  moment about ``mu``, and ``eps = shrink * mean(lam)`` keeps rank-deficient directions (small
  catalogs, ``n < dim``) from exploding;
- ``none``: rows re-normalised only.

``state_dict()`` is a dict of NumPy arrays (safetensors-ready); ``from_state_dict`` restores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prerec.errors import PrerecError
from prerec.text.encoders import l2_normalise

KINDS = ("none", "center", "whiten")


class EmbeddingTransform:
    """Centring / whitening of embedding rows; identity (plus re-normalisation) until fitted."""

    def __init__(self, kind: str = "none", mean: np.ndarray | None = None, matrix: np.ndarray | None = None,
                 shrink: float = 0.01) -> None:
        if kind not in KINDS:
            raise PrerecError(f"embedding transform {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind, self.shrink = kind, float(shrink)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.matrix = None if matrix is None else np.asarray(matrix, dtype=np.float32)

    def fit(self, arrays: Sequence[np.ndarray], kind: str | None = None) -> EmbeddingTransform:
        """Fit on a list of ``(n_k, dim)`` arrays, one per source domain; returns ``self``."""
        kind = self.kind if kind is None else kind
        if kind not in KINDS:
            raise PrerecError(f"embedding transform {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind, self.mean, self.matrix = kind, None, None
        if kind == "none":
            return self
        blocks = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
        if not blocks:
            raise PrerecError("embedding transform: nothing to fit on (no source domain has items)")
        dims = {b.shape[1] for b in blocks if b.ndim == 2}
        if len(dims) != 1 or any(b.ndim != 2 for b in blocks):
            raise PrerecError(f"embedding transform: expected (n, dim) arrays of one dim, got {[b.shape for b in blocks]}")
        mu = np.mean([b.mean(axis=0) for b in blocks], axis=0)
        self.mean = mu.astype(np.float32)
        if kind == "whiten":
            cov = np.mean([(b - mu).T @ (b - mu) / len(b) for b in blocks], axis=0)
            lam, vec = np.linalg.eigh((cov + cov.T) / 2)
            lam = np.clip(lam, 0.0, None)
            eps = self.shrink * max(float(lam.mean()), 1e-12)
            self.matrix = ((vec / np.sqrt(lam + eps)) @ vec.T).astype(np.float32)
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Transformed rows, L2-normalised, float32."""
        x = np.asarray(x, dtype=np.float32)
        if self.mean is not None:
            if x.ndim != 2 or x.shape[1] != len(self.mean):
                raise PrerecError(f"embedding transform fitted on dim {len(self.mean)}, got an array {x.shape}")
            x = x - self.mean
        if self.matrix is not None:
            x = x @ self.matrix
        return l2_normalise(x)

    __call__ = apply

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays only: ``kind`` (int64 code into KINDS), ``shrink``, and ``mean``/``matrix`` if fitted."""
        state = {"kind": np.array([KINDS.index(self.kind)], dtype=np.int64),
                 "shrink": np.array([self.shrink], dtype=np.float64)}
        if self.mean is not None:
            state["mean"] = self.mean
        if self.matrix is not None:
            state["matrix"] = self.matrix
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> EmbeddingTransform:
        """Inverse of :meth:`state_dict` (accepts NumPy arrays or anything ``np.asarray`` takes)."""
        try:
            code = int(np.asarray(state["kind"]).reshape(-1)[0])
            kind = KINDS[code]
        except (KeyError, IndexError, ValueError) as exc:
            raise PrerecError(f"embedding transform state: bad or missing 'kind' ({exc})") from exc
        mean = state.get("mean")
        matrix = state.get("matrix")
        if kind != "none" and mean is None:
            raise PrerecError(f"embedding transform state: kind {kind!r} needs 'mean'")
        if kind == "whiten" and matrix is None:
            raise PrerecError("embedding transform state: kind 'whiten' needs 'matrix'")
        shrink = float(np.asarray(state.get("shrink", [0.01])).reshape(-1)[0])
        return cls(kind, None if mean is None else np.asarray(mean), None if matrix is None else np.asarray(matrix), shrink)

    def __repr__(self) -> str:
        dim = None if self.mean is None else len(self.mean)
        return f"EmbeddingTransform(kind={self.kind!r}, dim={dim})"
