#!/usr/bin/env bash
# How results/B2 was produced on the 2-core CPU (one torch thread per process, up to three at once).
# Part 1 (code 15954c5): b2.toml without SASRec from scratch (every zero-shot PreRec row over 3
# training seeds), one torch thread; 54.5 min. Its fine-tuning rows and curve were replaced by part 3.
# Part 2: SASRec from scratch, from the earlier run of the same split (code 93e3a3b; its N = all
# figure from the H200 run in results/archive), kept in part2-sasrec.toml / log-part-sasrec.txt.
# Parts 1 + 2 were merged first (commit 5fec985's results/B2, here /tmp/b2-12).
# Part 3 (code 3d7dbd0, 42 min): PreRec fine-tuned and PreRec's curve again, reusing part 1's
# pre-trained runs (seed 2023): fine-tuning now starts a transition head from the target's own log.
# Part 4: SASRec from scratch at N = 10,000: a (code 37d0484) stopped after Scientific and Office;
# b (code 3d7dbd0, 48 min) ran Last.fm and Online Retail UK.
set -euo pipefail
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
prerec experiment results/B2/part1-prerec.toml --data ../shared/data --out /tmp/b2 --runs-dir /tmp/b2-runs
prerec experiment results/B2/part3-finetune.toml --data ../shared/data --out /tmp/b2ft --runs-dir /tmp/b2-runs
prerec experiment results/B2/part4-sasrec-10000-a.toml --data ../shared/data --out /tmp/b2s10k-a  # stopped after 2 folds
prerec experiment results/B2/part4-sasrec-10000-b.toml --data ../shared/data --out /tmp/b2s10k-b
python benchmarks/merge_results.py --name B2 results/B2 \
  "/tmp/b2-12:popularity,text,text-last,prerec/table,prerec-mc,prerec-no-domain,prerec-no-pop,zesrec,sasrec-scratch,markov,sasrec-sources" \
  "/tmp/b2ft:prerec-finetuned,prerec/curve" "/tmp/b2s10k-a:sasrec-scratch/curve" "/tmp/b2s10k-b:sasrec-scratch/curve"
