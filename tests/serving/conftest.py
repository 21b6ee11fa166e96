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


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of the test session (tests/serving/pg_server.py). Where it cannot
    start, the tests that need it fail in CI (``CI=true``) and are skipped, with the reason,
    elsewhere."""
    import os

    import pg_server

    try:
        server = pg_server.start()
    except (pg_server.Unavailable, ImportError) as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"PostgreSQL is needed in CI and cannot be started: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL cannot be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A fresh, empty store location of each kind: an SQLite path or a PostgreSQL database URL."""
    if request.param == "sqlite":
        return tmp_path / "events.sqlite"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run pre-trained for one epoch on two tiny domains (hash:64 text), for ``prerec serve``;
    without the repeat mixture (the switch's tests turn it on)."""
    from prerec.config import build_config
    from prerec.training.pretrain import pretrain

    out = tmp_path_factory.mktemp("run") / "run"
    cfg = build_config("cpu", sets=["epochs=1", "hidden_size=32", "pop_hidden=32", "encoder=hash:64",
                                    "progress=false", "repeat_mixture=false", "taste_calibration=0"])
    pretrain([tiny_domain("s1", seed=1), tiny_domain("s2", seed=2)], cfg, out)
    return out


@pytest.fixture(scope="session")
def target_dir(tmp_path_factory):
    """The tiny target domain as canonical Parquet files."""
    from serving_helpers import tiny_frames

    d = tmp_path_factory.mktemp("target")
    inter, texts = tiny_frames(seed=0)
    inter.to_parquet(d / "interactions.parquet")
    texts.to_parquet(d / "items.parquet")
    return d
