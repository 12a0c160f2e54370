#!/usr/bin/env bash
# Sample efficiency, the paper's Figure 3: test error against the number of labelled training
# examples, several seeds each, for four methods on the same splits:
#   ulmfit      the full recipe: the LM fine-tuned once on all the task's text (labels unused,
#               semi-supervised), then one classifier per labelled sample
#   supervised  ULMFiT with the LM fine-tuned only on the labelled sample's text
#   scratch     the same classifier from random weights: no pretraining, no LM fine-tuning
#   fasttext    fastText with word bigrams (bench/fasttext_baseline.sh)
# Every run trains on exactly its labelled sample (no validation split: the last epoch is kept).
#
# Usage: bench/sample_efficiency.sh CONFIG [options] [--set KEY=VALUE ...]
#   --sizes LIST     labelled examples per run (default 100,300,1000,3000,all)
#   --seeds LIST     one sample and run per seed and size (default 1,2,3)
#   --methods LIST   default ulmfit,supervised,scratch,fasttext
#   --lm RUN_DIR     a finished stage-2 run to reuse for `ulmfit` (default: fine-tune one in
#                    WORK/lm with CONFIG, once)
#   --work DIR       splits, runs and logs (default runs/bench/sample-efficiency-NAME)
#   --out DIR        results.csv, results.md, chart.svg (default docs/results/sample-efficiency-NAME)
#   --set KEY=VALUE  passed to every ulmfit run (and to the splits' config)
# NAME is CONFIG's file name without .yaml. Rows already in results.csv are not run again, so
# an interrupted experiment continues where it stopped. ULMFIT and BENCH_DATA name the binaries
# (default build/ulmfit and build/bench_data); FASTTEXT_ARGS adds flags to every fastText run
# (the smoke test's "-bucket 10000" spares each run fastText's 800 MB bigram table).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/experiment_lib.sh

config=${1:?usage: bench/sample_efficiency.sh CONFIG [--sizes LIST] [--seeds LIST] [--methods LIST] [--lm RUN_DIR] [--work DIR] [--out DIR] [--set KEY=VALUE ...]}
shift
name=$(basename "$config" .yaml)
sizes=100,300,1000,3000,all seeds=1,2,3 methods=ulmfit,supervised,scratch,fasttext lm=""
work=runs/bench/sample-efficiency-$name out=docs/results/sample-efficiency-$name
sets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --sizes) sizes=$2 ;;
    --seeds) seeds=$2 ;;
    --methods) methods=$2 ;;
    --lm) lm=$2 ;;
    --work) work=$2 ;;
    --out) out=$2 ;;
    --set) sets+=(--set "$2") ;;
    *) echo "sample_efficiency: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
for m in ${methods//,/ }; do
  case $m in ulmfit|supervised|scratch|fasttext) ;;
    *) echo "sample_efficiency: unknown method $m (ulmfit, supervised, scratch, fasttext)" >&2
       exit 2 ;;
  esac
done
mkdir -p "$work/logs" "$out"

"$BENCH_DATA" prepare --config "$config" "${sets[@]}" --sizes "$sizes" --seeds "$seeds" \
  --out "$work/data" >/dev/null
source "$work/data/info.sh"  # model_flags, pretrained_tokenizer

if [[ ",$methods," == *,ulmfit,* && -z $lm ]]; then
  lm=$work/lm
  echo "sample_efficiency: fine-tuning the LM on the task's text once ($lm; log $work/logs/lm.log)"
  "$ULMFIT" --config "$config" "${sets[@]}" --set run.output_dir="$lm" --stage finetune \
    --resume >"$work/logs/lm.log" 2>&1 || { tail -3 "$work/logs/lm.log" >&2; exit 1; }
fi

# Stage 2 sees only the labelled sample's text.
own_text_only=(--set task.unlabeled= --set task.max_unlabeled=0 --set finetune.use_test_text=false)

results=$out/results.csv
experiment_header "$results"
total=$(( $(count_items "$sizes") * $(count_items "$seeds") * $(count_items "$methods") ))
k=0
for size in ${sizes//,/ }; do
  for seed in ${seeds//,/ }; do
    train=$work/data/train-$size-$seed.tsv
    labels=$(wc -l <"$train")
    for method in ${methods//,/ }; do
      k=$((k + 1))
      row="$method-$size-$seed"
      if experiment_has_row "$results" "$method" "$size" "$seed"; then continue; fi
      case $method in
        ulmfit) extra=(--set "classifier.language_model=$lm") ;;
        supervised) extra=("${own_text_only[@]}") ;;
        scratch) extra=("${own_text_only[@]}" --set finetune.pretrained=none
                        --set "text.spm_model=$pretrained_tokenizer" "${model_flags[@]}"
                        --set finetune.epochs=0 --set finetune.frozen_epochs=0) ;;
        fasttext) extra=(${FASTTEXT_ARGS:+fasttext $FASTTEXT_ARGS}) ;;  # for the settings column
      esac
      split_flags "$train" "$work/data/test.tsv" "$seed"
      run_method "$method" "$work/runs/$row" "$work/logs/$row.log" "$train" \
        "$work/data/test.tsv" "$seed" "$config" "${sets[@]}" "${split[@]}" "${extra[@]}"
      experiment_append "$results" "sample-efficiency-$name" "$method" "$size" "$labels" \
        "$seed" "${sets[*]} ${extra[*]}"
      echo "[$k/$total] $method, $labels labels, seed $seed: test error $RUN_ERROR ($RUN_WALL s)"
    done
  done
done
"$BENCH_DATA" report --results "$results" --out "$out" \
  --title "Sample efficiency: $name (test error against labelled examples)"
