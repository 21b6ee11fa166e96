"""Shared item identity across domains: one vocabulary over the sources' declared key spaces.

A domain's item ids mean something outside it only when its spec declares an item key space
(``Domain.id_space``; ``@ids=SPACE`` on the command line, or its format's default: Online
Retail's countries share stock codes, XMarket's markets share ASINs). Identity is never guessed
from ids that happen to look alike: two catalogs match only when both are declared in the same
space.

:func:`build_identity` gives every (space, item id) of the sources one identity index, maps each
source catalog and (when given) the target's catalog onto it, and reports the overlap:

- a declared space in which a domain shares no item id with the others: ``PrerecError`` naming
  the domains (a wrong declaration, not a fact to learn from);
- partial overlap: one log line with the counts;
- identity asked for (``required=True``) where the domains declare no shared ids: ``PrerecError``
  with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prerec.data.domain import Domain
from prerec.data.prepared import PreparedDomain
from prerec.errors import PrerecError

log = logging.getLogger(__name__)
HOW_TO_DECLARE = "declare it with @ids=SPACE on the domain's spec if its item ids are the same items as theirs"


@dataclass(frozen=True)
class SpaceOverlap:
    """One key space over the sources: its domains, distinct ids, and ids in two or more sources."""

    space: str
    sources: list[str]
    items: int
    shared: int
    shared_per_source: dict[str, int]  # per source: its ids that occur in another source of the space


@dataclass(frozen=True)
class TargetOverlap:
    """How much of the target's catalog (and log) the sources' vocabulary covers."""

    target: str
    space: str | None
    items: int
    matched: int
    interactions: int
    matched_interactions: int

    def line(self) -> str:
        if self.space is None:
            return f"identity: target {self.target} declares no item key space: its {self.items:,} item(s) are text only"
        pct = 100.0 * self.matched / max(self.items, 1)
        ipct = 100.0 * self.matched_interactions / max(self.interactions, 1)
        return (f"identity: target {self.target} ({self.space}): {self.matched:,} of {self.items:,} items "
                f"({pct:.1f}%) and {self.matched_interactions:,} of {self.interactions:,} interactions "
                f"({ipct:.1f}%) match a source item; {self.items - self.matched:,} item(s) are text only")


@dataclass(frozen=True)
class IdentityReport:
    spaces: list[SpaceOverlap]
    undeclared: list[str]  # sources that declare no key space (text only)
    target: TargetOverlap | None = None

    def lines(self) -> list[str]:
        out = [f"identity: key space {s.space}: {len(s.sources)} source(s), {s.items:,} item ids, "
               f"{s.shared:,} of them in two or more sources" for s in self.spaces]
        if self.undeclared:
            out.append(f"identity: sources without a shared key space (text only): {_names(self.undeclared)}")
        if self.target is not None:
            out.append(self.target.line())
        return out


@dataclass
class Identity:
    """The identity vocabulary: entry ``v`` is item ``item_ids[v]`` of key space ``spaces[v]``.

    ``maps[name][j]`` is the identity of item ``j`` of domain ``name``'s catalog, or -1 (an item
    of an undeclared domain, or a target item no source has). ``support[v]``: interactions
    with ``v`` over every user of every source (how much the sources' logs say about it).
    """

    spaces: np.ndarray  # (V,) object
    item_ids: np.ndarray  # (V,) object
    support: np.ndarray  # (V,) int64
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    report: IdentityReport | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def lookup(self, domain: Domain) -> np.ndarray:
        """Identity of each item of ``domain``'s catalog (-1: none), by its declared key space only."""
        out = np.full(domain.n_items, -1, dtype=np.int64)
        # a domain without a declared space only matches rows fine-tuning gave its own items
        space = domain.id_space if domain.id_space is not None else own_space(domain.name)
        rows = np.flatnonzero(self.spaces == space)
        if len(rows):
            found = pd.Index(self.item_ids[rows]).get_indexer(domain.item_ids)
            out[found >= 0] = rows[found[found >= 0]]
        return out


def own_space(name: str) -> str:
    """The key space of a domain's items that no other domain shares (fine-tuning's new rows)."""
    return f"domain:{name}"


def _names(names: Sequence[str], most: int = 8) -> str:
    """``a, b, c`` (at most ``most`` names, then how many more)."""
    names = list(names)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _domain(d: Domain | PreparedDomain) -> Domain:
    return d.domain if isinstance(d, PreparedDomain) else d


def _space_overlap(space: str, members: list[Domain]) -> SpaceOverlap:
    """Distinct and shared ids of one space; a member sharing nothing with the others is an error."""
    ids = [pd.Index(d.item_ids) for d in members]
    owners = pd.Series(np.concatenate([d.item_ids for d in members])).value_counts()
    in_several = owners.index[owners.to_numpy() > 1]
    shared = {d.name: int(ix.isin(in_several).sum()) for d, ix in zip(members, ids)}
    if len(members) > 1:
        alone = [n for n, k in shared.items() if k == 0]
        if alone:
            others = [d.name for d in members if d.name not in alone]
            raise PrerecError(
                f"key space {space!r}: {_names(alone)} share(s) no item id with the other domains declared in "
                f"it ({_names(others) or 'none'}); a shared key space needs shared ids (check the @ids "
                "declarations)")
    return SpaceOverlap(space, [d.name for d in members], len(owners), len(in_several), shared)


def _vocabulary(sources: list[Domain]) -> tuple[Identity, list[SpaceOverlap], list[str]]:
    """One identity per (space, id) over the declared sources, and each source's catalog map."""
    by_space: dict[str, list[Domain]] = {}
    undeclared = []
    for d in sources:
        if d.id_space is None:
            undeclared.append(d.name)
        else:
            by_space.setdefault(d.id_space, []).append(d)
    spaces, items, overlaps = [], [], []
    for space, members in sorted(by_space.items()):
        overlaps.append(_space_overlap(space, members))
        ids = np.sort(pd.unique(np.concatenate([d.item_ids for d in members])).astype(object))
        spaces.append(np.full(len(ids), space, dtype=object))
        items.append(ids)
    vocab = Identity(np.concatenate(spaces) if spaces else np.empty(0, dtype=object),
                     np.concatenate(items) if items else np.empty(0, dtype=object),
                     np.zeros(sum(len(i) for i in items), dtype=np.int64))
    for d in sources:
        m = vocab.lookup(d)
        vocab.maps[d.name] = m
        seq_items = m[d.sequences.items]
        vocab.support += np.bincount(seq_items[seq_items >= 0], minlength=len(vocab))
    return vocab, overlaps, undeclared


def match_target(vocab: Identity, target: Domain | PreparedDomain, *, required: bool = False) -> TargetOverlap:
    """Map a target's catalog onto the vocabulary by its declared space (``vocab.maps[name]``),
    with the errors of the module docstring; returns the overlap (also logged)."""
    target = _domain(target)
    overlaps = vocab.report.spaces if vocab.report is not None else []
    space = target.id_space
    declared = sorted({s.space for s in overlaps})
    if space is None and required:
        raise PrerecError(f"identity: target {target.name!r} declares no shared item key space (its reader "
                          f"declares none; the sources' spaces: {', '.join(declared) or 'none'}); {HOW_TO_DECLARE}")
    members = next((s.sources for s in overlaps if s.space == space), [])
    if space is not None and not members:
        msg = (f"identity: no source declares target {target.name!r}'s key space {space!r} (the sources' spaces: "
               f"{', '.join(declared) or 'none'})")
        if required:
            raise PrerecError(msg)
        log.warning("%s; its items are text only", msg)
    m = vocab.lookup(target)
    vocab.maps[target.name] = m
    counts = np.bincount(target.sequences.items, minlength=target.n_items)
    found = m >= 0
    overlap = TargetOverlap(target.name, space, target.n_items, int(found.sum()), int(counts.sum()),
                            int(counts[found].sum()))
    if members and overlap.matched == 0:
        raise PrerecError(f"key space {space!r}: target {target.name!r} shares no item id with the sources declared "
                          f"in it ({_names(members)}); a shared key space needs shared ids (check the @ids "
                          "declarations)")
    log.info("%s", overlap.line())
    return overlap


def build_identity(sources: Sequence[Domain | PreparedDomain], target: Domain | PreparedDomain | None = None,
                   *, required: bool = False) -> Identity:
    """The identity vocabulary over ``sources``, with ``target`` matched to it, and the overlap
    report (also logged, a line per key space and one for the target).

    ``required``: identity is switched on, so domains without declared shared ids are an error
    (no source declares a space; the target declares none, or one no source has)."""
    domains = [_domain(s) for s in sources]
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise PrerecError(f"identity: source names must be unique: {_names(names)}")
    vocab, overlaps, undeclared = _vocabulary(domains)
    if required and not overlaps:
        raise PrerecError(f"identity: no source domain declares a shared item key space ({_names(names)}); "
                          f"their item ids are per domain, so no item is known across them; {HOW_TO_DECLARE}")
    vocab.report = IdentityReport(overlaps, undeclared)
    for line in vocab.report.lines():
        log.info("%s", line)
    if target is not None:
        if _domain(target).name in names:
            raise PrerecError(f"identity: target {_domain(target).name!r} is also a source")
        vocab.report = IdentityReport(overlaps, undeclared, match_target(vocab, target, required=required))
    return vocab
