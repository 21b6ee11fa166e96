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

from prerec.data.domain import Domain
from prerec.data.readers import (  # the format modules register themselves on import
    canonical,
    movielens,
    online_retail,
    recbole,
    unisrec,
    xmarket,
    xmarket_5core,
)
from prerec.data.readers.spec import ID_SPACES, READERS, DomainSpec, parse_spec, reader
from prerec.errors import PrerecError


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
