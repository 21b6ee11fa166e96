#!/usr/bin/env bash
# How results/B2 was produced (2-core CPU, one torch thread per process, two processes at once,
# other jobs beside them; code e2531b5, 2026-12-02): the packaged b2.toml (the repeat mixture on,
# popularity-repeat among the rows) without SASRec from scratch (b2-prerec.toml), one fold per
# process: every zero-shot row over training seeds 2023-2025, PreRec fine-tuned with [finetune]
# variants and PreRec's incremental curve. SASRec from scratch (row and curve) does not depend on
# pre-training: it is merged from the run before the mixture (../archive/B2-paper-score, whose
# README says where each of its pieces came from); the merge checks the test instances row by row.
# (That first run's b2-prerec.toml had no taste_calibration key: the key did not exist yet.)
set -euo pipefail
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
D=../shared/data
prerec encode amazon_office=canonical:$D/amazon_office lastfm=canonical:$D/lastfm &  # fill the text cache once
prerec encode amazon_scientific=unisrec:$D/amazon_scientific \
  "online_retail_uk=online-retail:$D/online_retail/online_retail_2010_2011.parquet#United Kingdom"; wait
for f in amazon_scientific amazon_office lastfm online_retail_uk; do
  sed "s/^targets = .*/targets = [\"$f\"]/" results/B2/b2-prerec.toml > /tmp/b2-$f.toml
done
( for f in online_retail_uk amazon_scientific; do
    prerec experiment /tmp/b2-$f.toml --data $D --out /tmp/out-$f --runs-dir /tmp/b2-runs; done ) &
( for f in lastfm amazon_office; do
    prerec experiment /tmp/b2-$f.toml --data $D --out /tmp/out-$f --runs-dir /tmp/b2-runs; done ) &
wait
# Taste calibration (code c6dd6df, taste_calibration = 0.5 in b2-prerec.toml, as in b2.toml): the
# Office and Last.fm folds again, one process each (logs log-taste-<fold>.txt); the Scientific and
# UK folds above are unchanged by it (every weight 1: ../taste-calibration/README.md) and kept.
for f in amazon_office lastfm; do
  sed "s/^targets = .*/targets = [\"$f\"]/" results/B2/b2-prerec.toml > /tmp/b2t-$f.toml
  prerec experiment /tmp/b2t-$f.toml --data $D --out /tmp/outt-$f --runs-dir /tmp/b2t-runs &
done; wait
python benchmarks/merge_results.py --name B2 results/B2 results/archive/B2-paper-score:sasrec-scratch \
  /tmp/out-amazon_scientific /tmp/outt-amazon_office /tmp/outt-lastfm /tmp/out-online_retail_uk
