#!/usr/bin/env bash
# Query time of each active-learning strategy on a pool of 10,000 short texts: `ulmfit suggest
# --k 25` with a TREC-6 classifier, one core (taskset), wall time and peak memory per strategy.
# The pool is TREC-6's 5,452 training questions, twice, cut at 10,000 (for timing only).
#
# Usage: bench/active_query_time.sh MODEL_DIR [TREC_TRAIN_TSV_GZ]
#   MODEL_DIR: a classifier (a run's model/), e.g. from
#     build/ulmfit --config configs/trec_small.yaml --stage classify --set task.max_train_examples=250
# Prints a Markdown table; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { sed -n 2,9p "$0" >&2; exit 2; }
model=$1
train=${2:-../shared/data/trec/train.tsv.gz}
bin=${ULMFIT:-build/ulmfit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$train" | cut -f2 >"$work/once.txt"
cat "$work/once.txt" "$work/once.txt" | head -10000 >"$work/pool.txt"
echo "| strategy | seconds | peak memory (MB) |"
echo "|---|---|---|"
for strategy in random least_confidence margin entropy diverse bald badge kmeans; do
  /usr/bin/time -f "%e %M" -o "$work/time" taskset -c 0 "$bin" suggest --model "$model" \
    --pool "$work/pool.txt" --k 25 --strategy "$strategy" --seed 1 >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  read -r seconds kb <"$work/time"
  echo "| $strategy | $seconds | $(( kb / 1024 )) |"
done
