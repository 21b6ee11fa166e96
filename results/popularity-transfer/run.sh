#!/usr/bin/env bash
# How results/popularity-transfer was produced (2-core CPU shared with other jobs, one thread;
# src/ at 29aeca3, the driver as in 3772dac). Each step skips the benchmark runs already complete in the work folder.
set -euo pipefail
W=${1:-/tmp/factor-transfer}
export OMP_NUM_THREADS=1 PYTHONPATH=src
# phase 1: every factor set, training seed 2023 (B1 and the four B2 folds), and the training-free rows
python benchmarks/factor_transfer.py run --work "$W" --seeds 2023
# phase 2: the paper's set and the best two others on held-out sources (log, l2), two more seeds
python benchmarks/factor_transfer.py run --work "$W" --seeds 2024,2025 --sets paper,log,l2
python benchmarks/factor_transfer.py report --work "$W" --out results/popularity-transfer
