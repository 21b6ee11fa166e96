"""The user split of docs/method.md, "Evaluation": users of a domain at random 40/30/30, with a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prerec.constants import SPLIT_SEED
from prerec.data.domain import Sequences

DEFAULT_FRACTIONS = (0.4, 0.3, 0.3)


@dataclass(frozen=True)
class Split:
    """Train, validation and test users of one domain, each as :class:`Sequences`."""

    train: Sequences
    valid: Sequences
    test: Sequences

    def part(self, name: str) -> Sequences:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def split_users(
    sequences: Sequences, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> Split:
    """Shuffle users with ``seed`` (users taken in sorted id order first, so the split does not
    depend on file order) and cut at 40% and 70%."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    n = len(sequences)
    by_id = np.argsort(sequences.users.astype(str), kind="stable")
    perm = by_id[np.random.default_rng(seed).permutation(n)]
    n_train = round(fractions[0] * n)
    n_valid = round(fractions[1] * n)
    return Split(
        train=sequences.subset(perm[:n_train]),
        valid=sequences.subset(perm[n_train : n_train + n_valid]),
        test=sequences.subset(perm[n_train + n_valid :]),
    )
