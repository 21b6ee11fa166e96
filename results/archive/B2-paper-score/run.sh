#!/usr/bin/env bash
# How results/B2 was produced on the 2-core CPU (one torch thread per process, up to three at once).
# Part 1 (code 15954c5): b2.toml without SASRec from scratch (every zero-shot PreRec row over 3
# training seeds), one torch thread; 54.5 min. Its fine-tuning rows and curve were replaced by part 3.
# Part 2: SASRec from scratch, from the earlier run of the same split (code 93e3a3b; its N = all
# figure from the H200 run in results/archive), kept in part2-sasrec.toml / log-part-sasrec.txt.
# Parts 1 + 2 were merged first (commit 5fec985's results/B2, here /tmp/b2-12).
# Part 3 (code 3d7dbd0, 42 min): PreRec fine-tuned and PreRec's curve with a transition head from
# the target's own log; superseded by part 5 (its files are in git history before this commit).
# Part 4: SASRec from scratch at N = 10,000: a (code 37d0484) stopped after Scientific and Office;
# b (code 3d7dbd0, 48 min) ran Last.fm and Online Retail UK.
# Part 6 (code d4ecb52): part6-finetune-seed2024.toml, prerec-finetuned at N = all with a second
# fine-tuning seed (2024), one fold per process as part 5, merged beside part 1's popularity and
# SASRec rows into finetune-seed2024/ (table.md, results.json; the per-instance file left out).
# The two-seed figure in README.md is the mean and sd of the two tables' mean rows.
# Part 5 (code e5ab2e5, 2026-12-02): PreRec fine-tuned and PreRec's curve with [finetune] variants
# (the defaults, and a weak identity prior with 4,095 negatives), chosen per target and N on its
# validation users; one fold per process, two at a time (part5-finetune-variants.toml with
# `targets` set to one fold). The pre-trained seed-2023 runs were trained again first (the earlier
# ones were lost with a machine): the same config with models = ["prerec"] and no curve, two folds
# per process (7.4 and 10.0 min); their zero-shot figures equal part 1's to the fourth decimal.
# Per fold: Scientific 25 min, Office 20, Last.fm 42, UK 45. The merge's first part is results/B2
# as of commit 85fdff6 (parts 1, 2 and 4), taken as it stood.
set -euo pipefail
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
prerec experiment results/B2/part1-prerec.toml --data ../shared/data --out /tmp/b2 --runs-dir /tmp/b2-runs
for f in amazon_scientific amazon_office lastfm online_retail_uk; do
  sed "s/^targets = .*/targets = [\"$f\"]/" results/B2/part5-finetune-variants.toml > /tmp/ft-$f.toml
  prerec experiment /tmp/ft-$f.toml --data ../shared/data --out /tmp/ft-$f --runs-dir /tmp/b2-runs
done
prerec experiment results/B2/part4-sasrec-10000-a.toml --data ../shared/data --out /tmp/b2s10k-a  # stopped after 2 folds
prerec experiment results/B2/part4-sasrec-10000-b.toml --data ../shared/data --out /tmp/b2s10k-b
python benchmarks/merge_results.py --name B2 /tmp/b2-85fdff6 \
  "/tmp/b2-12:popularity,text,text-last,prerec/table,prerec-mc,prerec-no-domain,prerec-no-pop,zesrec,sasrec-scratch,markov,sasrec-sources" \
  "/tmp/b2ft:prerec-finetuned,prerec/curve" "/tmp/b2s10k-a:sasrec-scratch/curve" "/tmp/b2s10k-b:sasrec-scratch/curve"
python benchmarks/merge_results.py --name B2 results/B2 \
  "/tmp/b2-85fdff6:popularity,text,text-last,prerec/table,prerec-mc,prerec-no-domain,prerec-no-pop,zesrec,sasrec-scratch,markov,sasrec-sources" \
  /tmp/ft-amazon_scientific:prerec-finetuned,prerec/curve /tmp/ft-amazon_office:prerec-finetuned,prerec/curve \
  /tmp/ft-lastfm:prerec-finetuned,prerec/curve /tmp/ft-online_retail_uk:prerec-finetuned,prerec/curve
for f in amazon_scientific amazon_office lastfm online_retail_uk; do
  sed "s/^targets = .*/targets = [\"$f\"]/" results/B2/part6-finetune-seed2024.toml > /tmp/s24-$f.toml
  prerec experiment /tmp/s24-$f.toml --data ../shared/data --out /tmp/s24-$f --runs-dir /tmp/b2-runs
done
python benchmarks/merge_results.py --name B2-finetune-seed2024 /tmp/b2-s24 results/B2:popularity,sasrec-scratch/table \
  /tmp/s24-amazon_scientific:prerec-finetuned /tmp/s24-amazon_office:prerec-finetuned \
  /tmp/s24-lastfm:prerec-finetuned /tmp/s24-online_retail_uk:prerec-finetuned
cp /tmp/b2-s24/table.md /tmp/b2-s24/results.json results/B2/finetune-seed2024/
