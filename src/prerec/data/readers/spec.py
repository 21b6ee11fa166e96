"""A domain specification ``NAME=FORMAT:PATH[#SELECTOR]`` and the registry of readers by format."""

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
