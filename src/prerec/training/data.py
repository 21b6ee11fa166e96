"""Training data in flat arrays: draws, chunks, negatives and batches (docs/method.md, "Training").

The source domains' training sequences are concatenated into one flat array of *global*
item ids (item j of domain k is ``base[k] + j``), so building a batch is index arithmetic,
with no Python loop per instance. Two batch layouts:

- ``instance``: a draw is one (history, target) pair; the history is the previous <= 64 items
  (the paper's layout).
- ``sequence``: a draw is a chunk of <= 65 consecutive items of one user; chunks start at
  positions 0, 64, 128, ... so every target position is in exactly one chunk. One causal
  pass gives U at each of its <= 64 positions, each predicting its next item.

Domain-balanced sampling: each draw picks a domain uniformly, then an instance uniformly in
it (= sample weight 1 / (n_k * n_domains), with replacement). In the sequence layout a chunk is
picked with probability proportional to its number of targets and domains are drawn in
inverse proportion to their mean targets per drawn chunk, so every instance has the same
expected weight as in the instance layout (each domain brings the same expected number of
instances). An epoch has as many (expected) instances as the training set. Negatives:
``n_negatives`` items drawn uniformly from the draw's domain, scored with the popularity
factors of the positive's day (in the sequence layout, drawn once per chunk and shared by its
positions, each position using its own target's day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from prerec.constants import DEFAULT_FACTORS
from prerec.data.instances import Instances
from prerec.data.prepared import PreparedDomain
from prerec.popularity_factors import factor_width


@dataclass
class Part:
    """One domain's contribution to training: its prepared data and its training instances."""

    prepared: PreparedDomain
    instances: Instances
    domain_index: int  # row of D and block of the offset table in the model


