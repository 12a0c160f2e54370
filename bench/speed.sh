#!/usr/bin/env bash
# Speed and memory, one after another on this machine (keep it otherwise idle): each stage of
# this program on one task (LM fine-tuning tokens/s, classifier training documents/s, prediction
# documents/s, wall time and peak memory of each), fastText on the same split, and the
# synthetic LM training benchmark (bench_lm) for the full and the small model.
#
# Usage: bench/speed.sh CONFIG [--examples N] [--lm-epochs N] [--work DIR] [--out DIR]
#                      [--set KEY=VALUE ...]
#   --examples N   labelled training examples (default 1000); stage 2 reads only their text
#   --lm-epochs N  stage-2 epochs timed (default 1, no frozen epoch)
#   --out DIR      speed.csv and speed.md (default docs/results/speed-NAME)
# Needs GNU time (Debian package `time`) for peak memory: the one on PATH, or TIME_BIN. fastText's
# rows are skipped, with a note, where `fasttext` is not installed (a lent GPU machine).
# ULMFIT, BENCH_DATA and BENCH_LM name the binaries (default build/...).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/experiment_lib.sh
TIME_BIN=${TIME_BIN:-$(type -P time || echo /usr/bin/time)}
BENCH_LM=${BENCH_LM:-build/bench_lm}
have_fasttext=$(command -v fasttext || true)
[[ -x $TIME_BIN ]] || { echo "speed: $TIME_BIN is missing (apt-get install time, or set TIME_BIN)" >&2; exit 1; }

config=${1:?usage: bench/speed.sh CONFIG [--examples N] [--lm-epochs N] [--work DIR] [--out DIR] [--set KEY=VALUE ...]}
shift
name=$(basename "$config" .yaml)
examples=1000 lm_epochs=1 work=runs/bench/speed-$name out=docs/results/speed-$name
sets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --examples) examples=$2 ;;
    --lm-epochs) lm_epochs=$2 ;;
    --work) work=$2 ;;
    --out) out=$2 ;;
    --set) sets+=(--set "$2") ;;
    *) echo "speed: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
rm -rf "$work"
mkdir -p "$work/logs" "$out"
"$BENCH_DATA" prepare --config "$config" "${sets[@]}" --sizes "$examples" --seeds 1 \
  --out "$work/data" >/dev/null
train=$work/data/train-$examples-1.tsv test=$work/data/test.tsv
test_docs=$(wc -l <"$test")
run=$work/run
split_flags "$train" "$test"
common=("${sets[@]}" "${split[@]}" --set task.unlabeled= --set finetune.use_test_text=false
        --set "finetune.epochs=$lm_epochs" --set finetune.frozen_epochs=0
        --set "run.output_dir=$run")

csv=$out/speed.csv
echo "program,step,items,unit,seconds,items_per_s,peak_rss_mb,commit,hardware" >"$csv"
timed() {  # PROGRAM STEP ITEMS UNIT COMMAND...: runs it under GNU time, appends a row
  local program=$1 step=$2 items=$3 unit=$4 seconds rss
  shift 4
  "$TIME_BIN" -f "%e %M" -o "$work/time" "$@" >"$work/logs/$program-$step.log" 2>&1 ||
    { echo "speed: $program $step failed (log $work/logs/$program-$step.log)" >&2; exit 1; }
  read -r seconds rss <"$work/time"
  echo "$program,$step,$items,$unit,$seconds,$(awk -v n="$items" -v s="$seconds" \
    'BEGIN { printf "%.1f", n / s }'),$((rss / 1024)),$(commit_id),$(hardware_name)" >>"$csv"
  echo "speed: $program $step: $seconds s, $((rss / 1024)) MB"
}

# Stage 2: its tokens are known only after it ran (its metrics.jsonl says how many).
"$TIME_BIN" -f "%e %M" -o "$work/time" "$ULMFIT" --config "$config" "${common[@]}" \
  --stage finetune >"$work/logs/ulmfit-finetune.log" 2>&1 ||
  { echo "speed: stage 2 failed (log $work/logs/ulmfit-finetune.log)" >&2; exit 1; }
