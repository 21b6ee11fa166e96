"""Fixtures of the serving tests (helpers live in serving_helpers.py, a unique module name)."""

from __future__ import annotations

import pytest
from serving_helpers import tiny_domain, tiny_model

from prerec.data.domain import Domain


@pytest.fixture
def domain() -> Domain:
    return tiny_domain()


@pytest.fixture
def model():
    return tiny_model()
