"""Shared fixtures: where the open data lives (../shared/data, read in place, never copied)."""

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


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep torch to the machine's two cores and deterministic per test."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
