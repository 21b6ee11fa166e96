"""Training and evaluation instances (docs/method.md, "Evaluation").

Every position t >= 1 of a user's sequence is one instance: history = the previous <= 64
items, target = item t, day = the target's day (its popularity factors are that day's).
Instances are two integer arrays (sequence, position) over a :class:`Sequences`; histories are
materialised only when asked for, as a padded matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prerec.constants import MAX_HISTORY, PAD
from prerec.data.domain import Sequences


@dataclass(frozen=True)
class Instances:
    """(history, target, day) instances, as positions into ``sequences``."""

    sequences: Sequences
    seq: np.ndarray  # (n,) int64: which sequence
    pos: np.ndarray  # (n,) int64: position t >= 1 of the target within it

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def flat(self) -> np.ndarray:
        """Index of each target in the flat ``sequences.items`` array."""
        return self.sequences.offsets[self.seq] + self.pos

    @property
    def targets(self) -> np.ndarray:
        return self.sequences.items[self.flat]

    @property
    def days(self) -> np.ndarray:
        return self.sequences.days[self.flat]

    @property
    def users(self) -> np.ndarray:
        return self.sequences.users[self.seq]

    def histories(self, max_len: int = MAX_HISTORY) -> tuple[np.ndarray, np.ndarray]:
        """Left-aligned history matrix ``(n, max_len)`` padded with ``PAD`` at the end, and lengths.

        Left alignment means a causal user tower never attends to padding: position
        ``length - 1`` sees only real items.
        """
        lengths = np.minimum(self.pos, max_len)
        start = self.flat - lengths
        cols = np.arange(max_len)
        idx = start[:, None] + cols[None, :]
        valid = cols[None, :] < lengths[:, None]
        hist = np.where(valid, self.sequences.items[np.where(valid, idx, 0)], PAD)
        return hist.astype(np.int64), lengths.astype(np.int64)

    def take(self, rows: np.ndarray) -> Instances:
        return Instances(self.sequences, self.seq[rows], self.pos[rows])

    def first(self, n: int) -> Instances:
        """The first ``n`` instances in time order (target day, then user order, then position):
        the log as it stood when it had ``n`` training instances (incremental training)."""
        order = np.lexsort((self.pos, self.seq, self.days))
        return self.take(np.sort(order[: max(int(n), 0)]))


def make_instances(sequences: Sequences) -> Instances:
    """Every position t >= 1 of every sequence, in sequence order."""
    lengths = sequences.lengths
    n_per = np.maximum(lengths - 1, 0)
    seq = np.repeat(np.arange(len(sequences), dtype=np.int64), n_per)
    starts = np.repeat(np.cumsum(n_per) - n_per, n_per)
    pos = np.arange(int(n_per.sum()), dtype=np.int64) - starts + 1
    return Instances(sequences, seq, pos)
