#!/usr/bin/env bash
# How results/B2 was produced on the 2-core CPU.
# Part 1 (code 15954c5): b2.toml without SASRec from scratch (every PreRec row over 3 training
# seeds, fine-tuning and PreRec's incremental curve), one torch thread; 54.5 min.
# Part 2: SASRec from scratch, from the earlier run of the same split (code 93e3a3b; its N = all
# figure from the H200 run in results/archive), kept in part2-sasrec.toml / log-part-sasrec.txt.
# SASRec from scratch at N = 10,000 was started (b2.toml, incremental = [10000]) and stopped for
# lack of time after two targets: Scientific .1494, Office .2443 Recall@1% (README).
set -euo pipefail
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
prerec experiment results/B2/part1-prerec.toml --data ../shared/data --out /tmp/b2 --runs-dir /tmp/b2-runs
cp -r results/B2 /tmp/b2-old
python benchmarks/merge_results.py --name B2 results/B2 /tmp/b2 /tmp/b2-old:sasrec-scratch