read -r seconds rss <"$work/time"
tokens=$(grep '"event": "train_epoch"' "$run/metrics.jsonl" | grep -o '"tokens": [0-9]*' |
  awk '{ n += $2 } END { print n + 0 }')
tokens_per_s=$(grep -o '"tokens_per_s": [0-9.e+]*' "$run/metrics.jsonl" | tail -1 | awk '{ printf "%.0f", $2 }')
echo "ulmfit,LM fine-tuning (stage 2; $lm_epochs epoch on the examples' text),$tokens,tokens,$seconds,$(awk -v n="$tokens" -v s="$seconds" 'BEGIN { printf "%.1f", n / s }'),$((rss / 1024)),$(commit_id),$(hardware_name)" >>"$csv"
echo "speed: ulmfit stage 2: $seconds s, $tokens tokens, $tokens_per_s tokens/s while training"

# Stage 3 (it also tests on the test split; its training docs/s come from metrics.jsonl).
timed ulmfit "classifier training and test (stage 3)" "$examples" "training examples" \
  "$ULMFIT" --config "$config" "${common[@]}" --stage classify
cut -f2- "$test" >"$work/test_texts.txt"
timed ulmfit "prediction (ulmfit predict)" "$test_docs" documents \
  "$ULMFIT" predict --model "$run" --input "$work/test_texts.txt"

# fastText on the same split (its own format: __label__X text, lowercased).
if [[ -n $have_fasttext ]]; then
  awk -F'\t' '{ print "__label__" $1 " " tolower($2) }' "$train" >"$work/ft_train.txt"
  awk -F'\t' '{ print tolower($2) }' "$test" >"$work/ft_test.txt"
  timed fasttext "training (bigrams; 25 epochs)" "$examples" "training examples" \
    fasttext supervised -input "$work/ft_train.txt" -output "$work/ft" -wordNgrams 2 -epoch 25 \
    -lr 0.5 -dim 100 -thread "$(nproc)" -verbose 0
  timed fasttext prediction "$test_docs" documents \
    fasttext predict "$work/ft.bin" "$work/ft_test.txt"
else
  echo "speed: fasttext is not installed here; its rows are skipped (apt-get install fasttext)" >&2
fi

{
  echo "# Speed and memory: $name"
  echo
  echo "\`bench/speed.sh $config\` with $examples labelled training examples and $test_docs test"
  echo "documents, one step after another on $(hardware_name). Seconds are wall time of the"
  echo "whole command (loading and tokenizing included); peak RSS from GNU time."
  [[ -n $have_fasttext ]] || echo "fastText was not installed on this machine: no rows for it."
  echo
  echo "| program | step | items | seconds (wall) | items/s | peak RSS MB |"
  echo "|---|---|---|---|---|---|"
  tail -n +2 "$csv" | awk -F, '{ printf "| %s | %s | %s %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
  echo
  echo "items/s divides by the whole command's wall time. While training, stage 2 ran at"
  echo "$tokens_per_s tokens/s, and the classifier at these documents/s per epoch"
  echo "(from $run/metrics.jsonl):"
  echo
  grep '"stage": "classify", "event": "epoch"' "$run/metrics.jsonl" |
    sed -E 's/.*"epoch": ([0-9]+).*"trainable_groups": ([0-9]+).*"docs_per_s": ([0-9.]+).*/- epoch \1, \2 trainable layer groups: \3 docs\/s/'
  echo
  echo "LM training steps on random tokens (\`build/bench_lm --model both\`), the full model"
  echo "(400/1150/3) beside the small one (128/512/2):"
  echo
  "$BENCH_LM" --model both --steps 5 --warmup 1 2>&1 | grep '^|' || true
  echo
  echo "Commit $(commit_id), $(date -u +%F)."
} >"$out/speed.md"
echo "speed: $out/speed.md written"
