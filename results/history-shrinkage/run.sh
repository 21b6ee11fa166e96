#!/usr/bin/env bash
# How results/history-shrinkage was produced (2-core CPU, one torch thread per process, beside the
# B2 re-run; src/ at 2f209dc). The packaged B1 and B2 (repeat mixture on) with only the zero-shot
# prerec row, history_shrinkage swapped in; "paper" is the packaged setting itself.
set -euo pipefail
W=${1:-/tmp/history-shrinkage}
export OMP_NUM_THREADS=1 PYTHONPATH=src
python benchmarks/factor_transfer.py run --work "$W" --seeds 2023 \
  --sets "paper+history_shrinkage=3,paper+history_shrinkage=10,paper" --data ../shared/data
python benchmarks/factor_transfer.py report --work "$W" --out results/history-shrinkage \
  --sets "paper,paper+history_shrinkage=3,paper+history_shrinkage=10" --seeds 2023
# the probe that motivated it: Last.fm's and Online Retail UK's validation users, after the fact,
# on the seed-2023 B2 runs of results/B2 (the fold's run of each target; its three sources after it)
D=../shared/data
python benchmarks/probes/history_length.py RUNS/lastfm-prerec lastfm=canonical:$D/lastfm \
  amazon_scientific=unisrec:$D/amazon_scientific amazon_office=canonical:$D/amazon_office \
  "online_retail_uk=online-retail:$D/online_retail/online_retail_2010_2011.parquet#United Kingdom"
python benchmarks/probes/history_length.py RUNS/online_retail_uk-prerec \
  "online_retail_uk=online-retail:$D/online_retail/online_retail_2010_2011.parquet#United Kingdom" \
  amazon_scientific=unisrec:$D/amazon_scientific amazon_office=canonical:$D/amazon_office lastfm=canonical:$D/lastfm
