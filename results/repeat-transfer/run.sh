#!/usr/bin/env bash
# How results/repeat-transfer and results/repeat-prior were produced (2-core CPU, one torch thread
# per process, two processes at a time; src/ at 173b769). benchmarks/factor_transfer.py runs the
# packaged B1 and B2 with only the zero-shot prerec row and the named training keys swapped in
# ("SET+key=value"); each step skips the benchmark runs already complete in the work folder.
set -euo pipefail
W=${1:-/tmp/repeat-transfer}
export OMP_NUM_THREADS=1 PYTHONPATH=src
# phase 1, training seed 2023: the paper's score, the repeat mixture with three factor sets, and
# the mixture with repeat targets left out of training (B1 ~0.6 min, B2 3-5 min per set and seed)
python benchmarks/factor_transfer.py run --work "$W" --benchmarks b2,b1 --seeds 2023 \
  --sets "paper,paper+repeat_mixture=true,paper+repeat_mixture=true+train_repeats=false,log+repeat_mixture=true,l2+repeat_mixture=true"
# phase 2: the best two on held-out sources (l2 and paper with the mixture) and the paper's, two more seeds
python benchmarks/factor_transfer.py run --work "$W" --benchmarks b2,b1 --seeds 2024,2025 \
  --sets "paper,paper+repeat_mixture=true,l2+repeat_mixture=true"
python benchmarks/factor_transfer.py report --work "$W" --out results/repeat-transfer
# the mixture's prior on B1's held-out countries (every user of EIRE and the Netherlands; the run of phase 1)
python benchmarks/repeat_prior.py "$W/b1/paper+repeat_mixture=true/seed2023/runs/all-prerec" online-retail:embedded \
  --domains EIRE,Netherlands --out results/repeat-prior
# a diagnostic on the B2 targets' test users, read after the choice: popularity with the same mixture
python benchmarks/popularity_repeat.py lastfm=canonical:../shared/data/lastfm \
  "online_retail_uk=online-retail:../shared/data/online_retail/online_retail_2010_2011.parquet#United Kingdom" \
  amazon_office=canonical:../shared/data/amazon_office amazon_scientific=unisrec:../shared/data/amazon_scientific \
  > results/repeat-transfer/popularity-repeat.txt
# the switch on results/B2's seed-2023 runs (trained without the mixture), test users
for t in "amazon_scientific=unisrec:../shared/data/amazon_scientific" "amazon_office=canonical:../shared/data/amazon_office" \
         "lastfm=canonical:../shared/data/lastfm" \
         "online_retail_uk=online-retail:../shared/data/online_retail/online_retail_2010_2011.parquet#United Kingdom"; do
  prerec evaluate --run "B2_RUNS/${t%%=*}-prerec" --target "$t" --repeat-mixture on --json "/tmp/switch-${t%%=*}.json"
done
