"""Small real domains for the training tests (hash:64 text encoder, a few hundred users each).

Imported by the test modules of this folder (not a conftest, so its name is unique)."""

from __future__ import annotations

import pytest

from prerec.config import TrainConfig, train_config
from prerec.data import load_domains
from prerec.data.domain import Domain
from shared_data import first_users, shared


@pytest.fixture(scope="session")
def office() -> Domain:
    d = load_domains([f"office=canonical:{shared('amazon_office')}"])[0]
    return first_users(d, 300)


@pytest.fixture(scope="session")
def lastfm() -> Domain:
    d = load_domains([f"lastfm=canonical:{shared('lastfm')}"])[0]
    return first_users(d, 150)


@pytest.fixture(scope="session")
def markets() -> list[Domain]:
    """Four Online Retail countries (first 80 users each): they share stock codes (identity)."""
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    found = {d.name: d for d in load_domains([f"online-retail:{path}#Germany,France,Spain,Belgium"])}
    return [first_users(found[n], 80) for n in ("Germany", "France", "Spain", "Belgium")]


@pytest.fixture(scope="session")
def retail() -> list[Domain]:
    """Two small Online Retail markets with timestamps (popularity factors vary by day)."""
    path = shared("online_retail", "online_retail_2010_2011.parquet")
    found = {d.name: d for d in load_domains([f"online-retail:{path}"])}
    return [first_users(found["Germany"], 60), first_users(found["France"], 60)]


def tiny_config(**kw) -> TrainConfig:
    # the paper's score (no repeat mixture, no taste calibration): these tests check its parts against
    # references; the mixture and the calibration, library defaults, have their own
    # (tests/test_repeats.py, tests/serving/test_repeat_switch.py, tests/test_taste_calibration.py)
    base = dict(hidden_size=32, pop_hidden=32, n_negatives=31, batch_size=64, epochs=2, patience=3,
                encoder="hash:64", valid_max_instances=200, eval_batch_size=256, progress=False, device="cpu",
                repeat_mixture=False, taste_calibration=0.0)
    base.update(kw)
    return train_config(**base)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: the tests check numbers, not speed, and the machine is shared (with two
    threads on an oversubscribed machine every small op waits for a descheduled peer)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
