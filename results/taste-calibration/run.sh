#!/usr/bin/env bash
# How results/taste-calibration was produced (2-core CPU, one torch thread per process, two at once;
# src/ at a1794a1 for the runs; the packaged B1 and B2 with the repeat mixture, only the zero-shot
# prerec row, taste_calibration swapped in; "paper" is the packaged setting before the key, tau = 0).
set -euo pipefail
W=${1:-/tmp/taste-calibration}
export OMP_NUM_THREADS=1 PYTHONPATH=src
D=../shared/data
# the held-out choice, every tau at the first training seed, then the two kept and "paper" at two more
python benchmarks/factor_transfer.py run --work "$W" --seeds 2023 --data $D \
  --sets "paper,paper+taste_calibration=0.5,paper+taste_calibration=0.65,paper+taste_calibration=0.8"
python benchmarks/factor_transfer.py run --work "$W" --seeds 2024,2025 --data $D \
  --sets "paper,paper+taste_calibration=0.5,paper+taste_calibration=0.65"
python benchmarks/factor_transfer.py report --work "$W" --out results/taste-calibration --seeds 2023,2024,2025 \
  --sets "paper,paper+taste_calibration=0.5,paper+taste_calibration=0.65,paper+taste_calibration=0.8"
# the tie-break: the same runs on the targets' validation users (only the Office and Last.fm folds
# differ between the settings; Scientific's and United Kingdom's runs are identical, weight 1)
for f in lastfm amazon_office; do
  python benchmarks/probes/taste_validation.py "$W" results/taste-calibration $D $f \
    paper "paper+taste_calibration=0.5" "paper+taste_calibration=0.65"
done
# each domain's signal and the weight a run gives it (here the B2 Last.fm fold's seed-2023 run)
prerec data taste lastfm=canonical:$D/lastfm amazon_office=canonical:$D/amazon_office \
  amazon_scientific=unisrec:$D/amazon_scientific \
  "online_retail_uk=online-retail:$D/online_retail/online_retail_2010_2011.parquet#United Kingdom" \
  --run "$W/b2/paper+taste_calibration=0.5/seed2023/runs/lastfm-prerec"
