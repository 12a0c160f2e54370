#!/usr/bin/env bash
# Ablations, the paper's Tables 4-6 reduced: what each part of the recipe is worth, on one
# labelled training set (all of task.train by default), several seeds each:
#   ulmfit                  the full recipe (the config as it is)
#   no-pretraining          stage 2 from random weights (same tokenizer, architecture, epochs)
#   no-lm-finetuning        the pretrained LM straight into the classifier
#   lm-ft-no-discr-no-sched LM fine-tuning without discriminative rates and at a constant rate
#   clf-all-at-once         the classifier with every layer trainable from the start
#   clf-last-layer-only     only the classifier head trains (the encoder stays frozen)
#   backward                the same recipe on reversed text (needs --backward-lm)
#   bidirectional           the forward and backward classifiers' probabilities averaged
# Stage 2 runs once per LM variant and is shared by its seeds; the classifier runs per seed.
# Each run trains on all of its labelled set (no validation split: the last epoch is kept).
#
# Usage: bench/ablations.sh CONFIG [options] [--set KEY=VALUE ...]
#   --size N|all       labelled training examples (default all)
#   --seeds LIST       default 1,2,3
#   --variants LIST    default: all of the above that can run
#   --lm RUN_DIR       a finished stage-2 run for `ulmfit` (e.g. the sample-efficiency one)
#   --backward-lm DIR  a stage-1 run of the backward LM (e.g. runs/wikitext2_small_bwd)
#   --work DIR         default runs/bench/ablations-NAME
#   --out DIR          default docs/results/ablations-NAME
# Resumable like bench/sample_efficiency.sh: rows already in results.csv are not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/experiment_lib.sh

config=${1:?usage: bench/ablations.sh CONFIG [--size N] [--seeds LIST] [--variants LIST] [--lm RUN_DIR] [--backward-lm RUN_DIR] [--work DIR] [--out DIR] [--set KEY=VALUE ...]}
shift
name=$(basename "$config" .yaml)
size=all seeds=1,2,3 variants="" lm="" backward_lm=""
work=runs/bench/ablations-$name out=docs/results/ablations-$name
sets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --size) size=$2 ;;
    --seeds) seeds=$2 ;;
    --variants) variants=$2 ;;
    --lm) lm=$2 ;;
    --backward-lm) backward_lm=$2 ;;
    --work) work=$2 ;;
    --out) out=$2 ;;
    --set) sets+=(--set "$2") ;;
    *) echo "ablations: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
all=ulmfit,no-pretraining,no-lm-finetuning,lm-ft-no-discr-no-sched,clf-all-at-once,clf-last-layer-only
if [[ -z $variants ]]; then
  variants=$all
  if [[ -n $backward_lm ]]; then variants+=,backward,bidirectional
  else echo "ablations: no --backward-lm, so no backward or bidirectional rows" >&2; fi
fi
for v in ${variants//,/ }; do
  if [[ ",$all,backward,bidirectional," != *,$v,* ]]; then
    echo "ablations: unknown variant $v" >&2; exit 2
  fi
  if [[ $v == backward && -z $backward_lm ]]; then
    echo "ablations: the backward variant needs --backward-lm RUN_DIR" >&2; exit 2
  fi
done
mkdir -p "$work/logs" "$out"
"$BENCH_DATA" prepare --config "$config" "${sets[@]}" --sizes "$size" --seeds "$seeds" \
  --out "$work/data" >/dev/null
source "$work/data/info.sh"  # model_flags, pretrained_tokenizer, classifier_*

lm_flags() {  # LM_VARIANT: sets the array `flags`, stage 2's settings for that variant
  case $1 in
    ulmfit) flags=() ;;
    no-pretraining) flags=(--set finetune.pretrained=none
                           --set "text.spm_model=$pretrained_tokenizer" "${model_flags[@]}") ;;
    no-lm-finetuning) flags=(--set finetune.epochs=0 --set finetune.frozen_epochs=0) ;;
    lm-ft-no-discr-no-sched) flags=(--set finetune.discriminative=none
                                    --set finetune.schedule.kind=constant) ;;
    backward) flags=(--set model.backwards=true --set "finetune.pretrained=$backward_lm") ;;
  esac
}

