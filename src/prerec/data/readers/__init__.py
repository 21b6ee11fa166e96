"""Readers, one module per on-disk format, selected by the FORMAT of ``NAME=FORMAT:PATH``.

A domain on the command line is ``NAME=FORMAT:PATH[#SELECTOR][@ids=SPACE]``:

- ``Germany=online-retail:data.parquet#Germany`` (the selector picks one country),
- ``sci=unisrec:/data/amazon_scientific``, ``office=canonical:/data/amazon_office``,
- ``es=recbole:/data/es.inter@ids=xmarket:asin`` (its item ids are XMarket's ASINs).

``NAME=`` may be left out; a reader that yields several domains from one path (Online Retail
without a selector: one domain per country) names them itself.

``@ids=SPACE`` declares the item key space: domains declared in the same space share item ids
(the same id is the same item). A reader declares its format's space by default where ids are
truly shared (``online-retail``: ``online-retail:stockcode``; ``xmarket``, ``xmarket-5core``:
``xmarket:asin``); the others declare none. ``@ids=none`` removes a default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prerec.data.domain import Domain
from prerec.errors import PrerecError


@dataclass(frozen=True)
class DomainSpec:
    """A parsed ``NAME=FORMAT:PATH[#SELECTOR]``."""

    name: str | None
    format: str
    path: str
    selector: str | None
    text: str  # the spec as given, for messages
    ids: str | None = None  # the @ids=SPACE suffix as given ("none" removes the default); None: not given

    def id_space(self) -> str | None:
        """The declared item key space: the ``@ids=`` suffix, else the format's default."""
        if self.ids is None:
            return ID_SPACES.get(self.format)
        return None if self.ids == NO_SPACE else self.ids

    def for_domain(self, name: str) -> str:
        """The spec of one of the domains this spec yields, by name (``NAME=FORMAT:PATH#NAME``),
        keeping an ``@ids=`` suffix."""
        return f"{name}={self.format}:{self.path}#{name}" + (f"@ids={self.ids}" if self.ids is not None else "")

    def existing_path(self) -> Path:
        """The path, which must exist; otherwise a clear error."""
        p = Path(self.path).expanduser()
        if not p.exists():
            raise PrerecError(f"{self.text}: no such file or directory: {self.path}")
        return p


Reader = Callable[[DomainSpec], list[Domain]]
READERS: dict[str, Reader] = {}
ID_SPACES: dict[str, str] = {}  # format -> the item key space its domains declare by default
NO_SPACE = "none"
_SPEC = re.compile(r"^(?:(?P<name>[^=:#]+)=)?(?P<format>[A-Za-z0-9_-]+):(?P<rest>.*)$")
_IDS = re.compile(r"^(?P<rest>.*)@ids=(?P<ids>[^@#]*)$")
_SPACE = re.compile(r"^[A-Za-z0-9_.:-]+$")


def reader(fmt: str, id_space: str | None = None) -> Callable[[Reader], Reader]:
    """Register a reader function under a format name, with the item key space its domains
    declare by default (only where ids are truly shared across its domains)."""

    def register(fn: Reader) -> Reader:
        READERS[fmt] = fn
        if id_space is not None:
            ID_SPACES[fmt] = id_space
        return fn

    return register


def parse_spec(text: str) -> DomainSpec:
    """Parse ``NAME=FORMAT:PATH[#SELECTOR][@ids=SPACE]``; a malformed spec, unknown format or
    malformed key space is a clear error."""
    m = _SPEC.match(text.strip())
    if not m:
        raise PrerecError(
            f"cannot parse domain {text!r}: expected NAME=FORMAT:PATH, e.g. "
            "Germany=online-retail:data.parquet#Germany"
        )
    fmt = m["format"]
    if fmt not in READERS:
        raise PrerecError(f"{text}: unknown format {fmt!r}; known formats: {', '.join(sorted(READERS))}")
    rest, ids = m["rest"], None
    found = _IDS.match(rest)
    if found:
        rest, ids = found["rest"], found["ids"]
        if not _SPACE.match(ids):
            raise PrerecError(f"{text}: @ids={ids!r}: a key space is a name of letters, digits and . _ : - "
                              f"(e.g. @ids=xmarket:asin), or @ids={NO_SPACE}")
    path, _, selector = rest.partition("#")
    return DomainSpec(m["name"], fmt, path, selector or None, text, ids)


def load_domains(specs: list[str] | tuple[str, ...]) -> list[Domain]:
    """Read every spec; domain names must be unique across the list."""
    domains: list[Domain] = []
    for text in specs:
        spec = parse_spec(text)
        found = READERS[spec.format](spec)
        if spec.name and len(found) == 1:
            found[0].name = spec.name
        for d in found:
            d.id_space = spec.id_space()
        domains.extend(found)
    names = [d.name for d in domains]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PrerecError(f"domain names must be unique; repeated: {', '.join(dupes)}")
    return domains


def load_domain(text: str) -> Domain:
    """Read a spec that must name exactly one domain."""
    found = load_domains([text])
    if len(found) != 1:
        raise PrerecError(f"{text}: expected one domain, found {len(found)} (add a #selector)")
    return found[0]


# the format modules register themselves on import
from prerec.data.readers import (  # noqa: E402
    canonical,
    movielens,
    online_retail,
    recbole,
    unisrec,
    xmarket,
    xmarket_5core,
)

__all__ = [
    "ID_SPACES",
    "READERS",
    "DomainSpec",
    "canonical",
    "load_domain",
    "load_domains",
    "movielens",
    "online_retail",
    "parse_spec",
    "reader",
    "recbole",
    "unisrec",
    "xmarket",
    "xmarket_5core",
]
