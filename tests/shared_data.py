"""Where the open data lives (../shared/data, read in place, never copied into the repo), and
small helpers every test folder uses.

A uniquely named module (not conftest) so that tests in every folder import the same thing.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from prerec.data.domain import Domain, build_domain

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PREREC_SHARED_DATA", ROOT.parent / "shared" / "data"))
ONLINE_RETAIL = SHARED_DATA / "online_retail" / "online_retail_2010_2011.parquet"


def shared(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped (with the reason) where it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"open data not found at {p}")
    return p


def first_users(domain: Domain, n_users: int, name: str | None = None) -> Domain:
    """The domain restricted to its first ``n_users`` users (catalog = their items, same key space)."""
    df = domain.interactions
    sub = df[df["user_id"].isin(df["user_id"].drop_duplicates().iloc[:n_users])]
    out = build_domain(name or domain.name, sub, domain.texts.rename_axis("item_id").reset_index(),
                       source=domain.source)
    out.id_space = domain.id_space  # a part of a domain keeps its item key space
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
