"""Readers, one module per on-disk format, selected by the FORMAT of ``NAME=FORMAT:PATH``.

A domain on the command line is ``NAME=FORMAT:PATH[#SELECTOR]``:

- ``Germany=online-retail:data.parquet#Germany`` (the selector picks one country),
- ``sci=unisrec:/data/amazon_scientific``, ``office=canonical:/data/amazon_office``.

``NAME=`` may be left out; a reader that yields several domains from one path (Online Retail
without a selector: one domain per country) names them itself.
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

    def existing_path(self) -> Path:
        """The path, which must exist; otherwise a clear error."""
        p = Path(self.path).expanduser()
        if not p.exists():
            raise PrerecError(f"{self.text}: no such file or directory: {self.path}")
        return p


Reader = Callable[[DomainSpec], list[Domain]]
READERS: dict[str, Reader] = {}
_SPEC = re.compile(r"^(?:(?P<name>[^=:#]+)=)?(?P<format>[A-Za-z0-9_-]+):(?P<rest>.*)$")


def reader(fmt: str) -> Callable[[Reader], Reader]:
    """Register a reader function under a format name."""

    def register(fn: Reader) -> Reader:
        READERS[fmt] = fn
        return fn

    return register


def parse_spec(text: str) -> DomainSpec:
    """Parse ``NAME=FORMAT:PATH[#SELECTOR]``; a malformed spec or unknown format is a clear error."""
    m = _SPEC.match(text.strip())
    if not m:
        raise PrerecError(
            f"cannot parse domain {text!r}: expected NAME=FORMAT:PATH, e.g. "
            "Germany=online-retail:data.parquet#Germany"
        )
    fmt = m["format"]
    if fmt not in READERS:
        raise PrerecError(f"{text}: unknown format {fmt!r}; known formats: {', '.join(sorted(READERS))}")
    rest = m["rest"]
    path, _, selector = rest.partition("#")
    return DomainSpec(m["name"], fmt, path, selector or None, text)


def load_domains(specs: list[str] | tuple[str, ...]) -> list[Domain]:
    """Read every spec; domain names must be unique across the list."""
    domains: list[Domain] = []
    for text in specs:
        spec = parse_spec(text)
        found = READERS[spec.format](spec)
        if spec.name and len(found) == 1:
            found[0].name = spec.name
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
