"""Suite-wide fixtures: torch threads, and an embedding cache that never touches ~/.cache."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see prerec.cli)

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_embedding_cache(tmp_path_factory):
    """Tests write their embedding cache to a temporary folder, never the user's cache."""
    old = os.environ.get("PREREC_CACHE_DIR")
    os.environ["PREREC_CACHE_DIR"] = str(tmp_path_factory.mktemp("prerec-cache"))
    yield
    if old is None:
        os.environ.pop("PREREC_CACHE_DIR", None)
    else:
        os.environ["PREREC_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep torch to the machine's two cores."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
