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
