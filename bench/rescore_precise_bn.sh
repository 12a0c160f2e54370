#!/usr/bin/env bash
# Re-scores the rows of an experiment whose classifiers were trained before
# classifier.precise_bn_docs existed: sets each saved model's head BatchNorm statistics the way
# stage 3 now does (bench/precise_bn.cc, the same seeded sample of training documents), evaluates it
# again on the same test split and writes the rows to a new results directory. Training is the
# same with or without precise BN (tests/end_to_end/pipeline_test.cc checks the weights are identical), so
# these are the numbers the driver gives today, without training again.
#
# Usage: bench/rescore_precise_bn.sh RESULTS_DIR OUT_DIR WORK_DIR [WORK_DIR ...]
#   RESULTS_DIR  the experiment's results.csv is read from here
#   OUT_DIR      results.csv, results.md and chart.svg are written here; rows already in its
#                results.csv are not redone
#   WORK_DIR     where the runs are (runs/METHOD-SIZE-SEED, data/train-SIZE-SEED.tsv and
#                data/test.tsv); the first that has a run is used
# fastText rows are copied unchanged. Each re-scored row keeps the training wall time and gets
# today's commit and date; its settings end in "+ rescored with precise BN". PRECISE_BN names
# the tool (default build/precise_bn).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/experiment_lib.sh
PRECISE_BN=${PRECISE_BN:-build/precise_bn}
[[ -x $PRECISE_BN ]] || { echo "$0: $PRECISE_BN is missing; build first" >&2; exit 1; }

in=${1:?usage: bench/rescore_precise_bn.sh RESULTS_DIR OUT_DIR WORK_DIR [WORK_DIR ...]}
out=${2:?usage: bench/rescore_precise_bn.sh RESULTS_DIR OUT_DIR WORK_DIR [WORK_DIR ...]}
shift 2
[[ $# -ge 1 ]] || { echo "$0: name at least one WORK_DIR" >&2; exit 2; }
works=("$@")
mkdir -p "$out"
results=$out/results.csv
experiment_header "$results"
commit=$(commit_id)

tail -n +2 "$in/results.csv" | while IFS=, read -r experiment method size labels seed error f1 \
    wall _commit hardware _date settings; do
  if experiment_has_row "$results" "$method" "$size" "$seed"; then continue; fi
  if [[ $method == fasttext ]]; then
    echo "$experiment,$method,$size,$labels,$seed,$error,$f1,$wall,$_commit,$hardware,$_date,$settings" \
      >>"$results"
    continue
  fi
  run="" work=""
  for w in "${works[@]}"; do
    if [[ -f $w/runs/$method-$size-$seed/model/classifier.pt ]]; then
      run=$w/runs/$method-$size-$seed work=$w
      break
    fi
  done
  if [[ -z $run ]]; then
    echo "rescore: no saved model for $method-$size-$seed in ${works[*]}; row left out" >&2
    continue
  fi
  # The saved model must be the one that gave the row.
  before=$(json_field "$run/test_metrics.json" error_rate)
  if [[ $before != "$error" ]]; then
    echo "rescore: $run/test_metrics.json says $before, the row $error; row left out" >&2
    continue
  fi
  "$PRECISE_BN" --model "$run/model" --data "$work/data/train-$size-$seed.tsv" \
    --out "$run/model-precise-bn" >/dev/null </dev/null
  "$ULMFIT" evaluate --model "$run/model-precise-bn" --data "$work/data/test.tsv" \
    --output "$run/test_metrics-precise-bn.json" >/dev/null 2>&1 </dev/null
  new_error=$(json_field "$run/test_metrics-precise-bn.json" error_rate)
  new_f1=$(json_field "$run/test_metrics-precise-bn.json" macro_f1)
  echo "$experiment,$method,$size,$labels,$seed,$new_error,$new_f1,$wall,$commit,$hardware,$(date -u +%Y-%m-%dT%H:%M:%SZ),$settings + rescored with precise BN" \
    >>"$results"
  echo "rescore: $method, $labels labels, seed $seed: test error $error -> $new_error"
done
"$BENCH_DATA" report --results "$results" --out "$out" \
  --title "$(head -1 "$in/results.md" 2>/dev/null | sed 's/^# //')"
