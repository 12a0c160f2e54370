#!/usr/bin/env bash
# The active-learning experiment of docs/active_learning.md: `ulmfit active-learn` on CONFIG with
# its strategies split over two one-thread processes (a 2-core CPU), each in its own folder over
# the same fine-tuned LM (the config's run, stage 2 done), then merged into one folder, where a
# last call (every round already done) writes results.md and error_vs_labels.svg. The results
# are copied to docs/results/NAME/.
#
# Usage: bench/active_learning.sh CONFIG NAME STRATEGIES_A STRATEGIES_B [--set key=value ...]
#   e.g. bench/active_learning.sh configs/trec_small.yaml active_trec6 \
#          random,kmeans,margin bald,badge
# Runs stage 2 first if the config's run has none. A rerun continues after the last finished
# round of each process.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 4 ]] || { sed -n 2,12p "$0" >&2; exit 2; }
config=$1 name=$2 first=$3 second=$4
shift 4
bin=${ULMFIT:-build/ulmfit}
lm_run=$("$bin" --config "$config" "$@" --print-config | sed -n 's/^  output_dir: //p' | head -1)
out=runs/$name
mkdir -p "$out"

"$bin" --config "$config" "$@" --stage finetune >"$out/finetune.log" 2>&1 ||
  { tail -n 5 "$out/finetune.log" >&2; exit 1; }

part() {  # PART STRATEGIES [--set ...]: one process, one thread
  local name=$1 strategies=$2
  shift 2
  "$bin" active-learn --config "$config" "$@" --set run.threads=1 --set text.threads=1 \
    --set "classifier.language_model=$lm_run" --set "run.output_dir=$out/$name" \
    --set "active.strategies=$strategies" >"$out/$name.log" 2>&1
}
start=$(date +%s)
part a "$first" "$@" &
pid_a=$!
part b "$second" "$@" &
pid_b=$!
status=0
wait $pid_a || status=$?
wait $pid_b || status=$?
echo "active_learning: both parts ended (status $status) after $(( $(date +%s) - start )) s" >&2
[[ $status -eq 0 ]] || { tail -n 3 "$out/a.log" "$out/b.log" >&2; exit $status; }

# One folder with every strategy's rounds and rows, then the reports.
merged=$out/merged
mkdir -p "$merged/active"
cp -r "$out"/a/active/. "$merged/active/"
cp -r "$out"/b/active/. "$merged/active/"
{ head -1 "$out/a/active/results.csv"
  tail -n +2 "$out/a/active/results.csv"
  tail -n +2 "$out/b/active/results.csv"; } >"$merged/active/results.csv"
"$bin" active-learn --config "$config" "$@" --set "classifier.language_model=$lm_run" \
  --set "run.output_dir=$merged" --set "active.strategies=$first,$second" \
  >"$out/merged.log" 2>&1 || { tail -n 3 "$out/merged.log" >&2; exit 1; }
mkdir -p "docs/results/$name"
cp "$merged/active/results.csv" "$merged/active/results.md" "$merged/active/error_vs_labels.svg" \
  "$merged/active/meta.json" "docs/results/$name/"
echo "active_learning: results in docs/results/$name/" >&2
