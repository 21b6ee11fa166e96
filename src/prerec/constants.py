"""Constants of the method and of the house, each defined once and imported where used.

The values are the paper's where it has one (docs/method.md): the user split seed, the history
length the user tower sees, the popularity window.
"""

from __future__ import annotations

import os

SPLIT_SEED = 2023  # the user split of every benchmark (40/30/30), and the default training seed
MAX_HISTORY = 64  # items of a history the user tower sees (the most recent ones)
WINDOW_DAYS = 15  # days of log behind each popularity factor
N_FACTORS = 4  # popularity factors per (day, item): power means p = 1..4
DEFAULT_FACTORS = "paper"  # the popularity factor set (prerec.popularity_factors): the paper's four
PAD = -1  # padding in left-aligned history matrices
MC_SEED = 2023  # the draws of D in the Monte Carlo mode (fixed: the same draws for every request)

# OpenMP threads that spin while waiting make torch (and the e5 encoder) many times slower on a
# busy 2-core machine (measured: 214 vs 2,957 training instances/s). Read by libgomp when it
# loads, so set before torch is imported; a user's own setting wins.
THREAD_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_thread_environment() -> None:
    """Apply :data:`THREAD_ENVIRONMENT` (without overriding what the user set)."""
    for key, value in THREAD_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
