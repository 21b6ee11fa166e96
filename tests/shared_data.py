"""Where the open data lives (../shared/data, read in place, never copied into the repo).

A uniquely named module (not conftest) so that tests in every folder import the same thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PREREC_SHARED_DATA", ROOT.parent / "shared" / "data"))
ONLINE_RETAIL = SHARED_DATA / "online_retail" / "online_retail_2010_2011.parquet"


def shared(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped (with the reason) where it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"open data not found at {p}")
    return p
