#!/usr/bin/env bash
# How results/popularity-share was produced (2-core CPU, one thread): pre-training with the
# settings of `prerec experiment b1|b2` ([pretrain] of src/prerec/configs/experiments/b1.toml,
# b2.toml: the transfer preset, the epoch chosen zero-shot on held-out sources, B2 refitted on all
# three sources), then benchmarks/popularity_share.py on every test instance of each target.
# Usage: results/popularity-share/run.sh [RUNS_DIR]   (from the repository root; DATA=../shared/data)
# A finished run in RUNS_DIR is reused (--resume).
set -euo pipefail
RUNS=${1:-/tmp/popshare-runs}
D=${DATA:-../shared/data}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
PY=${PYTHON:-python}
prerec() { "$PY" -c "from prerec.cli import main; raise SystemExit(main())" "$@"; }
PRE=(--preset transfer)
B1T=(Germany France Spain Belgium Switzerland Portugal)

prerec pretrain --resume --source "online-retail:embedded#!$(IFS=,; echo "${B1T[*]}")" \
    --out "$RUNS/b1" "${PRE[@]}" --set select_on=EIRE,Netherlands
args=()
for c in "${B1T[@]}"; do args+=(--target "$c=online-retail:embedded#$c"); done
"$PY" benchmarks/popularity_share.py --run "$RUNS/b1" "${args[@]}" --out results/popularity-share/B1

declare -A SPEC=(
  [amazon_scientific]="amazon_scientific=unisrec:$D/amazon_scientific"
  [amazon_office]="amazon_office=canonical:$D/amazon_office"
  [lastfm]="lastfm=canonical:$D/lastfm"
  [online_retail_uk]="online_retail_uk=online-retail:$D/online_retail/online_retail_2010_2011.parquet#United Kingdom"
)
B2T=(amazon_scientific amazon_office lastfm online_retail_uk)
args=()
for t in "${B2T[@]}"; do
  src=()
  for s in "${B2T[@]}"; do [ "$s" = "$t" ] || src+=(--source "${SPEC[$s]}"); done
  sel=amazon_office; [ "$t" = amazon_office ] && sel=lastfm  # b2.toml: select_from office, then Last.fm
  prerec pretrain --resume "${src[@]}" --out "$RUNS/$t" "${PRE[@]}" \
      --set refit=true --set select_on=$sel
  args+=(--run "$RUNS/$t" --target "${SPEC[$t]}")
done
"$PY" benchmarks/popularity_share.py "${args[@]}" --out results/popularity-share/B2