# Stage 2 of an LM variant, once (it continues or is skipped when already there).
lm_dir() {  # LM_VARIANT: prints the run directory with its finetune/lm.pt
  local variant=$1 dir=$work/lm-$1
  if [[ $variant == ulmfit && -n $lm ]]; then echo "$lm"; return; fi
  lm_flags "$variant"
  echo "ablations: stage 2 for $variant ($dir; log $work/logs/lm-$variant.log)" >&2
  "$ULMFIT" --config "$config" "${sets[@]}" "${flags[@]}" --set "run.output_dir=$dir" \
    --stage finetune --resume >"$work/logs/lm-$variant.log" 2>&1 ||
    { tail -3 "$work/logs/lm-$variant.log" >&2; exit 1; }
  echo "$dir"
}

results=$out/results.csv
experiment_header "$results"
total=$(( $(count_items "$variants") * $(count_items "$seeds") ))
k=0
for seed in ${seeds//,/ }; do
  train=$work/data/train-$size-$seed.tsv
  labels=$(wc -l <"$train")
  split_flags "$train" "$work/data/test.tsv" "$seed"
  for variant in ${variants//,/ }; do
    k=$((k + 1))
    if experiment_has_row "$results" "$variant" "$size" "$seed"; then continue; fi
    t0=$(date +%s.%N)
    case $variant in
      clf-all-at-once)
        lm_variant=ulmfit
        extra=(--set classifier.phase_groups=all --set "classifier.phase_epochs=$classifier_epochs"
               --set "classifier.phase_lrs=$classifier_last_lr") ;;
      clf-last-layer-only)
        lm_variant=ulmfit
        extra=(--set classifier.phase_groups=1 --set "classifier.phase_epochs=$classifier_epochs"
               --set "classifier.phase_lrs=$classifier_first_lr") ;;
      bidirectional) lm_variant="" extra=() flags=() ;;
      *) lm_variant=$variant extra=() ;;
    esac
    if [[ $variant == bidirectional ]]; then
      # Both directions' classifiers of this seed, averaged by `ulmfit evaluate`.
      for d in ulmfit backward; do
        [[ -f $work/runs/$d-$size-$seed/model/classifier.pt ]] ||
          { echo "ablations: bidirectional needs the ulmfit and backward runs first" >&2; exit 1; }
      done
      mkdir -p "$work/runs/bidirectional-$size-$seed"
      "$ULMFIT" evaluate --model "$work/runs/ulmfit-$size-$seed" \
        --model "$work/runs/backward-$size-$seed" --data "$work/data/test.tsv" \
        --output "$work/runs/bidirectional-$size-$seed/test_metrics.json" \
        >"$work/logs/bidirectional-$size-$seed.log" 2>&1 ||
        { tail -3 "$work/logs/bidirectional-$size-$seed.log" >&2; exit 1; }
      RUN_ERROR=$(json_field "$work/runs/bidirectional-$size-$seed/test_metrics.json" error_rate)
      RUN_F1=$(json_field "$work/runs/bidirectional-$size-$seed/test_metrics.json" macro_f1)
      RUN_WALL=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    else
      lm_path=$(lm_dir "$lm_variant")
      lm_flags "$lm_variant"
      run_method "$variant" "$work/runs/$variant-$size-$seed" \
        "$work/logs/$variant-$size-$seed.log" "$train" "$work/data/test.tsv" "$seed" "$config" \
        "${sets[@]}" "${split[@]}" "${flags[@]}" --set "classifier.language_model=$lm_path" \
        "${extra[@]}"
    fi
    experiment_append "$results" "ablations-$name" "$variant" "$size" "$labels" "$seed" \
      "${sets[*]} ${flags[*]:-} ${extra[*]:-}"
    echo "[$k/$total] $variant, seed $seed: test error $RUN_ERROR ($RUN_WALL s)"
  done
done
"$BENCH_DATA" report --results "$results" --out "$out" \
  --title "Ablations: $name ($size labelled examples)"
