#!/usr/bin/env bash
# How results/B2 was produced on the 2-core CPU (commit 93e3a3b's code; the configs are b2.toml
# with the model lists split so that the two parts ran side by side, one thread each).
set -euo pipefail
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
prerec experiment results/B2/part1-prerec.toml --data ../shared/data --out /tmp/b2-prerec --runs-dir /tmp/b2main/runs &
prerec experiment results/B2/part2-sasrec.toml --data ../shared/data --out /tmp/b2-sasrec --runs-dir /tmp/b2main/runs &
wait
# SASRec from scratch on every training instance of each target (the main table's figure and
# N = all of its curve) comes from the earlier H200 run (same split, same test instances: the
# merge checks every row); on this CPU it would have taken several hours.
python benchmarks/merge_results.py results/B2 /tmp/b2-prerec /tmp/b2-sasrec \
    "results/archive/B2-cpu-preset-h200:sasrec-scratch"