class FactorTable:
    """Distinct nonzero popularity factor rows of the domains' (day, item) pairs.

    Row 0 is the zero row (item absent from its window, or the first day). Each domain keeps
    sorted keys ``day_index * n_items + item`` of its nonzero pairs; a lookup is one
    ``searchsorted``. Only the days that occur in the logs are tabulated. ``factor_set``: the
    model's ``popularity_factors`` (:mod:`prerec.popularity_factors`).
    """

    def __init__(self, parts: list[Part], factor_set: str = DEFAULT_FACTORS) -> None:
        rows = [np.zeros((1, factor_width(factor_set)), dtype=np.float32)]
        self.days: list[np.ndarray] = []
        keys, n_rows = [], 1
        self.key_base = np.zeros(len(parts) + 1, dtype=np.int64)
        for k, part in enumerate(parts):
            pop, n_items = part.prepared.popularity, part.prepared.n_items
            if not pop.timed:
                days = np.array([-1], dtype=np.int64)
            else:
                days = np.unique(part.prepared.domain.sequences.days)
            self.days.append(days)
            for d_idx, day in enumerate(days):
                uniq, factors = pop.window_factors(int(day) if pop.timed else None, factor_set)
                if not len(uniq):
                    continue
                # distinct items in [0, n_items), increasing: the keys of a day lie in their own
                # block after the previous day's, so the whole key array is sorted. Checked here,
                # per day while it is in cache (one pass over the concatenated keys cost 15% of
                # building the table of a 10^7-interaction log, benchmarks/scale.py)
                assert uniq[0] >= 0 and uniq[-1] < n_items and (uniq[1:] > uniq[:-1]).all()
                rows.append(factors)
                keys.append(self.key_base[k] + d_idx * n_items + uniq)
                n_rows += len(uniq)
            self.key_base[k + 1] = self.key_base[k] + len(days) * n_items
        self.rows = np.concatenate(rows)
        self.keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)

    def day_index(self, k: int, days: np.ndarray) -> np.ndarray:
        if len(self.days[k]) == 1 and self.days[k][0] == -1:
            return np.zeros(len(days), dtype=np.int64)
        return np.searchsorted(self.days[k], days)

    def lookup(self, day_keys: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Row ids for local ``items`` on pre-computed ``day_keys`` (= key_base + day_index * n_items)."""
        key = day_keys + items
        if not len(self.keys):
            return np.zeros(key.shape, dtype=np.int64)
        pos = np.searchsorted(self.keys, key)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        return np.where(self.keys[pos_c] == key, pos_c + 1, 0)


def to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array as a tensor on ``device``; to a GPU through pinned memory without waiting, so
    the host can build the next batch while the GPU still computes."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def compact(ids: np.ndarray, size: int, scratch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` for ids in ``[-1, size)`` in O(n), without sorting.

    -1 stays -1 in the inverse. ``scratch`` is an int64 buffer of length ``size``, left all -1.
    """
    flat = ids.ravel()
    valid = flat >= 0
    present = np.zeros(size, dtype=bool)
    present[flat[valid]] = True
    uniq = np.flatnonzero(present)
    scratch[uniq] = np.arange(len(uniq))
    inv = np.where(valid, scratch[np.where(valid, flat, 0)], -1)
    scratch[uniq] = -1
    return uniq, inv.reshape(ids.shape)


class Corpus:
    """The training parts as flat arrays, plus the sampler and batch builder."""

    def __init__(self, parts: list[Part], item_base: np.ndarray, n_negatives: int, max_history: int,
                 *, layout: str = "sequence", domain_balanced: bool = True, x_base: int = 0,
                 identity_of: np.ndarray | None = None, popularity_factors: str = DEFAULT_FACTORS,
                 skip_repeats: bool = False) -> None:
        self.parts = parts
        self.skip_repeats = skip_repeats  # leave targets already in their history out of the loss
        self.identity_of = identity_of  # identity row of each global item id (-1: none); None: no identity
        self.identity = None  # the vocabulary behind identity_of (set by whoever builds the corpus)
        self.x_base = x_base  # row of X = global item id - x_base
        self.layout = layout
        self.n_negatives = n_negatives
        self.max_history = max_history
        self.domain_balanced = domain_balanced
        self.table = FactorTable(parts, popularity_factors)
        n_items = np.array([p.prepared.n_items for p in parts], dtype=np.int64)
        self.n_items = n_items
        self.item_base = np.asarray(item_base, dtype=np.int64)  # global id of each part's item 0
        items, day_keys, targets, is_target = [], [], [], []
        flat_base = 0
        self.instance_flat, self.instance_start = [], []
        for k, part in enumerate(parts):
            inst = part.instances
            seqs = inst.sequences
            items.append(seqs.items + self.item_base[k])
            day_keys.append(self.table.key_base[k] + self.table.day_index(k, seqs.days) * n_items[k])
            flat = flat_base + inst.flat
            self.instance_flat.append(flat)
            self.instance_start.append(flat - np.minimum(inst.pos, max_history))
            mask = np.zeros(seqs.n_interactions, dtype=bool)
            mask[inst.flat] = True
            is_target.append(mask)
            targets.append(len(inst))
            flat_base += seqs.n_interactions
        self.items = np.concatenate(items)  # global item id of every flat position
        self.local = np.concatenate([p.instances.sequences.items for p in parts])
        self.domain_of = np.concatenate([np.full(p.instances.sequences.n_interactions, k)
                                         for k, p in enumerate(parts)])
        self.day_keys = np.concatenate(day_keys)
        self.is_target = np.concatenate(is_target)
        self.n_instances = np.array(targets, dtype=np.int64)
        self.part_domain = np.array([p.domain_index for p in parts], dtype=np.int64)
        self._inst_offsets = np.concatenate([[0], np.cumsum(self.n_instances)])
        self.instance_flat = np.concatenate(self.instance_flat)
        self.instance_start = np.concatenate(self.instance_start)
        self._build_chunks()
        self._item_scratch = np.full(int(self.item_base[-1] + n_items[-1]) if len(parts) else 0, -1, np.int64)
        self._row_scratch = np.full(len(self.table.rows), -1, np.int64)
        self._chunk_offsets = np.concatenate([[0], np.cumsum([len(c) for c in self.chunk_start])])
        self._chunk_start_all = np.concatenate(self.chunk_start)
        self._chunk_len_all = np.concatenate(self.chunk_len)

    # ---- chunks (sequence layout) ---------------------------------------------------------------

    def _build_chunks(self) -> None:
        """Chunks of <= max_history + 1 items at stride max_history, with at least one target."""
        L = self.max_history
        self.chunk_start, self.chunk_len, self.chunk_targets = [], [], []
        flat_base = 0
        for k, part in enumerate(self.parts):
            seqs = part.instances.sequences
            lengths = seqs.lengths
            n_chunks = np.maximum((lengths - 1 + L - 1) // L, 0)  # targets 1..len-1, 64 per chunk
            seq = np.repeat(np.arange(len(lengths)), n_chunks)
            within = np.arange(int(n_chunks.sum())) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
            start = flat_base + seqs.offsets[seq] + within * L
            length = np.minimum(L + 1, lengths[seq] - within * L)
            # number of training targets in each chunk (targets are positions 1..length-1)
            cs = np.concatenate([[0], np.cumsum(self.is_target[flat_base:flat_base + seqs.n_interactions])])
            local = start - flat_base
            n_t = cs[local + length] - cs[local + 1]
            keep = n_t > 0
            self.chunk_start.append(start[keep])
            self.chunk_len.append(length[keep])
            self.chunk_targets.append(n_t[keep])
            flat_base += seqs.n_interactions
            assert n_t.sum() == self.n_instances[k]

    # ---- draws --------------------------------------------------------------------------------

    @property
    def total_instances(self) -> int:
        return int(self.n_instances.sum())

    def _domain_probs(self) -> np.ndarray:
        if self.domain_balanced:
            return np.full(len(self.parts), 1.0 / len(self.parts))
        return self.n_instances / self.n_instances.sum()

    def epoch_draws(self, seed: int, epoch: int, max_instances: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(domain, unit) of every draw of an epoch, in order. A unit is an instance or a chunk."""
        rng = np.random.default_rng([seed, epoch, 0xD4A])
        target = self.total_instances if max_instances <= 0 else min(self.total_instances, max_instances)
        probs = self._domain_probs()
        if self.layout == "instance":
            dom = rng.choice(len(self.parts), size=target, p=probs)
            unit = np.floor(rng.random(target) * self.n_instances[dom]).astype(np.int64)
            return dom, unit
        # sequence layout: a chunk is drawn with probability proportional to its targets, so a draw
        # from domain k brings E_k = sum c^2 / sum c targets on average; domain k is drawn with
        # probability proportional to probs[k] / E_k, so that its share of *instances* is probs[k]
        e_k = np.array([float((c.astype(np.float64) ** 2).sum() / c.sum()) for c in self.chunk_targets])
        chunk_probs = probs / e_k
        chunk_probs /= chunk_probs.sum()
        expected = float((chunk_probs * e_k).sum())
        n_draws = max(1, round(target / expected))
        dom = rng.choice(len(self.parts), size=n_draws, p=chunk_probs)
        unit = np.empty(n_draws, dtype=np.int64)
        for k in range(len(self.parts)):
            sel = np.flatnonzero(dom == k)
            cum = np.cumsum(self.chunk_targets[k])
            unit[sel] = np.searchsorted(cum, rng.random(len(sel)) * cum[-1], side="right")
        return dom, unit

    def unit_sizes(self, dom: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Training targets in each draw (1 per instance, the chunk's count in the sequence layout)."""
        if self.layout == "instance":
            return np.ones(len(dom), dtype=np.int64)
        out = np.empty(len(dom), dtype=np.int64)
        for k in range(len(self.parts)):
            sel = dom == k
            out[sel] = self.chunk_targets[k][unit[sel]]
        return out

    def batch_bounds(self, sizes: np.ndarray, batch_size: int) -> np.ndarray:
        """Cut the draw sequence into consecutive batches of ~``batch_size`` targets."""
        before = np.cumsum(sizes) - sizes
        bid = before // batch_size
        return np.concatenate([[0], np.flatnonzero(np.diff(bid)) + 1, [len(sizes)]])

    # ---- batches ------------------------------------------------------------------------------

    def negatives(self, seed: int, epoch: int, step: int, dom: np.ndarray) -> np.ndarray:
        """``n_negatives`` local item indices per draw, uniform over the draw's domain."""
        rng = np.random.default_rng([seed, epoch, step, 0x9E6])
        u = rng.random((len(dom), self.n_negatives))
        return np.floor(u * self.n_items[dom][:, None]).astype(np.int64)

    def _instance_arrays(self, dom: np.ndarray, unit: np.ndarray, neg_local: np.ndarray) -> tuple:
        """(hist, target, target factor rows, negative factor rows, extra) of instance draws."""
        L = self.max_history
        row = self._inst_offsets[dom] + unit
        t_flat = self.instance_flat[row]
        start = self.instance_start[row]
        lengths = t_flat - start
        cols = np.arange(min(L, int(lengths.max())))
        valid = cols[None, :] < lengths[:, None]
        hist = np.where(valid, self.items[np.where(valid, start[:, None] + cols, 0)], -1)
        target = self.items[t_flat]
        day_keys = self.day_keys[t_flat]
        t_pop = self.table.lookup(day_keys, self.local[t_flat])
        n_pop = self.table.lookup(day_keys[:, None], neg_local)
        extra = {"lengths": lengths}
        if self.skip_repeats:
            extra["valid"] = ~(hist == target[:, None]).any(axis=1)
        return hist, target, t_pop, n_pop, extra

    def _sequence_arrays(self, dom: np.ndarray, unit: np.ndarray, neg_local: np.ndarray) -> tuple:
        """The same for chunk draws: every position of a chunk predicts its next item."""
        row = self._chunk_offsets[dom] + unit
        cstart = self._chunk_start_all[row]
        clen = self._chunk_len_all[row]
        width = int(clen.max()) - 1
        cols = np.arange(width)
        in_hist = cols[None, :] < (clen - 1)[:, None]
        pos = np.where(in_hist, cstart[:, None] + cols, 0)
        hist = np.where(in_hist, self.items[pos], -1)
        t_pos = pos + 1
        is_t = in_hist & self.is_target[t_pos]
        if self.skip_repeats:  # position t sees the chunk's items 0..t
            seen = (hist[:, None, :] == self.items[t_pos][:, :, None]) & np.tri(width, dtype=bool)[None]
            is_t &= ~seen.any(axis=2)
        target = np.where(is_t, self.items[t_pos], -1)
        day_keys = self.day_keys[t_pos]
        t_pop = np.where(is_t, self.table.lookup(day_keys, self.local[t_pos]), 0)
        # the negatives' factors depend on (chunk, day) only: look them up once per run of
        # equal days inside a chunk (a chunk usually spans a few days), not once per position
        change = np.ones(day_keys.shape, dtype=bool)
        change[:, 1:] = day_keys[:, 1:] != day_keys[:, :-1]
        run_id = np.cumsum(change.ravel()).reshape(change.shape) - 1  # (b, W) -> run
        run_chunk = np.repeat(np.arange(len(dom)), change.sum(1))
        n_pop = self.table.lookup(day_keys[change][:, None], neg_local[run_chunk])  # (runs, n)
        extra = {"neg_pop_index": run_id}
        return hist, target, t_pop, n_pop, extra

    def build(self, dom: np.ndarray, unit: np.ndarray, neg_local: np.ndarray, norm: float,
              X: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        """The model's batch dict (see :meth:`prerec.model.PreRec.forward`) for these draws."""
        gneg = neg_local + self.item_base[dom][:, None]
        if self.layout == "instance":
            hist, target, t_pop, n_pop, extra = self._instance_arrays(dom, unit, neg_local)
        else:
            hist, target, t_pop, n_pop, extra = self._sequence_arrays(dom, unit, neg_local)
        # every distinct item once, every distinct factor row once
        ids = np.concatenate([hist.ravel(), target.ravel(), gneg.ravel()])
        uniq, inv = compact(ids, len(self._item_scratch), self._item_scratch)  # -1: the model's zero row
        a, b = hist.size, hist.size + target.size
        hist_i = inv[:a].reshape(hist.shape)
        target_i = inv[a:b].reshape(target.shape)
        neg_i = inv[b:].reshape(gneg.shape)
        prow, pinv = compact(np.concatenate([t_pop.ravel(), n_pop.ravel()]), len(self._row_scratch),
                             self._row_scratch)
        arrays = {
            "rows": uniq,
            "domain": self.part_domain[dom],
            "hist": hist_i,
            "target": target_i,
            "neg": neg_i,
            "pop_rows": self.table.rows[prow],
            "target_pop": pinv[: t_pop.size].reshape(t_pop.shape),
            "neg_pop": pinv[t_pop.size:].reshape(n_pop.shape),
            **extra,
        }
        if self.identity_of is not None:
            arrays["identity"] = self.identity_of[uniq]
        batch = {k: to_device(v, device) for k, v in arrays.items()}
        batch["x"] = X[batch["rows"] - self.x_base] if X.device == device else \
            X[torch.from_numpy(uniq - self.x_base)].to(device)
        batch["norm"] = torch.tensor(float(norm), device=device)
        return batch
